"""A chapter's own panel (chapters 5-7): the lines its view built, its keys on the bottom edge."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.content import Content
from textual.widget import Widget

from tui.model import ChapterPanelView, Frame
from tui.widgets.palette import palette
from tui.widgets.titles import TITLE_MARGIN, fitted_title

if TYPE_CHECKING:
    from typing import Unpack

    from tui.widgets.args import WidgetArgs


__all__ = ["ChapterPanel"]


class ChapterPanel(Widget):
    DEFAULT_CSS = """
    ChapterPanel { padding: 0 1; overflow-y: auto; border-subtitle-color: $text-muted;
        text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, **kwargs: Unpack[WidgetArgs]) -> None:
        super().__init__(**kwargs)
        self.view: ChapterPanelView | None = None

    def show(self, frame: Frame) -> None:
        view = frame.chapter_panel
        if view == self.view:
            return  # the same lines: no redraw
        titles_changed = self.view is None or view is None or view.titles != self.view.titles
        self.view = view
        if titles_changed:
            self._fit(self.size.width)
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        self._fit(event.size.width)

    def _fit(self, width: int) -> None:
        view = self.view
        if view is None:
            self.border_title, self.border_subtitle = "", ""
            return
        self.border_title = fitted_title(view.titles, width)
        room = width - TITLE_MARGIN
        # The keys on the bottom edge when they fit whole; the footer lists them anyway.
        # As Content, not markup: "[ tighten" would be read as a tag and vanish.
        self.border_subtitle = Content(view.keys) if 0 < cell_len(view.keys) <= room else ""

    def render(self) -> Text:
        view = self.view
        out = Text(no_wrap=True, overflow="ellipsis")
        if view is None:
            return out
        p = palette(self.app)
        styles = {"": "", "ok": p.ok, "bad": p.bad, "warn": p.warn, "dim": p.dim, "bold": "bold"}
        for i, line in enumerate(view.lines):
            if i:
                out.append("\n")
            for text, style in line:
                out.append(text, style=styles.get(style, ""))
        return out
