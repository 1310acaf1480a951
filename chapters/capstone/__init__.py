"""The capstone: Double 11 night, chapters 4 to 7 on one simulator, 4 and 5 one pipeline
(`d11 run double11`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chapters import stage_on_first_use

if TYPE_CHECKING:
    from chapters.capstone.stage import STAGE, CapstoneStage

__all__ = ["STAGE", "CapstoneStage"]


__getattr__ = stage_on_first_use(__name__, __all__)
