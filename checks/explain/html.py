"""A self-contained HTML timeline of a linearizability failure.

In the spirit of Porcupine's visualization: one lane per process, each
operation a bar from its call to its return (to the right edge when its
outcome is unknown). The longest linearization found is numbered in order,
in green, and hovering a bar shows the operation and the model state after
it; the operation that cannot be linearized is red, with a line at its
return: the point no linearization gets past. Operations of the witness are
outlined. No scripts, no external files: it opens anywhere, offline.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from checks.explain.witness import Explanation
from checks.lin.model import Call, Model

LANE_H = 28  # pixels per process lane
BAR_H = 18
SLOT_W = 26  # pixels per event position
LEFT_W = 110  # room for lane labels
WIDTH_MAX = 20_000  # beyond this, positions are squeezed


def timeline_html(
    ex: Explanation,
    model: Model,
    title: str,
    summary: list[str],
    at: Callable[[int], str] | None = None,
) -> str:
    """The page: the summary, the timeline, and the linearization as a table.

    `at` names a history position for people (default "event N").
    """
    at = at or (lambda i: f"event {i}")
    layout = _Layout(ex)
    rank = {i: k for k, i in enumerate(ex.order)}  # call id -> its place in the linearization
    witness = set(ex.witness) | set(ex.weakened)
    parts = [_lane(layout, p) for p in layout.procs]
    parts += [_bar(layout, ex, model, c, rank, c.id in witness, at) for c in ex.calls]
    if ex.stuck is not None:
        xs = layout.x(ex.calls[ex.stuck].ret) + layout.slot_w * 0.8
        parts.append(
            f'<line x1="{xs:.1f}" x2="{xs:.1f}" y1="18" y2="{layout.height - 10}" class="fail"/>'
            f'<text x="{xs - 4:.1f}" y="14" class="failtext" text-anchor="end">'
            "no linearization gets past here</text>"
        )
    rows = "".join(
        f"<tr><td>{k + 1}</td><td>{escape(str(ex.calls[i].process))}</td>"
        f"<td>{escape(model.describe_call(ex.calls[i]))}</td>"
        f"<td>{escape(model.describe_state(s))}</td></tr>"
        for k, (i, s) in enumerate(zip(ex.order, ex.states, strict=True))
    )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{layout.width:.0f}" '
        f'height="{layout.height}">' + "".join(parts) + "</svg>"
    )
    summary_html = "".join(
        f'<li class="sub">{escape(line.strip().removeprefix("- "))}</li>'
        if line.startswith(" ")
        else f"<li>{escape(line)}</li>"
        for line in summary
    )
    return _PAGE.format(title=escape(title), summary=summary_html, svg=svg, rows=rows, css=_CSS)


class _Layout:
    """Where things go: a column per history position, a lane per process."""

    def __init__(self, ex: Explanation) -> None:
        calls = ex.calls
        positions = sorted({c.call for c in calls} | {c.ret for c in calls if c.ret is not None})
        self.slot = {p: k for k, p in enumerate(positions)}
        self.width_slots = len(positions) + 2
        self.slot_w = max(2.0, min(SLOT_W, WIDTH_MAX / self.width_slots))
        self.procs = sorted(
            {c.process for c in calls},
            key=lambda p: (isinstance(p, str), p if isinstance(p, int) else 0, str(p)),
        )
        self.lane = {p: k for k, p in enumerate(self.procs)}
        self.width = LEFT_W + self.width_slots * self.slot_w + 20
        self.height = 30 + len(self.procs) * LANE_H + 20

    def x(self, pos: int | None) -> float:
        """The left edge of a position's column; an unknown return is at the right edge."""
        k = self.width_slots - 1 if pos is None else self.slot[pos]
        return LEFT_W + k * self.slot_w

    def y(self, process: int | str) -> int:
        return 30 + self.lane[process] * LANE_H


def _lane(layout: _Layout, process: int | str) -> str:
    """A process's label and the line under its lane."""
    y = layout.y(process)
    return (
        f'<text x="6" y="{y + BAR_H - 4}" class="lane">process {escape(str(process))}</text>'
        f'<line x1="{LEFT_W}" x2="{layout.width - 10}" y1="{y + BAR_H + 5}" '
        f'y2="{y + BAR_H + 5}" class="sep"/>'
    )


def _bar(
    layout: _Layout,
    ex: Explanation,
    model: Model,
    c: Call,
    rank: dict[int, int],
    in_witness: bool,
    at: Callable[[int], str],
) -> str:
    """One operation's bar, classed by its part in the failure, with its hover text."""
    y = layout.y(c.process)
    x0, x1 = layout.x(c.call), layout.x(c.ret) + layout.slot_w * 0.8
    classes = ["op"]
    if c.id == ex.stuck:
        classes.append("stuck")
    elif c.id in rank:
        classes.append("lin")
    if c.ret is None:
        classes.append("unknown")
    if in_witness:
        classes.append("witness")
    hover = [f"process {c.process}: {model.describe_call(c)}"]
    hover.append(f"{at(c.call)} to {'?' if c.ret is None else at(c.ret)}")
    if c.id in rank:
        state_after = ex.states[rank[c.id]]
        hover.append(f"linearized #{rank[c.id] + 1}")
        hover.append(f"state after: {model.describe_state(state_after)}")
    elif c.id == ex.stuck:
        hover.append("cannot be linearized after the numbered operations")
    else:
        hover.append("not in the longest linearization")
    label = f"{rank[c.id] + 1}. " if c.id in rank else ""
    label += model.describe_call(c)
    return (
        f'<g class="{" ".join(classes)}"><title>{escape(chr(10).join(hover))}</title>'
        f'<rect x="{x0:.1f}" y="{y}" width="{max(3.0, x1 - x0):.1f}" height="{BAR_H}" rx="3"/>'
        f'<text x="{x0 + 3:.1f}" y="{y + BAR_H - 5}" class="label">'
        f"{escape(_clip(label, int((x1 - x0) / 6)))}</text></g>"
    )


def _clip(text: str, chars: int) -> str:
    if chars <= 1:
        return ""
    return text if len(text) <= chars else text[: max(0, chars - 1)] + "…"


_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; } ul { line-height: 1.5; }
li.sub { margin-left: 2em; list-style: circle; font-family: monospace; }
.timeline { overflow-x: auto; border: 1px solid #ddd; padding: 4px; }
.lane { font-size: 12px; fill: #555; }
.sep { stroke: #eee; }
.op rect { fill: #d9d9d9; stroke: #999; }
.op.lin rect { fill: #b7e1b0; stroke: #4a8f3f; }
.op.stuck rect { fill: #f4a6a6; stroke: #c62828; stroke-width: 2; }
.op.unknown rect { fill-opacity: 0.45; stroke-dasharray: 4 3; }
.op.witness rect { stroke: #000; stroke-width: 2; }
.op:hover rect { stroke: #1565c0; stroke-width: 3; }
.label { font-size: 10px; pointer-events: none; }
.fail { stroke: #c62828; stroke-width: 2; stroke-dasharray: 6 3; }
.failtext { font-size: 12px; fill: #c62828; }
table { border-collapse: collapse; font-size: 13px; margin-top: 1em; }
td, th { border: 1px solid #ddd; padding: 2px 8px; text-align: left; }
.legend span { display: inline-block; padding: 0 6px; margin-right: 8px; border: 1px solid #999; }
"""

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{css}</style></head>
<body>
<h1>{title}</h1>
<ul>{summary}</ul>
<p class="legend"><span style="background:#b7e1b0">linearized, in order</span>
<span style="background:#f4a6a6">cannot be linearized</span>
<span style="background:#d9d9d9">not reached</span>
<span style="border:2px solid #000">in the witness</span>
<span style="border-style:dashed">outcome unknown</span>
Hover an operation for the model state after it.</p>
<div class="timeline">{svg}</div>
<h2>The longest linearization</h2>
<table><tr><th>#</th><th>process</th><th>operation</th><th>state after</th></tr>{rows}</table>
</body></html>
"""
