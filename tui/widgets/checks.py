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

BEHIND_S = 2.0  # simulated s: verdicts older than this say how old they are


class ChecksPanel(FittedTitle, Widget):
    DEFAULT_CSS = """
    ChecksPanel { padding: 0 1; overflow-y: auto; }
    """

    def __init__(self, **kwargs: Unpack[WidgetArgs]) -> None:
        super().__init__(**kwargs)
        self.frame: Frame | None = None
        self._key: tuple[object, ...] = ()

    def show(self, frame: Frame) -> None:
        behind = int(_behind_s(frame)) if _behind_s(frame) >= BEHIND_S else 0
        key = (tuple(frame.checks), frame.checks_running, tuple(frame.faults_active), behind)
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
            # A round behind the run (a long history, a loaded machine) says so: the
            # verdicts below are that old, not the run's now.
            behind_s = _behind_s(f)
            behind = behind_s >= BEHIND_S
            head = f"judged at t={newest.at_ms / 1000:.1f} s"
            head += f" ({behind_s:.0f} s ago)" if behind else ""
            head += f" on {newest.events:,} events"
            head += "; judging…" if f.checks_running else ""
            out.append(head + "\n", style=p.warn if behind else p.dim)
        # The name column fits the longest name (the capstone's "ch4:double-entry"
        # ran into its verdict word at a fixed 14).
        name_w = max([14, *(len(c.name) + 1 for c in f.checks)])
        for c in f.checks:
            self._check(out, c, p, name_w)
        if f.checks_running and not judged:
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


def _behind_s(frame: Frame) -> float:
    """Simulated seconds between the newest verdict's history and the run's now (live)."""
    at_ms = max((c.at_ms for c in frame.checks if c.events), default=frame.now_ms)
    return (frame.now_ms - at_ms) / 1000.0 if frame.mode == "live" else 0.0


def _clip(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: max(0, chars - 1)] + "…"
