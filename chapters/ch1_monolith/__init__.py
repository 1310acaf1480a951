"""Chapter 1: the monolith. One service, one SQL database, one node."""

from chapters.ch1_monolith.stage import STAGE, MonolithStage

__all__ = ["STAGE", "MonolithStage"]
