"""The event log: faults, failovers, leader changes, breaker trips, in simulated time."""

from __future__ import annotations

import textwrap
from collections import deque
from typing import TYPE_CHECKING

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.text import Text
from textual.events import Resize
from textual.widgets import RichLog

from tui.model import EventLine, Frame
from tui.widgets.palette import palette
from tui.widgets.titles import FittedTitle

if TYPE_CHECKING:
    from typing import Unpack

    from tui.widgets.args import WidgetArgs


__all__ = ["EventText", "EventsPanel"]

GLYPHS = {"fault": "✖", "heal": "✔", "warn": "▲", "info": "·", "ok": "✔"}
LINES_MAX = 500  # lines the log keeps
DETAIL_INDENT = 6  # a detail too long for its line goes under it, this far in
DETAIL_LINES_MAX = 4  # lines of one detail at most (the last one ends in "…")
DETAIL_WIDTH_MIN = 24  # narrower than this, wrapping helps nobody: cut as before


class EventsPanel(FittedTitle, RichLog):
    DEFAULT_CSS = """
    EventsPanel { padding: 0 1; background: $surface; scrollbar-size-vertical: 1;
        scrollbar-background: $surface; scrollbar-gutter: stable; }
    """

    def __init__(self, **kwargs: Unpack[WidgetArgs]) -> None:
        # min_width 1: a long event is laid out at the log's width (EventText), not
        # at RichLog's default of 78 columns, which cut it at the log's edge.
        super().__init__(max_lines=LINES_MAX, wrap=False, markup=False, min_width=1, **kwargs)
        self._shown: deque[EventText] = deque(maxlen=LINES_MAX)  # to lay out again
        self._laid_out_width = 0

    def show(self, frame: Frame) -> None:
        if frame.events_reset:
            self.clear()
            self._shown.clear()
        # Hidden: v shows the chapter's panel instead of this one. (Before any size is
        # known, RichLog keeps what is written for its first width itself.)
        hidden = self._size_known and self.size.width == 0
        if hidden:
            # Written now, a line would be laid out at no width, one "…" each (RichLog
            # shrinks it to its content region, 0 columns, then widens it to min_width
            # 1), and would stay so when shown again at the width it had before: kept
            # for the Resize that shows the panel, which lays every line out again.
            self._laid_out_width = 0
        for line in frame.events:
            text = self._line(line)
            self._shown.append(text)
            if not hidden:
                self.write(text)

    def on_resize(self, event: Resize) -> None:
        """A new width lays every event out again (RichLog draws a line once, at the
        width of its writing: a log written as the panels took their places kept
        lines cut at the old width). Textual calls RichLog's handler after this
        one; the first time a size is known, it writes what waited for one.

        The width is the panel's own, not its content region's: that one narrows
        when the scrollbar appears, and laying out again would take the scrollbar
        away, and so on for ever (the gutter is kept, so the lines fit either way).
        """
        width = self.size.width
        if width == 0:  # hidden (see show): laid out when it has a width again
            self._laid_out_width = 0
            return
        if not self._size_known or width == self._laid_out_width:
            self._laid_out_width = width
            return
        self._laid_out_width = width
        self.clear()
        for text in self._shown:
            self.write(text)

    def _line(self, e: EventLine) -> EventText:
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
        return EventText(t, e.detail, style if e.kind.startswith("check") else "")


class EventText:
    """One event as the log draws it, laid out at the width it is drawn at (the
    log's, known only then): on one line if it fits; else its detail under it,
    wrapped (at 160 columns a check's verdict was cut to a dozen characters,
    "check slo BROKEN: good", readable only at 250)."""

    def __init__(self, head: Text, detail: str, detail_style: str = "") -> None:
        self.head = head
        self.detail = detail
        self.detail_style = detail_style

    def lines(self, width: int) -> list[Text]:
        """The event's lines at `width` columns."""
        room = width - DETAIL_INDENT
        if self.head.cell_len + len(self.detail) <= width or room < DETAIL_WIDTH_MIN:
            one = self.head.copy()
            one.append(self.detail)  # fits, or too narrow to help: one line, cut at the edge
            return [one]
        chunks = textwrap.wrap(self.detail, room, max_lines=DETAIL_LINES_MAX, placeholder=" …")
        indent = " " * DETAIL_INDENT
        return [self.head] + [
            Text(indent + c, style=self.detail_style, no_wrap=True, overflow="ellipsis")
            for c in chunks
        ]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from self.lines(options.max_width)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        whole = self.head.cell_len + len(self.detail)
        return Measurement(min(whole, DETAIL_INDENT + DETAIL_WIDTH_MIN), whole)
