"""Colours with a meaning, taken from the app's current theme (dark or light)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import App

__all__ = ["Palette", "palette", "sparkline"]

_BLOCKS = " ▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class Palette:
    ok: str  # healthy, holds, served
    bad: str  # down, broken, failed
    warn: str  # degraded, paused, partial cut, unknown
    accent: str  # selection, the spike
    primary: str  # titles, offered load
    info: str  # secondary series
    dim: str = "dim"


def palette(app: App) -> Palette:
    theme = app.current_theme
    return Palette(
        ok=theme.success or "green",
        bad=theme.error or "red",
        warn=theme.warning or "yellow",
        accent=theme.accent or "magenta",
        primary=theme.primary or "blue",
        info=theme.secondary or "cyan",
    )


def sparkline(values: list[float], width: int, top: float | None = None) -> str:
    """The last `width` values as block characters, scaled to `top` (default: their max)."""
    if width <= 0:
        return ""
    shown = values[-width:]
    shown = [0.0] * (width - len(shown)) + shown
    peak = top if top is not None else max(shown, default=0.0)
    if peak <= 0:
        return "▁" * width
    out = []
    for v in shown:
        level = 0 if v <= 0 else max(1, min(8, round(v / peak * 8)))
        out.append(_BLOCKS[level] if level else "▁")
    return "".join(out)


def area_chart(
    lower: list[float], upper: list[float], width: int, height: int, top: float
) -> list[list[tuple[str, int]]]:
    """Two stacked series as rows of (char, layer) cells, top row first.

    `lower` (say served) is drawn from the bottom; `upper` (say offered) above
    it where it is higher. Each cell is a block character filled in eighths;
    layer 1 = lower, 2 = upper, 3 = lower with upper above it in the same cell
    (draw with fg = lower colour and bg = upper colour), 0 = empty.
    """
    assert width > 0 and height > 0 and top > 0
    low = ([0.0] * width + lower)[-width:]
    up = ([0.0] * width + upper)[-width:]
    rows: list[list[tuple[str, int]]] = []
    for r in range(height - 1, -1, -1):
        base = r * 8
        row: list[tuple[str, int]] = []
        for c in range(width):
            s = round(low[c] / top * height * 8)
            o = max(s, round(up[c] / top * height * 8))
            if s >= base + 8:
                row.append(("█", 1))
            elif s > base:
                row.append((_BLOCKS[s - base], 3 if o >= base + 8 else 1))
            elif o >= base + 8:
                row.append(("█", 2))
            elif o > base:
                row.append((_BLOCKS[o - base], 2))
            else:
                row.append((" ", 0))
        rows.append(row)
    return rows
