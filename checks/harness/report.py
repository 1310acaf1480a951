"""The HTML report of a run, in the manner of Jepsen's: what happened, when, and what broke.

One self-contained file: the verdicts first (what to look at), each beside
what the chapter expects of it, so a failure the chapter teaches does not read
as an alarm; then a timeline with one lane per process, labelled by the
client that ran it (operations as bars, coloured by outcome) with the fault
intervals shaded; then throughput and latency over time with the same
shading (matplotlib, embedded as PNG), then the schedule. A legend says what
each colour means.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from checks.history import Event, Operation, pair_operations
from checks.verdict import Validity

if TYPE_CHECKING:
    from checks.harness.spec import TestResult
    from checks.nemesis import Schedule

__all__ = ["report_parts", "write_report"]

LANES_MAX = 48  # processes drawn in the timeline; the rest are summarized
OPS_MAX = 4000  # operations drawn; a longer history is sampled evenly
COLOURS = {"ok": "#2e7d32", "fail": "#c62828", "info": "#f9a825"}
IN_FLIGHT = "#777"  # an operation with no completion by the end of the run
FAULT_SHADE = "#ffcdd2"
VIOLATION_LINE = "#b71c1c"
CLIENT_PROCESSES = 1_000_000  # a client's process ids: (i + 1) * 1_000_000 + k

# What the whole run's verdict means, set against the chapter's expectations:
# (headline, colour, explanation). An expected failure is the chapter's lesson.
_OUTCOMES = {
    "as-expected-valid": ("VALID", "#2e7d32", "as the chapter expects"),
    "as-expected-invalid": (
        "INVALID, AS EXPECTED",
        "#1565c0",
        "the chapter expects this failure: it is the lesson, not an alarm",
    ),
    "unexpected": ("INVALID, UNEXPECTED", "#c62828", "the chapter says this should hold"),
    "unexpected-pass": (
        "VALID, UNEXPECTED",
        "#c62828",
        "the chapter expects a failure here and none was seen",
    ),
    "unknown": ("UNKNOWN", "#f9a825", "a checker could not decide"),
}


def write_report(result: TestResult, path: Path) -> None:
    intervals = result.schedule.intervals()
    end_ms = max(result.end_ms, 1.0)
    violations = _violation_times(result)
    plots, timeline = result.report_plots_png, result.report_timeline_svg
    if plots is None or timeline is None or violations:  # (else drawn while the checkers ran)
        ops = _operations(result.history)
        plots = plots or _plots(ops, intervals)
        timeline = _timeline_svg(ops, intervals, end_ms, violations)
    parts = [
        _head(result, path.parent),
        _verdicts(result),
        "<h2>Timeline</h2>",
        _legend(),
        timeline,
        "<h2>Throughput and latency</h2>",
        f'<img alt="throughput and latency" src="data:image/png;base64,{plots}">',
        _schedule(result),
        "</body></html>",
    ]
    path.write_text("\n".join(parts))


def report_parts(history: list[Event], schedule: Schedule, end_ms: float) -> tuple[str | None, str]:
    """What of the report no verdict changes, made before the verdicts are in
    (`TestResult.report_plots_png` and `report_timeline_svg`): the plots (None
    without a plotting library: the report then says why itself) and the
    timeline as it is when no verdict dates a violation. `end_ms`: the run's."""
    ops = _operations(history)
    intervals = schedule.intervals()
    try:
        plots: str | None = _plots(ops, intervals)
    except ImportError:
        plots = None
    return plots, _timeline_svg(ops, intervals, max(end_ms, 1.0), [])


def _operations(history: list[Event]) -> list[Operation]:
    # Operations only: a process that never invokes (the nemesis, chapter 7's
    # trace spans) records observations, not calls.
    invokers = {e.process for e in history if e.type == "invoke"}
    return pair_operations([e for e in history if e.process in invokers])


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


def run_outcome(result: TestResult) -> str:
    """The run's verdict against the chapter's expectations: a key of _OUTCOMES."""
    outcomes = {j.outcome for j in result.judged.values()}
    if "unexpected-failure" in outcomes:
        return "unexpected"
    if "unexpected-pass" in outcomes:
        return "unexpected-pass"
    if result.valid == "unknown" or "unknown" in outcomes:
        return "unknown"
    if result.valid is False:
        # Every failure was judged expected (a check with no judgement must pass).
        failing = {n for n, v in result.verdicts.items() if v.valid is False}
        expected = {n for n, j in result.judged.items() if j.outcome == "expected-failure"}
        return "as-expected-invalid" if failing <= expected else "unexpected"
    return "as-expected-valid"


def _head(result: TestResult, folder: Path) -> str:
    spec = result.spec
    verdict, colour, meaning = _OUTCOMES[run_outcome(result)]
    title = html.escape(spec.name)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 4px 8px; }}
.verdict {{ font-size: 1.6em; font-weight: bold; color: {colour}; margin-bottom: 0; }}
.meaning {{ color: {colour}; margin-top: 0.2em; }}
.legend span {{ display: inline-block; margin-right: 1.2em; }}
.swatch {{ display: inline-block; width: 1.4em; height: 0.8em; margin-right: 0.3em;
  vertical-align: middle; }}
code {{ background: #f4f4f4; padding: 1px 4px; }}
</style></head><body>
<h1>{title}</h1>
<p class="verdict">{verdict}</p>
<p class="meaning">{html.escape(meaning)}</p>
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


_OUTCOME_COLOURS = {
    "pass": "#2e7d32",
    "expected-failure": "#1565c0",
    "unexpected-failure": "#c62828",
    "unexpected-pass": "#c62828",
    "unknown": "#f9a825",
}


_EXPECTED_WORDS: dict[Validity, str] = {
    True: "must hold",
    False: "expected to fail",
    "unknown": "expected unknown",
}
_VALID_WORDS: dict[Validity, str] = {True: "valid", False: "INVALID"}


def _verdicts(result: TestResult) -> str:
    """Each check: its verdict, what the chapter expects of it, and whether that held."""
    rows = []
    for name, verdict in result.verdicts.items():
        judged = result.judged.get(name)
        expected = "must hold"
        if judged is not None and judged.expected is not None:
            want = _EXPECTED_WORDS.get(judged.expected.valid, "may fail")
            expected = f"{want}: {judged.expected.why}"
        outcome = judged.outcome if judged is not None else ""
        colour = _OUTCOME_COLOURS.get(outcome, "#222")
        valid = _VALID_WORDS.get(verdict.valid, "unknown")
        rows.append(
            f"<tr><td>{html.escape(name)}</td><td>{valid}</td>"
            f'<td>{html.escape(expected)}</td><td style="color:{colour};font-weight:bold">'
            f"{html.escape(outcome)}</td><td>{html.escape(verdict.summary)}</td></tr>"
        )
    return (
        "<h2>Verdicts</h2><table><tr><th>check</th><th>verdict</th><th>the chapter expects</th>"
        "<th>outcome</th><th>summary</th></tr>" + "".join(rows) + "</table>"
    )


def _legend() -> str:
    """What each colour of the timeline and the plots means."""
    items = [
        (COLOURS["ok"], "ok: acknowledged"),
        (COLOURS["fail"], "fail: certainly no effect (declined, rejected)"),
        (COLOURS["info"], "info: outcome unknown (timed out, no answer)"),
        (IN_FLIGHT, "still in flight at the end"),
        (FAULT_SHADE, "a fault in force (hover for which)"),
        (VIOLATION_LINE, "red line: where a checker saw a violation"),
    ]
    spans = "".join(
        f'<span><i class="swatch" style="background:{c}"></i>{html.escape(t)}</span>'
        for c, t in items
    )
    return f'<p class="legend">{spans}</p>'


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


def _timeline_svg(
    ops: list[Operation],
    intervals: list[tuple[float, float, str]],
    end_ms: float,
    violations: list[tuple[float, str]],
) -> str:
    """One lane per process, one bar per operation, fault intervals shaded,
    and a red line where each violation was seen."""
    lanes = client_lanes(ops)
    processes = [p for p, _ in lanes]
    lane = {p: i for i, p in enumerate(processes)}
    step = max(1, len(ops) // OPS_MAX)
    width, left, lane_px = 1100, 130, 14
    height = lane_px * max(1, len(processes)) + 30
    scale = (width - left - 10) / end_ms

    def x(t_ms: float) -> float:
        return left + t_ms * scale

    shapes = [
        f'<rect x="{x(a):.1f}" y="0" width="{max(1.0, (b - a) * scale):.1f}" '
        f'height="{height - 20}" fill="{FAULT_SHADE}" opacity="0.5">'
        f"<title>{html.escape(f)}: {a:.0f}-{b:.0f} ms</title></rect>"
        for a, b, f in intervals
    ]
    for op in ops[::step]:
        if op.process not in lane:
            continue
        start = op.invoke.time_ms
        stop = op.completion.time_ms if op.completion is not None else end_ms
        colour = COLOURS.get(op.type, IN_FLIGHT) if op.completion is not None else IN_FLIGHT
        tip = html.escape(f"{op.process} {op.f} {op.invoke.value!r:.80} -> {op.type}")
        shapes.append(
            f'<rect x="{x(start):.1f}" y="{lane[op.process] * lane_px + 2}" '
            f'width="{max(1.0, (stop - start) * scale):.1f}" height="{lane_px - 4}" '
            f'fill="{colour}"><title>{tip}</title></rect>'
        )
    shapes += [
        f'<line x1="{x(t):.1f}" y1="0" x2="{x(t):.1f}" y2="{height - 20}" '
        f'stroke="{VIOLATION_LINE}" stroke-width="2">'
        f"<title>{html.escape(name)}: violation seen at {t:.0f} ms</title></line>"
        for t, name in violations
    ]
    labels = [
        f'<text x="2" y="{lane[p] * lane_px + lane_px - 3}" font-size="10">'
        f"{html.escape(label)}<title>process {html.escape(str(p))}</title></text>"
        for p, label in lanes
    ]
    axis = f'<text x="{left}" y="{height - 5}" font-size="10">0 ms</text>' + (
        f'<text x="{width - 80}" y="{height - 5}" font-size="10">{end_ms:.0f} ms</text>'
    )
    note = ""
    total = len({op.process for op in ops})
    if total > len(lanes):
        note = (
            f"<p>showing {len(lanes)} of {total} processes: the first ones of each client "
            "(a client runs each operation on a process of its own, Jepsen's rule)</p>"
        )
    body = "".join(shapes + labels) + axis
    return f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">{body}</svg>{note}'


def client_lanes(ops: list[Operation]) -> list[tuple[Any, str]]:
    """(process, label) of each lane: processes grouped by the client that ran them.

    A client's process ids are (i + 1) * 1,000,000 + k; its name is in its
    payment ids ("client-3-7" was client-3's 7th). Every client gets a share
    of the lanes, so a long run does not show the first client only.
    """
    owners: dict[Any, dict[Any, None]] = {}  # owner -> its processes (a dict: in order, once)
    names: dict[Any, str] = {}
    for op in ops:
        p = op.process
        owner = p // CLIENT_PROCESSES if isinstance(p, int) else p
        owners.setdefault(owner, {})[p] = None
        value = op.invoke.value
        if owner not in names and isinstance(value, dict) and isinstance(value.get("id"), str):
            head, _, seq = value["id"].rpartition("-")
            if head and seq.isdigit():
                names[owner] = head
    share = max(1, LANES_MAX // max(1, len(owners)))
    lanes: list[tuple[Any, str]] = []
    for owner in sorted(owners, key=str):
        procs = sorted(
            owners[owner],
            key=lambda p: (isinstance(p, str), p if isinstance(p, int) else 0, str(p)),
        )
        for p in procs[:share]:
            if isinstance(p, int):
                name = names.get(owner, f"client {owner}")
                lanes.append((p, f"{name} · {p - owner * CLIENT_PROCESSES}"))
            else:
                lanes.append((p, str(p)))
    return lanes[:LANES_MAX]


def latency_points(ops: list[Operation]) -> list[tuple[float, float, str]]:
    """(completion time s, latency ms, outcome) of each completed operation.

    Operations that took no time (the setup's opening balances, recorded at
    one instant) have no latency to draw on a log scale: they are left out,
    not pinned to a made-up 0.01 ms.
    """
    return [
        (op.completion.time_ms / 1000, op.completion.time_ms - op.invoke.time_ms, op.type)
        for op in ops
        if op.completion is not None and op.completion.time_ms > op.invoke.time_ms
    ]


def _plots(ops: list[Operation], intervals: list[tuple[float, float, str]]) -> str:
    """Throughput by outcome and latency over time, faults shaded; base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

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
    # One marker line per outcome, not a scatter: Agg stamps a line's one
    # marker at every point, where a scatter draws each point as a path of
    # its own (a minute of chapter 4, 45,000 points: 0.8 s of the report's
    # 1.7 s of CPU). Markers of the scatter's size (s=2: an area in pt²).
    by_kind: dict[str, tuple[list[float], list[float]]] = {}
    for t_s, latency_ms, kind in latency_points(ops):
        xs_s, ys_ms = by_kind.setdefault(kind, ([], []))
        xs_s.append(t_s)
        ys_ms.append(latency_ms)
    for kind, (xs_s, ys_ms) in by_kind.items():
        bottom.plot(  # (arrays: matplotlib converts a list point by point)
            np.array(xs_s, dtype=float),
            np.array(ys_ms, dtype=float),
            linestyle="none",
            marker="o",
            markersize=math.sqrt(2),
            color=COLOURS.get(kind, IN_FLIGHT),
        )
    bottom.set_yscale("log")
    bottom.set_ylabel("latency (ms)")
    bottom.set_xlabel("time (s)")
    for axis in (top, bottom):
        for start_ms, end_ms, _ in intervals:
            axis.axvspan(
                start_ms / 1000, end_ms / 1000, color=FAULT_SHADE, alpha=0.6, linewidth=0, zorder=0
            )
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")
