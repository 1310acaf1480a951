"""The capstone: Double 11 night, chapters 3 to 7 on one simulator (`d11 run double11`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chapters.capstone.stage import STAGE, CapstoneStage

__all__ = ["STAGE", "CapstoneStage"]


def __getattr__(name: str) -> Any:
    # Built on first use, as chapter 7's: importing the package stays cheap.
    if name in __all__:
        from chapters.capstone import stage

        return getattr(stage, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
