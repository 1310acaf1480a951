"""The HTML report of a run, in the manner of Jepsen's: what happened, when, and what broke.

One self-contained file: the verdicts first (what to look at), then a
timeline with one lane per process (operations as bars, coloured by outcome)
with the fault intervals shaded, then throughput and latency over time with
the same shading (matplotlib, embedded as PNG), then the schedule.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from checks.history import Operation, pair_operations

if TYPE_CHECKING:
    from checks.harness.runner import TestResult

__all__ = ["write_report"]

LANES_MAX = 48  # processes drawn in the timeline; the rest are summarized
OPS_MAX = 4000  # operations drawn; a longer history is sampled evenly
COLOURS = {"ok": "#2e7d32", "fail": "#c62828", "info": "#f9a825"}


def write_report(result: TestResult, path: Path) -> None:
    ops = pair_operations([e for e in result.history if e.process != "nemesis"])
    intervals = result.schedule.intervals()
    end_ms = max(result.end_ms, 1.0)
    parts = [
        _head(result, path.parent),
        _verdicts(result),
        "<h2>Timeline</h2>",
        _timeline_svg(ops, intervals, end_ms, _violation_times(result)),
        "<h2>Throughput and latency</h2>",
        f'<img alt="throughput and latency" src="data:image/png;base64,{_plots(ops, intervals)}">',
        _schedule(result),
        "</body></html>",
    ]
    path.write_text("\n".join(parts))


def _violation_times(result: TestResult) -> list[tuple[float, str]]:
    """(time_ms, checker) of each violation a failing verdict's witness dates."""
    marks: list[tuple[float, str]] = []
    for name, verdict in result.verdicts.items():
        if verdict.valid is not False or not isinstance(verdict.witness, list):
            continue
        for item in verdict.witness:
            if isinstance(item, dict) and isinstance(item.get("time_ms"), int | float):
                marks.append((float(item["time_ms"]), name))
    return marks


def _head(result: TestResult, folder: Path) -> str:
    spec = result.spec
    verdict = {True: "VALID", False: "INVALID"}.get(result.valid, "UNKNOWN")  # type: ignore[call-overload]
    colour = {True: "#2e7d32", False: "#c62828"}.get(result.valid, "#f9a825")  # type: ignore[call-overload]
    title = html.escape(spec.name)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 4px 8px; }}
.verdict {{ font-size: 1.6em; font-weight: bold; color: {colour}; }}
code {{ background: #f4f4f4; padding: 1px 4px; }}
</style></head><body>
<h1>{title}</h1>
<p class="verdict">{verdict}</p>
<p>seed {spec.seed} · backend {spec.backend} · {spec.time_s:g} s of traffic and faults ·
digest <code>{html.escape(result.digest or "-")}</code></p>
<p>Replay: <code>d11 replay {html.escape(str(folder))}</code> · or
<code>{html.escape(_test_command(spec, folder))}</code></p>"""


def _test_command(spec: Any, folder: Path) -> str:
    """The `d11 test` line that runs this exact schedule again."""
    words = ["d11", "test", spec.chapter]
    if spec.variant:
        words += ["--variant", spec.variant]
    words += ["--workload", spec.workload, "--time", f"{spec.time_s:g}", "--seed", str(spec.seed)]
    return " ".join([*words, "--schedule", str(folder / "schedule.json")])


def _verdicts(result: TestResult) -> str:
    rows = []
    for name, verdict in result.verdicts.items():
        judged = result.judged.get(name)
        expected = ""
        if judged is not None and judged.expected is not None:
            expected = f"expected {judged.expected.valid}: {judged.expected.why}"
        outcome = judged.outcome if judged is not None else ""
        rows.append(
            f"<tr><td>{html.escape(name)}</td><td>{verdict.valid}</td>"
            f"<td>{html.escape(outcome)}</td><td>{html.escape(verdict.summary)}</td>"
            f"<td>{html.escape(expected)}</td></tr>"
        )
    return (
        "<h2>Verdicts</h2><table><tr><th>check</th><th>valid</th><th>outcome</th>"
        "<th>summary</th><th>expectation</th></tr>" + "".join(rows) + "</table>"
    )


def _schedule(result: TestResult) -> str:
    rows = "".join(
        f"<tr><td>{a.at_ms:.1f}</td><td>{html.escape(a.fault)}</td><td>{html.escape(a.op)}</td>"
        f"<td><code>{html.escape(_short(a.params))}</code></td></tr>"
        for a in result.schedule.actions
    )
    if not rows:
        return "<h2>Faults</h2><p>none: a control run</p>"
    return (
        "<h2>Faults</h2><table><tr><th>time (ms)</th><th>fault</th><th>action</th>"
        "<th>parameters</th></tr>" + rows + "</table>"
    )


def _short(params: dict[str, Any]) -> str:
    text = ", ".join(f"{k}={v}" for k, v in params.items())
    return text if len(text) <= 160 else text[:157] + "..."


# --8<-- [start:timeline]
def _timeline_svg(
    ops: list[Operation],
    intervals: list[tuple[float, float, str]],
    end_ms: float,
    violations: list[tuple[float, str]],
) -> str:
    """One lane per process, one bar per operation, fault intervals shaded,
    and a red line where each violation was seen."""
    processes = sorted({op.process for op in ops}, key=str)[:LANES_MAX]
    lane = {p: i for i, p in enumerate(processes)}
    step = max(1, len(ops) // OPS_MAX)
    width, left, lane_px = 1100, 80, 14
    height = lane_px * max(1, len(processes)) + 30
    scale = (width - left - 10) / end_ms

    def x(t_ms: float) -> float:
        return left + t_ms * scale

    shapes = [
        f'<rect x="{x(a):.1f}" y="0" width="{max(1.0, (b - a) * scale):.1f}" '
        f'height="{height - 20}" fill="#ffcdd2" opacity="0.5">'
        f"<title>{html.escape(f)}: {a:.0f}-{b:.0f} ms</title></rect>"
        for a, b, f in intervals
    ]
    for op in ops[::step]:
        if op.process not in lane:
            continue
        start = op.invoke.time_ms
        stop = op.completion.time_ms if op.completion is not None else end_ms
        colour = COLOURS.get(op.type, "#777")
        tip = html.escape(f"{op.process} {op.f} {op.invoke.value!r:.80} -> {op.type}")
        shapes.append(
            f'<rect x="{x(start):.1f}" y="{lane[op.process] * lane_px + 2}" '
            f'width="{max(1.0, (stop - start) * scale):.1f}" height="{lane_px - 4}" '
            f'fill="{colour}"><title>{tip}</title></rect>'
        )
    shapes += [
        f'<line x1="{x(t):.1f}" y1="0" x2="{x(t):.1f}" y2="{height - 20}" stroke="#b71c1c" '
        f'stroke-width="2"><title>{html.escape(name)}: violation seen at {t:.0f} ms</title></line>'
        for t, name in violations
    ]
    labels = [
        f'<text x="2" y="{lane[p] * lane_px + lane_px - 3}" font-size="10">'
        f"{html.escape(str(p))}</text>"
        for p in processes
    ]
    axis = f'<text x="{left}" y="{height - 5}" font-size="10">0 ms</text>' + (
        f'<text x="{width - 80}" y="{height - 5}" font-size="10">{end_ms:.0f} ms</text>'
    )
    note = ""
    if len({op.process for op in ops}) > LANES_MAX:
        note = f"<p>showing the first {LANES_MAX} processes</p>"
    body = "".join(shapes + labels) + axis
    return f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">{body}</svg>{note}'


# --8<-- [end:timeline]


def _plots(ops: list[Operation], intervals: list[tuple[float, float, str]]) -> str:
    """Throughput by outcome and latency over time, faults shaded; base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 5.5), sharex=True)
    bucket_ms = 100.0
    for kind, colour in COLOURS.items():
        counts: dict[int, int] = {}
        for op in ops:
            if op.type == kind and op.completion is not None:
                b = int(op.completion.time_ms // bucket_ms)
                counts[b] = counts.get(b, 0) + 1
        if counts:
            xs = sorted(counts)
            top.plot(
                [b * bucket_ms / 1000 for b in xs],
                [counts[b] * 1000 / bucket_ms for b in xs],
                color=colour,
                label=kind,
                linewidth=1,
            )
    top.set_ylabel("completions/s")
    top.legend(loc="upper right")
    done = [op for op in ops if op.completion is not None]
    bottom.scatter(
        [op.completion.time_ms / 1000 for op in done],  # type: ignore[union-attr]
        [max(0.01, op.completion.time_ms - op.invoke.time_ms) for op in done],  # type: ignore[union-attr]
        s=2,
        c=[COLOURS.get(op.type, "#777") for op in done],
    )
    bottom.set_yscale("log")
    bottom.set_ylabel("latency (ms)")
    bottom.set_xlabel("time (s)")
    for axis in (top, bottom):
        for a, b, _ in intervals:
            axis.axvspan(a / 1000, b / 1000, color="#ef9a9a", alpha=0.3, linewidth=0)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")
