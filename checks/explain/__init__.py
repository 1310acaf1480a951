"""Explaining a linearizability failure: the smallest witness, and a timeline."""

from checks.explain.html import timeline_html
from checks.explain.witness import Explanation, explain

__all__ = ["Explanation", "explain", "timeline_html"]
