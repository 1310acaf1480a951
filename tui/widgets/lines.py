"""A panel drawn line by line from strips made once per frame (Textual's line API).

A panel that is redrawn ten times a second should not be laid out ten times
a second: `LinesPanel` turns its Rich text into strips when a frame arrives,
and the compositor then copies strips, which is several times cheaper than
re-rendering the text through Textual's content pipeline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.segment import Segment
from rich.text import Text
from textual.strip import Strip
from textual.widget import Widget

if TYPE_CHECKING:
    from typing import Unpack

    from tui.widgets.args import WidgetArgs


__all__ = ["LinesPanel"]


class LinesPanel(Widget):
    """Subclasses implement `build()`; `redraw()` rebuilds the strips and refreshes."""

    def __init__(self, **kwargs: Unpack[WidgetArgs]) -> None:
        super().__init__(**kwargs)
        self._strips: list[Strip] = []
        self._built_width = -1

    def build(self) -> Text:
        """The panel's text for the current frame (subclasses draw here)."""
        return Text("")

    def redraw(self) -> None:
        self._built_width = -1
        self.refresh()

    def _ensure(self) -> None:
        width = self.content_size.width
        if width == self._built_width:
            return
        text = self.build()
        console = self.app.console
        options = console.options.update_width(max(width, 1)).update(no_wrap=True, overflow="crop")
        self._strips = [
            Strip(list(Segment.apply_style(line, self.rich_style)))
            for line in console.render_lines(text, options, pad=False)
        ]
        self._built_width = width

    def on_resize(self) -> None:
        self.redraw()

    def render_line(self, y: int) -> Strip:
        self._ensure()
        width = self.content_size.width
        if y < len(self._strips):
            return self._strips[y].crop_extend(0, width, self.rich_style)
        return Strip.blank(width, self.rich_style)

    def plain(self) -> str:
        """The panel's text without styles (for tests)."""
        return self.build().plain
