"""The top line: what runs, simulated time, speed, traffic, scale."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from reference.traffic.plan import format_scale
from tui.model import Frame
from tui.widgets.palette import palette

__all__ = ["PROFILE_WORDS", "StatusBar", "format_time", "scale_words"]

# What the header says traffic is doing, for the profiles a bare name does not explain.
PROFILE_WORDS = {"double11": "double11 spike"}


def scale_words(scale: float) -> str:
    """The scale as the reports give it ('1/453', `format_scale`); '?' when unknown."""
    return format_scale(scale) if 0 < scale <= 1 else "?"


def format_time(ms: float) -> str:
    """Simulated time as m:ss.mmm (hours when it gets there)."""
    total_s = max(ms, 0.0) / 1000.0
    minutes, seconds = divmod(total_s, 60.0)
    hours, minutes = divmod(int(minutes), 60)
    if hours:
        return f"{hours}:{minutes:02d}:{seconds:06.3f}"
    return f"{minutes}:{seconds:06.3f}"


class StatusBar(Static):
    """One line; never wraps."""

    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; padding: 0 1; }
    """

    def show(self, f: Frame) -> None:
        p = palette(self.app)
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(" D11 ", style=f"bold reverse {p.accent}")
        t.append(f" {f.chapter} ", style="bold")
        title_at = len(t)
        t.append(f"  {'replay' if f.mode == 'replay' else 'scenario'} ", style=p.dim)
        t.append(f.scenario)
        if f.variant:
            t.append("  variant ", style=p.dim)
            t.append(f.variant)
        t.append("  seed ", style=p.dim)
        t.append(str(f.seed))
        t.append("  │ ", style=p.dim)
        t.append("t=", style=p.dim)
        t.append(format_time(f.now_ms), style="bold")
        if f.mode == "replay":
            t.append(f" / {format_time(f.replay_end_ms)}", style=p.dim)
        t.append("  │ ", style=p.dim)
        if f.paused:
            t.append("‖ paused", style=f"bold {p.warn}")
        else:
            t.append(f"▶ x{f.speed:g}", style=f"bold {p.ok}")
            if f.mode == "live" and f.speed_actual and f.speed_actual < 0.8 * f.speed:
                t.append(f" (x{f.speed_actual:.2g} achieved)", style=p.warn)
        t.append("  │ traffic ", style=p.dim)
        style = {"double11": f"bold {p.accent}", "judged": f"bold {p.warn}", "off": p.dim}.get(
            f.profile, ""
        )
        t.append(PROFILE_WORDS.get(f.profile, f.profile), style=style)
        t.append("  │ scale ", style=p.dim)
        t.append(scale_words(f.scale))
        # The chapter's title gives way first: at 100 columns it pushed the clock
        # and the speed off the line.
        room = self.size.width - 2 - t.cell_len if self.size.width else len(f.title)
        title = f.title if len(f.title) <= room else f.title[: max(room - 1, 0)] + "…"
        shown = (title if room > 1 else "", f"bold {p.primary}")
        t = Text.assemble(t[:title_at], shown, t[title_at:])
        t.no_wrap, t.overflow = True, "ellipsis"
        self.update(t)
