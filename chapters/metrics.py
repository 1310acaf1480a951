"""The figures of a run, computed from its history and its telemetry.

Offered load counts every payment a client started; goodput counts the ones
that succeeded within their deadline (a client gives up at the deadline, so
an `ok` is by construction on time).

Two latencies, for two questions:
- per payment (`payment_p99_ms`): from the payment's first attempt to its
  acknowledgement, retries included, over the acknowledged payments: what a
  user waited. This is the headline.
- per attempt (`p99_ms`): every reply the clients received, late ones
  included: a reply that arrives after the client gave up still shows how
  long the system took, and that is what explodes when a queue builds up.

An error is a payment whose user saw no acknowledgement: a decline, a
failure, or no answer within the deadline (a timeout, outcome unknown to the
user). The final phase settles the unknown ones by retrying them under their
idempotent ids; `settled` counts how many had taken effect after all.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from checks.harness.contract import Judgement
from checks.history import Event

if TYPE_CHECKING:
    from checks.verdict import Verdict
    from reference.net.topology import Topology

__all__ = ["Measured", "ok_latencies_ms", "percentile", "summarize"]

BUCKET_MS = 250.0  # resolution of the time series
SERIES_BUCKETS_MAX = 2_000


# What the figures read from a run: a `chapters.stage.Deployment` is one
# (declared here, not imported, so the stage can call `summarize` for its
# snapshot without the two modules importing each other). Read-only, so a
# deployment's own richer types fit. Figures only some stages have are read
# with getattr: `traffic_window`, `responses`, `capacity_tps()`, `figures()`,
# and the runtime's `telemetry`.
class _StageNames(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def default_variant(self) -> str: ...


class _RunOptions(Protocol):
    @property
    def seed(self) -> int: ...
    @property
    def variant(self) -> str: ...
    @property
    def duration_s(self) -> float: ...


class _Clock(Protocol):
    @property
    def now_ms(self) -> float: ...


class Measured(Protocol):
    @property
    def stage(self) -> _StageNames: ...
    @property
    def options(self) -> _RunOptions: ...
    @property
    def rt(self) -> _Clock: ...
    @property
    def topology(self) -> Topology: ...
    @property
    def roles(self) -> Mapping[str, list[str]]: ...
    @property
    def history(self) -> list[Event]: ...
    @property
    def timeline(self) -> list[tuple[float, str, str]]: ...
    @property
    def scenario(self) -> str | None: ...
    @property
    def deadline_ms(self) -> float: ...
    @property
    def scale(self) -> float: ...


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 when empty)."""
    assert 0 <= p <= 100
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


def _transfers(history: list[Event]) -> list[tuple[Event, Event | None]]:
    """(invoke, completion) of each transfer, in invoke order."""
    open_ops: dict[int | str, Event] = {}
    out: list[tuple[Event, Event | None]] = []
    slot: dict[int | str, int] = {}
    for ev in history:
        if ev.f != "transfer" or ev.process == "nemesis":
            continue
        if ev.type == "invoke":
            open_ops[ev.process] = ev
            slot[ev.process] = len(out)
            out.append((ev, None))
        elif ev.process in open_ops:
            inv = open_ops.pop(ev.process)
            out[slot[ev.process]] = (inv, ev)
    return out


def _window(dep: Measured) -> tuple[float, float]:
    """The run's traffic window (start_ms, end_ms): the whole run when it has none."""
    start_ms, end_ms = getattr(dep, "traffic_window", (0.0, 0.0))
    if end_ms <= start_ms:
        return 0.0, max(dep.rt.now_ms, 1.0)
    return start_ms, end_ms


def _window_transfers(
    history: list[Event], start_ms: float, end_ms: float
) -> list[tuple[Event, Event | None]]:
    """Payments of the traffic window only: the final phase's retries of unknown
    payments (reconciliation) are bookkeeping, not load."""
    return [(inv, c) for inv, c in _transfers(history) if start_ms <= inv.time_ms < end_ms]


def _ok_latencies_ms(ok: list[Event]) -> list[float]:
    return sorted(float(c.extra.get("latency_ms", 0.0)) for c in ok)


def ok_latencies_ms(dep: Measured) -> list[float]:
    """Per payment, first attempt to acknowledgement, ascending: the latencies of the
    payments `summarize` counts as `ok` (its `payment_p*_ms` are their percentiles).
    For a caller that pools several runs' payments (the capstone's headline)."""
    ops = _window_transfers(list(dep.history), *_window(dep))
    return _ok_latencies_ms([c for _, c in ops if c is not None and c.type == "ok"])


def summarize(
    dep: Measured,
    *,
    verdicts: dict[str, Verdict] | None = None,
    judged: dict[str, Judgement] | None = None,
    window_ms: float = 1000.0,
) -> dict[str, Any]:
    """Everything a report shows, JSON-ready. Cheap enough to call live."""
    history = list(dep.history)
    start_ms, end_ms = _window(dep)
    window_s = (end_ms - start_ms) / 1000.0
    ops = _window_transfers(history, start_ms, end_ms)
    offered = [inv for inv, _ in ops]
    done = [c for _, c in ops if c is not None]
    ok = [c for c in done if c.type == "ok"]
    failed = [c for c in done if c.type != "ok"]
    errors = Counter(
        "timeout" if c.type == "info" else str(c.extra.get("error", "failed")) for c in failed
    )
    responses = sorted(r["latency_ms"] for r in getattr(dep, "responses", []))
    ok_latency = _ok_latencies_ms(ok)
    timed_out = {_payment_id(c) for c in failed if c.type == "info"} - {None}
    scale = dep.scale
    offered_tps = len(offered) / window_s if window_s else 0.0
    goodput_tps = len(ok) / window_s if window_s else 0.0
    summary: dict[str, Any] = {
        "chapter": dep.stage.id,
        "title": dep.stage.title,
        "scenario": dep.scenario,
        "variant": dep.options.variant or dep.stage.default_variant,
        "seed": dep.options.seed,
        "shards": len(dep.roles["shard"]),
        "cells": len(dep.roles["cell"]),
        "duration_s": dep.options.duration_s,
        "scale": scale,
        "sim_time_ms": round(dep.rt.now_ms, 3),
        "deadline_ms": dep.deadline_ms,
        "payments": len(ops),
        "ok": len(ok),
        "offered_tps": round(offered_tps, 2),
        "goodput_tps": round(goodput_tps, 2),
        "offered_real_tps": round(offered_tps / scale),
        "goodput_real_tps": round(goodput_tps / scale),
        "p50_ms": round(percentile(responses, 50), 3),
        "p99_ms": round(percentile(responses, 99), 3),
        "p999_ms": round(percentile(responses, 99.9), 3),
        "ok_p99_ms": round(percentile(ok_latency, 99), 3),
        "payment_p50_ms": round(percentile(ok_latency, 50), 3),
        "payment_p99_ms": round(percentile(ok_latency, 99), 3),
        "payment_p999_ms": round(percentile(ok_latency, 99.9), 3),
        "timeouts": sum(1 for c in failed if c.type == "info"),
        "settled": _settled(history, timed_out, end_ms),
        "replies": len(responses),
        "error_rate": round(len(failed) / len(done), 4) if done else 0.0,
        "errors": dict(errors.most_common()),
        "load": _load(dep),
        "series": _series(ops, getattr(dep, "responses", []), start_ms, end_ms),
        "timeline": [[round(t, 3), kind, detail] for t, kind, detail in dep.timeline],
    }
    summary["peak_offered_tps"] = max(summary["series"]["offered_tps"], default=0.0)
    summary.update(_stage_figures(dep))
    if verdicts is not None:
        summary["checks"] = _checks(verdicts, judged or {})
    return summary


def _payment_id(ev: Event) -> Any:
    value = ev.value
    return value.get("id") if isinstance(value, dict) else None


def _settled(history: list[Event], timed_out: set[Any], end_ms: float) -> dict[str, int]:
    """What became of the payments that timed out: the final phase's retries by id.

    applied: acknowledged on retry (they had taken effect, or took it then);
    not_applied: failed on retry; unknown: no final answer; asked: how many the
    final phase retried at all (0: the stage's clients do not ask again, and
    `unknown` is every timeout, which nothing settled).
    """
    last: dict[Any, str] = {}
    asked: set[object] = set()
    for inv, comp in _transfers(history):
        pid = _payment_id(inv)
        if pid in timed_out and inv.time_ms >= end_ms:
            asked.add(pid)
            if comp is not None:
                last[pid] = comp.type
    applied = sum(1 for t in last.values() if t == "ok")
    not_applied = sum(1 for t in last.values() if t == "fail")
    return {
        "applied": applied,
        "not_applied": not_applied,
        "unknown": len(timed_out) - applied - not_applied,
        "asked": len(asked),
    }


def _load(dep: Measured) -> dict[str, Any]:
    """Transactions served per store (and per cell in chapter 3). A stage whose
    servers are not stores names the nodes that count and what they count
    (`load_nodes()`, `load_what`: chapter 5's producers and consumers; its Paxos
    replicas serve through their group and count nothing)."""
    telemetry = getattr(dep.rt, "telemetry", None)
    if telemetry is None:
        return {}
    nodes = getattr(dep, "load_nodes", None)
    names = list(nodes()) if callable(nodes) else dep.roles["shard"] + dep.roles["replica"]
    per_node = {n: telemetry.counter("txns", n) for n in names}
    load: dict[str, Any] = {"txns_by_store": per_node}
    what = getattr(dep, "load_what", None)
    if what is not None:
        load["what"] = what
    if dep.roles["cell"]:
        by_cell: Counter[str] = Counter()
        for n, count in per_node.items():
            by_cell[dep.topology.cell_of(n)] += count
        load["txns_by_cell"] = dict(sorted(by_cell.items()))
    served = [v for v in per_node.values() if v]
    if served:
        load["hottest_over_mean"] = round(max(served) / (sum(served) / len(served)), 3)
    load["forwarded"] = telemetry.counter("forwarded")
    return load


def _series(
    ops: list[tuple[Event, Event | None]],
    responses: list[dict[str, Any]],
    start_ms: float,
    end_ms: float,
) -> dict[str, list[float]]:
    """Per-bucket offered, goodput, errors (per second) and reply p99 (ms)."""
    horizon_ms = end_ms + 2_000.0
    n = min(SERIES_BUCKETS_MAX, max(1, math.ceil((horizon_ms - start_ms) / BUCKET_MS)))
    offered, good, bad = [0] * n, [0] * n, [0] * n
    lat: list[list[float]] = [[] for _ in range(n)]

    def bucket(t_ms: float) -> int | None:
        i = int((t_ms - start_ms) // BUCKET_MS)
        return i if 0 <= i < n else None

    for inv, comp in ops:
        i = bucket(inv.time_ms)
        if i is not None:
            offered[i] += 1
        if comp is not None:
            j = bucket(comp.time_ms)
            if j is not None:
                if comp.type == "ok":
                    good[j] += 1
                else:
                    bad[j] += 1
    for r in responses:
        i = bucket(r["time_ms"])
        if i is not None:
            lat[i].append(r["latency_ms"])
    per_s = 1000.0 / BUCKET_MS
    return {
        "t_ms": [round(start_ms + i * BUCKET_MS, 3) for i in range(n)],
        "offered_tps": [x * per_s for x in offered],
        "goodput_tps": [x * per_s for x in good],
        "error_tps": [x * per_s for x in bad],
        "p99_ms": [round(percentile(sorted(b), 99), 3) for b in lat],
    }


def _stage_figures(dep: Measured) -> dict[str, Any]:
    """Figures only some stages have (failover time, capacity estimate)."""
    out: dict[str, Any] = {}
    capacity = getattr(dep, "capacity_tps", None)
    if callable(capacity):
        out["capacity_tps"] = round(capacity(), 2)
    extra = getattr(dep, "figures", None)
    if callable(extra):
        out.update(extra())
    return out


def _checks(verdicts: dict[str, Verdict], judged: dict[str, Judgement]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, verdict in verdicts.items():
        entry = verdict.to_json()
        j = judged.get(name)
        if j is not None:
            entry["outcome"] = j.outcome
            if j.expected is not None:
                entry["expected"] = {"valid": j.expected.valid, "why": j.expected.why}
        out[name] = entry
    return out
