"""Chapter 6: degrade controls. The critical path holds through the midnight spike."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chapters.ch6_degrade.stage import STAGE, DegradeStage

__all__ = ["STAGE", "DegradeStage"]


def __getattr__(name: str) -> Any:
    # The stage is built on first use, not when `d11` imports this package's
    # commands (cli.py): every d11 command would otherwise pay for it.
    if name in __all__:
        from chapters.ch6_degrade import stage

        return getattr(stage, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
