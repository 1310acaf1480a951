"""Chapter 6: degrade controls. The critical path holds through the midnight spike."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chapters import stage_on_first_use

if TYPE_CHECKING:
    from chapters.ch6_degrade.stage import STAGE, DegradeStage

__all__ = ["STAGE", "DegradeStage"]


__getattr__ = stage_on_first_use(__name__, __all__)
