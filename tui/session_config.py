"""What a live session is built from: the chapter, scenario, seed and speed a person picks.

`SessionConfig.validate` resolves it into the chapter's stage and options (or
one line saying why it makes no sense); `SPEEDS` is the ladder of simulation
speeds a session may run at. A rebuild (n, a changed scenario) takes a changed copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from tui.views import CHAPTER_EXTRA

if TYPE_CHECKING:
    from chapters.stage import Stage, StageOptions

__all__ = ["SPEEDS", "SessionConfig", "SessionError"]

SPEEDS: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)


class SessionError(ValueError):
    """An action that cannot be done now; the message is shown in the status bar."""


@dataclass(frozen=True)
class SessionConfig:
    """What a session is built from (a rebuild takes a changed copy)."""

    chapter: str = "ch1"
    scenario: str = "steady"
    seed: int = 1
    variant: str = ""
    speed: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)

    def with_(self, **changes: Any) -> SessionConfig:
        return replace(self, **changes)

    def validate(self) -> tuple[Stage, StageOptions]:
        """(stage, options) for this config; SessionError with one line if it makes no sense."""
        from chapters import get_stage
        from chapters.stage import StageError

        try:
            stage = get_stage(self.chapter)
            if self.scenario not in stage.scenarios:
                known = ", ".join(stage.scenarios)
                raise StageError(f"{stage.id} has no scenario {self.scenario!r} (known: {known})")
            # A chapter view's keys may need a piece of the stage (chapter 6: a control plane).
            extra = {**CHAPTER_EXTRA.get(stage.id, {}), **self.extra}
            options = stage.options(seed=self.seed, variant=self.variant, extra=extra)
        except StageError as exc:
            raise SessionError(str(exc)) from None
        if not SPEEDS[0] <= self.speed <= SPEEDS[-1]:
            raise SessionError(
                f"speed must be in [{SPEEDS[0]:g}, {SPEEDS[-1]:g}], not {self.speed:g}"
            )
        return stage, options
