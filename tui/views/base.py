"""What a chapter view is: a panel built from the stage's own data, and the keys that act on it.

A chapter's stage knows nothing of the TUI (the floors: chapters never
import tui). Each view reads what the stage's deployment already exposes,
through a small `Protocol` declared next to the view (`MqSource`,
`DegradeSource`, `RehearsalSource`), and acts through the session's
controls or the deployment's own operator hooks, so every change a key
makes is in the recorded history.

A view is asked for its panel under the session's lock, at most every
`REFRESH_MS` of simulated time (and after each of its keys): a panel reads
node state, and a frame is built up to 20 times a wall second.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from tui.model import ChapterPanelView, CheckView

__all__ = [
    "REFRESH_MS",
    "ChapterView",
    "HistoryTail",
    "Lines",
    "Session",
    "ViewError",
    "ViewKey",
    "final_reads_in",
    "rate_text",
]

LiveCheck = Callable[[list[Any]], Any]  # a history (prefix) -> its Verdict

REFRESH_MS = 100.0  # simulated time between two rebuilds of a panel


class ViewError(ValueError):
    """A key that cannot act now; the session shows the message in the status line."""


class Session(Protocol):
    """What a view uses of `tui.session.Session` (declared here: the session imports the views)."""

    rt: Any
    dep: Any
    checks: list[CheckView]

    def step(self, sim_ms: float = ...) -> None: ...
    def kill(self, node: str) -> None: ...
    def restart(self, node: str) -> None: ...
    def toggle_node_pause(self, node: str) -> None: ...
    def select(self, node: str) -> None: ...
    def history_cut(self) -> bool: ...


@dataclass(frozen=True)
class ViewKey:
    """One key of a chapter: `key` (Textual's name), the view's `action`, footer and help words."""

    key: str
    action: str
    label: str  # the footer's word
    help: str  # the command palette's sentence
    display: str = ""  # how the footer writes the key (default: the key)


class Lines:
    """Styled lines for a `ChapterPanelView`: `add("text", "ok")` then `end()`."""

    def __init__(self) -> None:
        self._lines: list[tuple[tuple[str, str], ...]] = []
        self._line: list[tuple[str, str]] = []

    def add(self, text: str, style: str = "") -> Lines:
        self._line.append((text, style))
        return self

    def end(self) -> Lines:
        self._lines.append(tuple(self._line))
        self._line = []
        return self

    def done(self) -> tuple[tuple[tuple[str, str], ...], ...]:
        if self._line:
            self.end()
        return tuple(self._lines)


class HistoryTail:
    """Reads a deployment's history from where it left off.

    The session trims a long history (keeping its recent half): a tail that
    finds the history shorter than its cursor starts again at the new end.
    """

    def __init__(self) -> None:
        self.cursor = 0

    def new(self, history: list[Any]) -> list[Any]:
        if len(history) < self.cursor:
            self.cursor = len(history)
        fresh = history[self.cursor :]
        self.cursor = len(history)
        return fresh


class ChapterView(ABC):
    """A chapter's panel and keys. One instance per session (it may keep counters)."""

    titles: ClassVar[tuple[str, ...]]
    keys: ClassVar[tuple[ViewKey, ...]] = ()

    def __init__(self) -> None:
        self._built_at_ms = -1e18
        self._panel: ChapterPanelView | None = None
        self.dirty = True

    def panel(self, session: Session) -> ChapterPanelView:
        """The panel now (rebuilt at most every REFRESH_MS of simulated time, or after a key)."""
        now_ms = session.rt.now_ms
        if self._panel is None or self.dirty or now_ms - self._built_at_ms >= REFRESH_MS:
            lines = self.build(session)
            keys = "  ".join(f"{k.display or k.key} {k.label}" for k in self.keys)
            self._panel = ChapterPanelView(self.titles, lines, keys)
            self._built_at_ms = now_ms
            self.dirty = False
        return self._panel

    def act(self, session: Session, action: str, node: str) -> str:
        """Do one of this view's key actions; returns what to say in the status line.

        Raises `ViewError` (or the session's own error) when it cannot be done now."""
        self.dirty = True
        handler = getattr(self, f"do_{action.replace('-', '_')}", None)
        assert handler is not None and any(k.action == action for k in self.keys), action
        return str(handler(session, node))

    @abstractmethod
    def build(self, session: Session) -> tuple[tuple[tuple[str, str], ...], ...]:
        """The panel's lines now."""

    def live_checks(self, session: Session) -> dict[str, LiveCheck]:
        """The checks whose live form judges a prefix of the run (name -> check).

        While the run goes on, the session judges the history so far with
        these instead of the stage's own (which judge a run that is over); a
        save, and the checks once the final reads are in, judge as the stage
        does."""
        return {}

    def brief(self, session: Session, out: Lines) -> None:
        """This panel in two lines (the capstone shows chapters 5-7 at once): its first two."""
        for line in self.build(session)[:2]:
            for text, style in line:
                out.add(text, style)
            out.end()


def rate_text(per_s: float) -> str:
    """A rate in a narrow column: '0', '3.5', '57', '1.2k'."""
    if per_s >= 1000:
        return f"{per_s / 1000:.1f}k"
    if per_s >= 10 or per_s == 0:
        return f"{per_s:.0f}"
    return f"{per_s:.1f}"


def final_reads_in(history: list[Any]) -> bool:
    """The run's final reads are in `history` (it is over: judge it as a whole run)."""
    return any(e.type == "ok" and e.extra.get("final") for e in reversed(history))
