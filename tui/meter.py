"""Traffic figures from a history, fed one event at a time, in bounded memory.

The TUI may stay open all day, so it never re-reads the whole history: a
`Meter` takes each new event once and keeps fixed-width time buckets in a
ring (offered, served and failed payments, their latencies, errors by kind,
served per cell). A live session feeds it as clients record; a replay feeds
it up to the scrubbed time. Both ask it for the same series and windows.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypedDict

from checks.history import NEMESIS, Event

__all__ = ["BUCKET_MS", "LOAD_TEST_F", "Meter", "window_bounds"]

BUCKET_MS = 250.0  # one column of the traffic chart
LOAD_TEST_F = "load-test:transfer"  # as reference.clients records a tagged payment
LATENCIES_PER_BUCKET_MAX = 4_000  # samples kept per bucket for percentiles
OPEN_OPS_MAX = 200_000  # transfers in flight we track; beyond it the oldest are forgotten


@dataclass(slots=True)
class _Bucket:
    index: int
    offered: int = 0
    served: int = 0
    failed: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    by_cell: Counter[str] = field(default_factory=Counter)


def window_bounds(
    now_ms: float, window_ms: float, bucket_ms: float = BUCKET_MS
) -> tuple[float, float]:
    """[start, end) of the last `window_ms` of whole buckets before the one `now_ms` is in.

    Every rate on one screen is counted over this window (the traffic panel's,
    its goodput by cell, chapter 7's lanes): a window that took the bucket still
    filling, yet divided by the whole `window_ms`, read a tenth low at random
    (ch7: Traffic "offered 170" beside the Rehearsal panel's "production 182").
    """
    end_ms = (now_ms // bucket_ms) * bucket_ms
    buckets = max(1, round(window_ms / bucket_ms))
    return end_ms - buckets * bucket_ms, end_ms


def _percentile(sorted_ms: list[float], p: float) -> float:
    if not sorted_ms:
        return 0.0
    rank = max(1, math.ceil(p / 100.0 * len(sorted_ms)))
    return sorted_ms[rank - 1]


class Window(TypedDict):
    """The last few buckets' figures (`Meter.window`)."""

    offered_tps: float
    served_tps: float
    failed_tps: float  # failed, or unknown (timed out)
    served_by_cell_tps: dict[str, float]  # served, by the cell (or node) `cell_of` names
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]  # kind -> count, most common first


class Meter:
    """Payments per bucket of simulated time, the last `buckets_max` buckets."""

    def __init__(
        self,
        cell_of: Callable[[str], str],
        bucket_ms: float = BUCKET_MS,
        buckets_max: int = 240,
    ) -> None:
        assert bucket_ms > 0 and buckets_max > 0
        self.bucket_ms = bucket_ms
        self.buckets_max = buckets_max
        self._cell_of = cell_of
        self._ring: deque[_Bucket] = deque()
        self._open: dict[int | str, float] = {}  # process -> invoke time of its transfer
        self.cells: set[str] = set()
        self.payments_total = 0
        self.ok_total = 0
        self.errors_total: Counter[str] = Counter()
        # Load-test payments are not metered (they are not the users' traffic); once
        # one is seen, the figures say they count production only.
        self.load_test_seen = False
        # Latency from every reply (late ones too) when the caller feeds them
        # (`feed_replies`); else from the ok completions in the history.
        self.replies_fed = False

    # -- feeding ---------------------------------------------------------------
    def feed(self, events: Iterable[Event]) -> None:
        for ev in events:
            if ev.process == NEMESIS or ev.f != "transfer":
                if ev.f == LOAD_TEST_F:
                    self.load_test_seen = True
                continue
            if not isinstance(ev.process, int | str):
                continue  # no client has such a name: a stored history gone odd
            b = self._bucket(ev.time_ms)
            if ev.type == "invoke":
                b.offered += 1
                self.payments_total += 1
                self._open[ev.process] = ev.time_ms
                if len(self._open) > OPEN_OPS_MAX:
                    self._open.pop(next(iter(self._open)))
                continue
            self._open.pop(ev.process, None)
            if ev.type == "ok":
                b.served += 1
                self.ok_total += 1
                if not self.replies_fed and len(b.latencies_ms) < LATENCIES_PER_BUCKET_MAX:
                    latency_ms = ev.extra.get("latency_ms", 0.0)
                    if isinstance(latency_ms, int | float) and math.isfinite(latency_ms):
                        b.latencies_ms.append(float(latency_ms))
                node = ev.extra.get("node")
                if isinstance(node, str) and node:
                    cell = self._cell_of(node)
                    if cell:
                        b.by_cell[cell] += 1
                        self.cells.add(cell)
            else:
                b.failed += 1
                kind = "timeout" if ev.type == "info" else str(ev.extra.get("error") or "failed")
                b.errors[kind] += 1
                self.errors_total[kind] += 1

    def feed_replies(self, replies: Iterable[tuple[float, float]]) -> None:
        """(time_ms, latency_ms) of every reply a client got, including the ones
        that came after it gave up: what explodes when a queue builds up."""
        self.replies_fed = True
        for time_ms, latency_ms in replies:
            b = self._bucket(time_ms)
            if len(b.latencies_ms) < LATENCIES_PER_BUCKET_MAX:
                b.latencies_ms.append(latency_ms)

    def _bucket(self, time_ms: float) -> _Bucket:
        index = int(time_ms // self.bucket_ms)
        ring = self._ring
        if ring and index <= ring[-1].index:
            # Events arrive in time order; an older one lands in its own bucket
            # if it is still kept, else in the oldest one.
            for b in reversed(ring):
                if b.index <= index:
                    return b
            return ring[0]
        ring.append(_Bucket(index))
        while len(ring) > self.buckets_max:
            ring.popleft()
        return ring[-1]

    # -- reading ---------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        return len(self._open)

    def series(self, now_ms: float, points: int) -> dict[str, list[float]]:
        """Per-bucket rates (per simulated second) for the last `points` buckets up to now."""
        points = min(points, self.buckets_max)
        last = int(now_ms // self.bucket_ms)
        by_index = {b.index: b for b in self._ring}
        per_s = 1000.0 / self.bucket_ms
        out: dict[str, list[float]] = {"offered": [], "served": [], "failed": [], "p99": []}
        cells: dict[str, list[float]] = {c: [] for c in sorted(self.cells)}
        for i in range(last - points + 1, last + 1):
            b = by_index.get(i)
            out["offered"].append(b.offered * per_s if b else 0.0)
            out["served"].append(b.served * per_s if b else 0.0)
            out["failed"].append(b.failed * per_s if b else 0.0)
            out["p99"].append(_percentile(sorted(b.latencies_ms), 99) if b else 0.0)
            for c, values in cells.items():
                values.append(b.by_cell.get(c, 0) * per_s if b else 0.0)
        out.update({f"cell:{c}": v for c, v in cells.items()})
        return out

    def traffic_fields(self, now_ms: float, points: int, *, by_cell: bool) -> dict[str, Any]:
        """The traffic part of a `tui.model.Frame`, live or replayed alike."""
        series = self.series(now_ms, points)
        win = self.window(now_ms, 1000.0)
        return {
            "bucket_ms": self.bucket_ms,
            "offered": series["offered"],
            "served": series["served"],
            "failed": series["failed"],
            "p99": series["p99"],
            "served_by_cell": {k[5:]: v for k, v in series.items() if k.startswith("cell:")},
            "served_by": "cell" if by_cell else "node",
            "served_by_cell_tps": win["served_by_cell_tps"],
            "offered_tps": float(win["offered_tps"]),
            "served_tps": float(win["served_tps"]),
            "failed_tps": float(win["failed_tps"]),
            "traffic_lane": "production" if self.load_test_seen else "",
            "p50_ms": float(win["p50_ms"]),
            "p99_ms": float(win["p99_ms"]),
            "in_flight": self.in_flight,
            "errors": dict(win["errors"]),
            "errors_total": dict(self.errors_total.most_common()),
            "payments_total": self.payments_total,
            "ok_total": self.ok_total,
        }

    def window(self, now_ms: float, window_ms: float = 1000.0) -> Window:
        """Rates, percentiles and errors over the last `window_ms` of whole buckets
        (`window_bounds`): figures that change four times a second, not every frame."""
        start_ms, end_ms = window_bounds(now_ms, window_ms, self.bucket_ms)
        first, end = round(start_ms / self.bucket_ms), round(end_ms / self.bucket_ms)
        chosen = [b for b in self._ring if first <= b.index < end]
        span_s = (end_ms - start_ms) / 1000.0
        latencies = sorted(x for b in chosen for x in b.latencies_ms)
        errors: Counter[str] = Counter()
        by_cell: Counter[str] = Counter()
        for b in chosen:
            errors.update(b.errors)
            by_cell.update(b.by_cell)
        return {
            "offered_tps": sum(b.offered for b in chosen) / span_s,
            "served_tps": sum(b.served for b in chosen) / span_s,
            "failed_tps": sum(b.failed for b in chosen) / span_s,
            "served_by_cell_tps": {c: by_cell[c] / span_s for c in sorted(self.cells)},
            "p50_ms": _percentile(latencies, 50),
            "p99_ms": _percentile(latencies, 99),
            "errors": dict(errors.most_common()),
        }
