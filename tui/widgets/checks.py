"""The checkers' verdicts on the history so far: green holds, red broken (with why)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.widget import Widget

from tui.model import CheckView, Frame
from tui.widgets.palette import Palette, palette
from tui.widgets.titles import FittedTitle

if TYPE_CHECKING:
    from typing import Unpack

    from tui.widgets.args import WidgetArgs


__all__ = ["ChecksPanel"]


class ChecksPanel(FittedTitle, Widget):
    DEFAULT_CSS = """
    ChecksPanel { padding: 0 1; overflow-y: auto; }
    """

    def __init__(self, **kwargs: Unpack[WidgetArgs]) -> None:
        super().__init__(**kwargs)
        self.frame: Frame | None = None
        self._key: tuple[object, ...] = ()

    def show(self, frame: Frame) -> None:
        key = (tuple(frame.checks), frame.checks_running, tuple(frame.faults_active))
        if self.frame is not None and key == self._key:
            return  # same verdicts: no redraw
        self.frame, self._key = frame, key
        self.refresh()

    def render(self) -> Text:
        f = self.frame
        out = Text()
        if f is None:
            return out
        p = palette(self.app)
        judged = [c for c in f.checks if c.events]
        if judged:
            newest = max(judged, key=lambda c: c.at_ms)
            out.append(
                f"judged at t={newest.at_ms / 1000:.1f} s on {newest.events:,} events\n",
                style=p.dim,
            )
        # The name column fits the longest name (the capstone's "ch4:double-entry"
        # ran into its verdict word at a fixed 14).
        name_w = max([14, *(len(c.name) + 1 for c in f.checks)])
        for c in f.checks:
            self._check(out, c, p, name_w)
        if f.checks_running:
            out.append("checking…\n", style=p.dim)
        if f.faults_active:
            out.append("faults now: ", style="bold")
            out.append(", ".join(f.faults_active) + "\n", style=p.bad)
        return out

    def _check(self, out: Text, c: CheckView, p: Palette, name_w: int) -> None:
        if c.valid is True:
            glyph, word, style = "✔", "holds", p.ok
        elif c.valid is False:
            why = {
                "expected-failure": " (as the chapter expects)",
                "unexpected-failure": " (the chapter says it holds!)",
                "by-hand": " (after your changes by hand)",
            }.get(c.outcome, "")
            glyph, word, style = "✖", "BROKEN" + why, p.bad
        elif c.valid == "pending":
            glyph, word, style = "…", "pending", p.dim
        else:
            glyph, word, style = "?", "unknown", p.warn
        out.append(f"{glyph} ", style=f"bold {style}")
        out.append(c.name.ljust(name_w), style="bold")
        out.append(word, style=f"bold {style}")
        out.append("\n")
        # Two lines of why at most: the panel must hold every check at once.
        width = max(20, self.content_size.width - 2)
        out.append(f"  {_clip(c.summary, 2 * width)}\n", style=style if c.valid is False else "")
        if c.expected:
            out.append(f"  chapter: {_clip(c.expected, width - 9)}\n", style=p.dim)


def _clip(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: max(0, chars - 1)] + "…"
