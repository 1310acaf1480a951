"""Verification: histories, checkers, nemeses and the fault harness.

Checkers work on histories alone, so they can judge any system, ours or not.
"""
