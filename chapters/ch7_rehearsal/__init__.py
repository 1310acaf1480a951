"""Chapter 7: full-link stress testing and the Double 11 rehearsal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chapters import stage_on_first_use

if TYPE_CHECKING:
    from chapters.ch7_rehearsal.stage import STAGE, RehearsalStage

__all__ = ["STAGE", "RehearsalStage"]


__getattr__ = stage_on_first_use(__name__, __all__)
