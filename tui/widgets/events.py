"""The event log: faults, failovers, leader changes, breaker trips, in simulated time."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import RichLog

from tui.model import EventLine, Frame
from tui.widgets.palette import palette
from tui.widgets.titles import FittedTitle

if TYPE_CHECKING:
    from typing import Unpack

    from tui.widgets.args import WidgetArgs


__all__ = ["EventsPanel"]

GLYPHS = {"fault": "✖", "heal": "✔", "warn": "▲", "info": "·", "ok": "✔"}


class EventsPanel(FittedTitle, RichLog):
    DEFAULT_CSS = """
    EventsPanel { padding: 0 1; background: $surface; scrollbar-size-vertical: 1;
        scrollbar-background: $surface; }
    """

    def __init__(self, **kwargs: Unpack[WidgetArgs]) -> None:
        super().__init__(max_lines=500, wrap=False, markup=False, **kwargs)

    def show(self, frame: Frame) -> None:
        if frame.events_reset:
            self.clear()
        for line in frame.events:
            self.write(self._line(line))

    def _line(self, e: EventLine) -> Text:
        p = palette(self.app)
        style = {"fault": p.bad, "heal": p.ok, "warn": p.warn, "info": "", "ok": p.ok}[e.severity]
        if e.kind.startswith("check") and "BROKEN" in e.detail:
            style = f"bold {p.bad}"
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(f"{e.time_ms / 1000:9.3f} s ", style=p.dim)
        t.append(f"{GLYPHS[e.severity]} ", style=style)
        t.append(f"{e.kind:<17} ", style=f"bold {style}".strip())
        if e.node:
            t.append(f"{e.node} ", style="bold")
        t.append(e.detail)
        return t
