"""Chapter 7: full-link stress testing and the Double 11 rehearsal."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chapters.ch7_rehearsal.stage import STAGE, RehearsalStage

__all__ = ["STAGE", "RehearsalStage"]


def __getattr__(name: str) -> Any:
    # The stage is built on first use, not when `d11` imports this package's
    # commands (cli.py): every d11 command would otherwise pay for it.
    if name in __all__:
        from chapters.ch7_rehearsal import stage

        return getattr(stage, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
