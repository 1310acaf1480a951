"""The SLO checker of chapter 6: does the critical path hold through a spike?

From the history alone (client operations, plus the `nemesis` marks of the
spike and the `degrade:...` records the sidecars write), it judges five things:

1. goodput: payments acknowledged during the spike, per second, as a share
   of what could have been served (the capacity, or the offered load if
   that was lower), at least `goodput_share_min`;
2. latency: the p99 of acknowledged payments within the deadline;
3. order of shedding: best-effort work went off no later than the first
   payment that failed during the spike;
4. deadlines: no server started work on a request after its deadline
   (`served-late` records);
5. metastability: after the spike, goodput (acknowledged over offered, per
   window) is back above `recovered_share_min` within `recover_within_ms`,
   and stays there until traffic ends.

A history with no spike marked (a harness run, whose faults are crashes and
cuts rather than load) is judged on 2 and 4 only.

On a real backend the chapter also writes how late the harness's own timers
ran (`host-lag`, chapters/ch6_degrade/host.py), and each gateway how late
its own ran (`degrade:host-lag`, the sidecar's probe). When the harness's p99,
or the worst gateway's typical second, is more than `host_lag_max_ms`, the
machine was overloaded: wall-clock latency, goodput and recovery (1, 2, 5)
measure the wait for a core as much as the controls, so they are not judged;
a miss there is "could not tell". What the controls alone decide (3, 4) is
still judged.

The verdict's details carry every figure, so a chapter can print them side
by side for two variants.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from checks.history import Event
from checks.verdict import Verdict

__all__ = ["SloTargets", "check_slo"]


@dataclass(frozen=True)
class SloTargets:
    capacity_tps: float  # payments per second the critical path can serve
    deadline_ms: float  # the clients' deadline
    goodput_share_min: float = 0.9  # 0: no goodput target (a stall, not a spike)
    shed_order: bool = True  # judge whether best-effort work went off first
    recover_within_ms: float = 5_000.0
    recovered_share_min: float = 0.9
    window_ms: float = 1_000.0
    # The harness's timers later than this at the p99: the host, not the controls,
    # set the latencies (a tenth of the chapter's deadline of 1 s).
    host_lag_max_ms: float = 100.0

    def __post_init__(self) -> None:
        assert self.capacity_tps > 0 and self.deadline_ms > 0 and self.window_ms > 0, self
        assert self.host_lag_max_ms > 0, self


@dataclass(frozen=True)
class _Op:
    invoke_ms: float
    end_ms: float
    kind: str  # ok | fail | info
    error: str
    merchant: str = ""  # who is paid (the payment's "to")


def _payments(history: list[Event], until_ms: float) -> list[_Op]:
    """Transfers invoked before `until_ms` (the final phase), paired with their ends."""
    open_: dict[Any, Event] = {}
    ops: list[_Op] = []
    for e in history:
        if e.f != "transfer":
            continue
        if e.type == "invoke":
            if e.time_ms < until_ms:
                open_[e.process] = e
        else:
            inv = open_.pop(e.process, None)
            if inv is not None:
                to = str((inv.value or {}).get("to", ""))
                ops.append(_Op(inv.time_ms, e.time_ms, e.type, str(e.extra.get("error", "")), to))
    ops += [_Op(inv.time_ms, float("inf"), "info", "no answer") for inv in open_.values()]
    return ops


def _p99(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


# --8<-- [start:check-slo]
def check_slo(history: list[Event], targets: SloTargets) -> Verdict:
    marks = {e.f: e.time_ms for e in history if e.process == "nemesis"}
    final_ms = marks.get("final-phase", max((e.time_ms for e in history), default=0.0))
    ops = _payments(history, final_ms)
    if not ops:
        return Verdict("slo", "unknown", "no payments in the history")
    # Without a spike (a harness run: faults, no overload) only deadlines and
    # latency are judged; goodput under a crash is the fault's doing, not the load's.
    spiky = "spike-start" in marks and "spike-end" in marks
    spike_ms = marks.get("spike-start", min(o.invoke_ms for o in ops))
    calm_ms = marks.get("spike-end", final_ms)
    traffic_end_ms = max(o.invoke_ms for o in ops)
    problems: list[str] = []  # of time, on the wall clock: 1, 2 and 5
    broken: list[str] = []  # of what the controls alone decide: 3 and 4

    # 1. Goodput through the spike, against what could have been served.
    span_s = max(calm_ms - spike_ms, 1.0) / 1000.0
    acked = sum(1 for o in ops if o.kind == "ok" and spike_ms <= o.end_ms < calm_ms)
    offered_tps = sum(1 for o in ops if spike_ms <= o.invoke_ms < calm_ms) / span_s
    servable_tps = min(targets.capacity_tps, offered_tps) or 1.0
    share = acked / span_s / servable_tps
    if spiky and targets.goodput_share_min and share < targets.goodput_share_min:
        problems.append(f"goodput {share:.0%} of what could be served in the spike")

    # 2. The p99 of acknowledged payments.
    p99_ms = _p99([o.end_ms - o.invoke_ms for o in ops if o.kind == "ok"])
    if p99_ms > targets.deadline_ms:
        problems.append(f"p99 {p99_ms:.0f} ms > deadline {targets.deadline_ms:.0f} ms")

    # 3. Best-effort work goes off before critical work fails.
    degrade = [e for e in history if e.process == "nemesis" and e.f.startswith("degrade:")]
    off = [e.time_ms for e in degrade
           if (e.f == "degrade:switch" and not e.value.get("on"))
           or (e.f == "degrade:best-effort" and e.value.get("outcome") == "shed")]  # fmt: skip
    first_off_ms = min(off, default=float("inf"))
    # On an overloaded host a payment can go unanswered because its gateway's process
    # waited for a core, not because the controls let it: count refusals only.
    host = _host_lag(history)
    overloaded = host is not None and host["late_ms"] > targets.host_lag_max_ms
    failed = [o.end_ms for o in ops if (o.kind == "fail" if overloaded else o.kind != "ok")
              and spike_ms <= o.invoke_ms < calm_ms]  # fmt: skip
    first_failed_ms = min(failed, default=float("inf"))
    shed_in_order = first_failed_ms == float("inf") or first_off_ms <= first_failed_ms
    if spiky and targets.shed_order and not shed_in_order:
        broken.append("a payment failed while best-effort work was still on")

    # 4. No work started after its deadline.
    late = sum(1 for e in degrade if e.f == "degrade:served-late")
    if late:
        broken.append(f"{late} requests served after their deadline")

    # 5. Metastability: back to normal soon after the spike, and staying there.
    recovered_after_ms = _recovery(ops, calm_ms, traffic_end_ms, targets)
    slow_back = recovered_after_ms is None or recovered_after_ms > targets.recover_within_ms
    # Traffic that stopped before the recovery time was up (a TUI's j pressed seconds
    # after the spike) shows "not back yet", not "never": a prefix, recovery unjudged.
    # Up means the window of the latest recovery allowed is whole: a recovery at
    # exactly recover_within_ms shows in the window that starts there (a live view
    # said "never" for that window's length, then "recovered 5000 ms after it").
    cut_short_s = (traffic_end_ms - calm_ms) / 1000.0
    unjudged = (
        spiky
        and recovered_after_ms is None
        and (traffic_end_ms - calm_ms < targets.recover_within_ms + targets.window_ms)
    )
    if unjudged:
        slow_back = False
    if spiky and slow_back:
        when = "never" if recovered_after_ms is None else f"after {recovered_after_ms:.0f} ms"
        problems.append(
            f"goodput back to normal {when} (allowed {targets.recover_within_ms:.0f} ms)"
        )

    hottest = _hottest(ops, spike_ms, calm_ms)
    details = {
        "goodput_share": round(share, 4),
        "goodput_tps": round(acked / span_s, 2),
        "offered_tps": round(offered_tps, 2),
        "capacity_tps": round(targets.capacity_tps, 2),
        "p99_ms": round(p99_ms, 1),
        "first_best_effort_off_ms": None if not off else first_off_ms,
        "first_critical_failure_ms": None if not failed else first_failed_ms,
        "served_late": late,
        "recovered_after_ms": recovered_after_ms,
        "spike_ms": [spike_ms, calm_ms],
        "hottest_merchant": hottest,  # figures only: fairness is not judged
    }
    if host is not None:
        details["host_lag"] = host
    if broken:
        return Verdict("slo", False, "; ".join(broken + problems), details, witness=broken)
    if problems and host is not None and overloaded:
        summary = (
            f"could not tell: timers on this host ran late (the harness's p99 "
            f"{host.get('p99_ms', 0.0):.0f} ms, the worst gateway's typical second "
            f"{host['nodes_typical_ms']:.0f} ms; load {host.get('load_1m', 0.0):.1f} on "
            f"{host.get('cores', 0.0):.0f} cores), so the "
            f"wall clock measured the machine ({'; '.join(problems)}); deadlines kept"
            + (", shedding in order" if spiky and targets.shed_order else "")
        )
        return Verdict("slo", "unknown", summary, details)
    if unjudged:  # whatever else holds, the recovery cannot be told from this history
        details["recovery_unjudged_traffic_s"] = round(cut_short_s, 3)
        not_yet = (
            f"recovery not judged: traffic stopped {cut_short_s:.1f} s after the spike, "
            f"before its {targets.recover_within_ms / 1000:g} s to recover were up, and "
            f"goodput was not back yet"
        )
        if problems:
            return Verdict("slo", False, "; ".join([*problems, not_yet]), details, problems)
        return Verdict("slo", "unknown", not_yet, details)
    if problems:
        return Verdict("slo", False, "; ".join(problems), details, witness=problems)
    if not spiky:
        summary = f"no spike marked: p99 {p99_ms:.0f} ms, no work after its deadline"
        return Verdict("slo", True, summary, details)
    judged = f"goodput {share:.0%} of capacity through the spike"
    if not targets.goodput_share_min:
        judged = "goodput not judged during the event (a stall serves nothing)"
    summary = f"{judged}, p99 {p99_ms:.0f} ms, recovered {recovered_after_ms:.0f} ms after it"
    return Verdict("slo", True, summary, details)


# --8<-- [end:check-slo]


def _host_lag(history: list[Event]) -> dict[str, float] | None:
    """How late timers ran on a real backend, or None (the simulator).

    The harness's probe (`host-lag`) gives the p99 of its timers' lateness. Each
    gateway records the worst lateness of each second (`degrade:host-lag`); one
    slow second is a hiccup (a collection, a fsync), so a node counts by its
    typical second, the median of its worst ones. `late_ms` is the worse of the
    harness's p99 and the worst node's typical second.
    """
    figures: dict[str, float] | None = None
    per_node: dict[str, list[float]] = {}
    for e in history:
        if e.process != "nemesis" or not isinstance(e.value, dict):
            continue
        if e.f == "host-lag":
            figures = {k: float(v) for k, v in e.value.items()}
        elif e.f == "degrade:host-lag":
            lags = per_node.setdefault(str(e.value.get("node", "")), [])
            lags.append(float(e.value.get("lag_ms", 0.0)))
    if figures is None and not per_node:
        return None
    figures = figures or {"p99_ms": 0.0, "load_1m": 0.0, "cores": 0.0}
    typical = [sorted(lags)[len(lags) // 2] for lags in per_node.values()]
    figures["nodes_typical_ms"] = max(typical, default=0.0)
    figures["nodes_max_ms"] = max((max(lags) for lags in per_node.values()), default=0.0)
    figures["late_ms"] = max(figures.get("p99_ms", 0.0), figures["nodes_typical_ms"])
    return figures


def _hottest(ops: list[_Op], start_ms: float, end_ms: float) -> dict[str, Any]:
    """The merchant offered the most payments in the window: its share of the
    payments offered, and of the payments acknowledged, in that window."""
    offered: dict[str, int] = {}
    acked: dict[str, int] = {}
    for o in ops:
        if start_ms <= o.invoke_ms < end_ms and o.merchant:
            offered[o.merchant] = offered.get(o.merchant, 0) + 1
            acked[o.merchant] = acked.get(o.merchant, 0) + (o.kind == "ok")
    if not offered:
        return {}
    top = max(sorted(offered), key=lambda m: offered[m])
    total_acked = sum(acked.values()) or 1
    return {
        "merchant": top,
        "offered_share": round(offered[top] / sum(offered.values()), 3),
        "acked_share": round(acked[top] / total_acked, 3),
    }


def _recovery(ops: list[_Op], calm_ms: float, end_ms: float, targets: SloTargets) -> float | None:
    """How long after `calm_ms` every later window kept acked/offered >= the minimum."""
    w = targets.window_ms
    windows = int((end_ms - calm_ms) // w)
    if windows <= 0:
        return 0.0
    offered = [0] * windows
    acked = [0] * windows
    for o in ops:
        i = int((o.invoke_ms - calm_ms) // w)
        if 0 <= i < windows:
            offered[i] += 1
            acked[i] += o.kind == "ok"
    good = [
        n == 0 or a / n >= targets.recovered_share_min for a, n in zip(acked, offered, strict=True)
    ]
    if not good[-1]:
        return None
    first = windows - 1
    while first > 0 and good[first - 1]:
        first -= 1
    return first * w
