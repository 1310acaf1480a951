"""Chapter 6: degrade controls. The critical path holds through the midnight spike."""

from chapters.ch6_degrade.stage import STAGE, DegradeStage

__all__ = ["STAGE", "DegradeStage"]
