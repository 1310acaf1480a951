"""Chapter 7: full-link stress testing and the Double 11 rehearsal."""

from chapters.ch7_rehearsal.stage import STAGE, RehearsalStage

__all__ = ["STAGE", "RehearsalStage"]
