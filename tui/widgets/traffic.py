"""Offered and served payments per second, latency, errors: simulated and what it stands for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.cells import cell_len
from rich.text import Text

from tui.model import Frame, format_rate
from tui.widgets.lines import LinesPanel
from tui.widgets.palette import Palette, area_chart, palette, sparkline
from tui.widgets.titles import FittedTitle

if TYPE_CHECKING:
    from typing import Unpack

    from tui.widgets.args import WidgetArgs


__all__ = ["TrafficPanel"]

AXIS_W = 8  # the y axis labels, right of the chart
FIXED_ROWS = 8  # rows that are not the chart (figures, cells, errors)
NAME_W_MAX = 16  # goodput by cell: its names' column at most ("gw-0 cross-shard")
# Declines this share of the offered load are the buyers' balances running out: a
# live session's traffic only pays merchants and nothing tops the buyers up.
DRAINED_SHARE = 0.2
DRAINED_NOTE = "buyers' money ran out"  # short: it shares the errors line at 120 columns


class TrafficPanel(FittedTitle, LinesPanel):
    DEFAULT_CSS = """
    TrafficPanel { padding: 0 1; }
    """

    def __init__(self, **kwargs: Unpack[WidgetArgs]) -> None:
        super().__init__(**kwargs)
        self.frame: Frame | None = None

    def show(self, frame: Frame) -> None:
        self.frame = frame
        self.redraw()

    def build(self) -> Text:
        f = self.frame
        if f is None:
            return Text("")
        p = palette(self.app)
        width = max(10, self.content_size.width - AXIS_W)
        cells = len(f.served_by_cell) + 1 if len(f.served_by_cell) > 1 else 0
        height = max(3, min(24, self.content_size.height - FIXED_ROWS - cells))
        out = Text(no_wrap=True, overflow="ellipsis")
        _headline(out, f, p, self.content_size.width)
        _load_chart(out, f, p, width, height)
        _latency(out, f, p, width)
        _in_flight(out, f, p)
        if cells:
            _by_cell(out, f, p, width)
        _errors(out, f, p)
        return out


def _headline(out: Text, f: Frame, p: Palette, width: int = 0) -> None:
    """Simulated rates, and what they stand for at full scale, on one line of `width`
    (0: any): what does not fit goes first, the rates themselves last of all."""

    def real(tps: float) -> str:
        return format_rate(tps / f.scale) if f.scale else "?"

    failed_tps = f.failed_tps  # over the window offered and goodput are counted over
    bad = f"bold {p.bad}" if failed_tps else ""
    # (text, style, which round of fitting leaves it out: 0 never). The panel's title
    # says "≙ real" and "tx/s" too: at 120 columns, "production" (chapter 7) pushed
    # goodput's own figure off the line.
    pieces: list[tuple[str, str, int]] = []
    if f.traffic_lane:  # the load test's payments are the chapter's panel's, not these
        pieces.append((f"{f.traffic_lane} ", "bold", 0))
    pieces += [
        ("offered ", f"bold {p.primary}", 0),
        (f"{f.offered_tps:,.0f}", f"bold {p.primary}", 0),
        (" tx/s", p.dim, 0),
        (f" (≙ {real(f.offered_tps)} real)", p.dim, 2),
        ("   goodput ", f"bold {p.ok}", 0),
        (f"{f.served_tps:,.0f}", f"bold {p.ok}", 0),
        (" tx/s", p.dim, 3),
        (f" (≙ {real(f.served_tps)} real)", p.dim, 1),
        ("   failed ", bad or "bold", 0),
        (f"{failed_tps:,.0f}", bad, 0),
        (" tx/s", p.dim, 3),
    ]
    for leave_out in (1, 2, 3):
        if not width or sum(cell_len(t) for t, _, _ in pieces) <= width:
            break
        pieces = [piece for piece in pieces if piece[2] != leave_out]
    for text, style, _ in pieces:
        out.append(text, style=style)
    out.append("\n")


def _load_chart(out: Text, f: Frame, p: Palette, width: int, height: int) -> None:
    """Goodput (green); above it, the part of the offered load that did not get through."""
    top = max([*f.offered[-width:], *f.served[-width:], 1.0])
    styles = {0: "", 1: p.ok, 2: p.primary, 3: f"{p.ok} on {p.primary}"}
    for i, row in enumerate(area_chart(f.served, f.offered, width, height, top)):
        # One span per run of a layer: Textual renders a few spans fast, not hundreds.
        run_chars: list[str] = []
        run_layer = row[0][1] if row else 0
        for ch, layer in row:
            if layer != run_layer:
                out.append("".join(run_chars), style=styles[run_layer])
                run_chars, run_layer = [], layer
            run_chars.append(ch)
        out.append("".join(run_chars), style=styles[run_layer])
        label = format_rate(top) if i == 0 else ("0" if i == height - 1 else "")
        out.append(f" {label:<{AXIS_W - 1}}\n", style=p.dim)
    span_s = width * f.bucket_ms / 1000.0
    axis = f"-{span_s:.0f} s"
    legend_w = len("█ goodput (ok in time)  █ offered, not ok")
    pad = max(1, (width - len(axis) - legend_w - 4) // 2)  # " now": at least one space
    out.append(axis + " " * pad, style=p.dim)
    out.append("█", style=p.ok)
    out.append(" goodput (ok in time)  ", style=p.dim)
    out.append("█", style=p.primary)
    out.append(" offered, not ok", style=p.dim)
    rest = width - len(axis) - pad - legend_w
    out.append(f"{'now':>{max(4, rest)}}\n", style=p.dim)


def _latency(out: Text, f: Frame, p: Palette, width: int) -> None:
    """Latency, with its own scale."""
    lat_style = p.bad if f.p99_ms > 500 else (p.warn if f.p99_ms > 100 else p.ok)
    out.append("latency ", style="bold")
    figures = (
        f"p50 {f.p50_ms:,.1f} ms  p99 {f.p99_ms:,.1f} ms "
        if f.p99_ms > 0
        else "p50 – ms  p99 – ms (no replies) "
    )
    out.append(figures, style=lat_style)
    head = len("latency " + figures)
    spark_w = max(4, width - head)
    p99_top = max([*f.p99[-spark_w:], 1.0])
    out.append(sparkline(f.p99, spark_w, p99_top), style=lat_style)
    out.append(f" {p99_top:,.0f}ms\n", style=p.dim)


def _in_flight(out: Text, f: Frame, p: Palette) -> None:
    out.append("in flight ", style="bold")
    out.append(f"{f.in_flight:,}", style=p.warn if f.in_flight > 200 else "")
    out.append(f"   payments {f.payments_total:,}  ok {f.ok_total:,}", style=p.dim)
    out.append(f"   1 column = {f.bucket_ms:.0f} ms\n", style=p.dim)


def _by_cell(out: Text, f: Frame, p: Palette, width: int) -> None:
    """Goodput of each cell (or deciding node), on one scale, over the headline's window:
    the rows add up to its goodput."""
    cell_top = max([v for s in f.served_by_cell.values() for v in s[-width:]] + [1.0])
    roles = {n.id: n.role for n in f.nodes}
    if f.served_by == "cell":
        out.append("goodput by cell\n", style="bold")
    else:  # a payment's reply names the store that decided it, or the gateway that
        # coordinated it across shards: "by store" listed gw-0, with most of them
        out.append("goodput by deciding node\n", style="bold")
    names = {c: f"{c} cross-shard" if roles.get(c) == "gateway" else c for c in f.served_by_cell}
    name_w = min(NAME_W_MAX, max([10, *(len(n) for n in names.values())]))
    for cell, series in f.served_by_cell.items():
        now_tps = f.served_by_cell_tps.get(cell, 0.0)
        label = f"{names[cell][:name_w]:<{name_w}} {now_tps:>6,.0f} tx/s "
        out.append(label)
        out.append(sparkline(series, max(4, width - len(label)), cell_top) + "\n", style=p.ok)


def _errors(out: Text, f: Frame, p: Palette) -> None:
    out.append("errors ", style="bold")
    if f.errors:
        out.append("last 1 s: ", style=p.dim)
        drained = f.errors.get("declined", 0) >= DRAINED_SHARE * max(f.offered_tps, 1.0)
        for i, (kind, n) in enumerate(f.errors.items()):
            out.append(f"{'  ' if i else ''}{kind} {n:,}", style=p.bad)
            if drained and kind == "declined":  # the note names this count, wherever it is
                out.append(f" ({DRAINED_NOTE})", style=p.warn)
        if drained:
            return
    else:
        out.append("none in the last 1 s", style=p.ok)
    if f.errors_total:
        out.append("   whole run: ", style=p.dim)
        out.append("  ".join(f"{k} {v:,}" for k, v in list(f.errors_total.items())[:5]))
