"""Telemetry: counters, latency histograms and trace events, per node.

Nodes report through their context (`ctx.count`, `ctx.observe`, `ctx.trace`);
the runtime adds its own trace events (crash, restart, pause, resume,
partition, heal, clock). Everything is stamped with simulated time, so a
reader can ask both "how many so far" and "how many in the last second of
simulated time", for one node or summed over a cell or a city, while the run
is still going (the TUI polls `snapshot()`; reports and tests call the
queries; `subscribe(callback)` streams trace events as they happen).

Readers may run in another thread than the simulation (the TUI does): they
iterate over copies, which CPython takes atomically.

Histograms use logarithmic buckets (about 2% wide), so merging the histograms
of a whole city is adding counts, and memory stays bounded however long the
run. Sliding windows are rings of fixed-width time buckets, also bounded.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Histogram", "Telemetry", "TraceEvent"]

_BUCKETS_PER_DOUBLING = 32  # bucket width ~2.2%: percentiles within that error
_TRACE_LIMIT = 200_000  # trace events kept in memory (oldest dropped first)


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One structured event: what happened, where and when (simulated ms)."""

    time_ms: float
    node: str  # node id, or "" for runtime-wide events (partition, heal)
    kind: str
    fields: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.fields[key]


# A frozen dataclass's `__init__` sets each field through `object.__setattr__`,
# looked up per field; `Telemetry.trace` builds an event for every trace a node
# makes (a rehearsal level: tens of thousands per simulated second), so it sets
# the slots through their descriptors instead (the same object: trace() costs
# half as much).
_new_event = object.__new__
_event_slots = TraceEvent.__dict__  # each field's slot descriptor
_set_time_ms = _event_slots["time_ms"].__set__
_set_node = _event_slots["node"].__set__
_set_kind = _event_slots["kind"].__set__
_set_fields = _event_slots["fields"].__set__


class Histogram:
    """Log-bucketed histogram of non-negative samples with exact count/sum/min/max."""

    __slots__ = ("buckets", "count", "max", "min", "total")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, value: float, n: int = 1) -> None:
        assert value >= 0 and n > 0, f"histogram sample must be >= 0, got {value}"
        key = -1_000_000 if value == 0 else math.floor(math.log2(value) * _BUCKETS_PER_DOUBLING)
        self.buckets[key] = self.buckets.get(key, 0) + n
        self.count += n
        self.total += value * n
        self.min = min(self.min, value)
        self.max = max(self.max, value)

    def merge(self, other: Histogram) -> None:
        # A copy: `other` may be a live series the simulation thread is adding to
        # while a reader (the TUI) merges it, and a dict cannot be iterated while
        # it grows. list() of a dict's items is taken whole under the GIL.
        for key, n in list(other.buckets.items()):
            self.buckets[key] = self.buckets.get(key, 0) + n
        self.count += other.count
        self.total += other.total
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def percentile(self, p: float) -> float:
        """The p-th percentile (0..100), to within one bucket (~2%)."""
        assert 0 <= p <= 100, p
        if not self.count:
            return 0.0
        rank = max(1, math.ceil(self.count * p / 100.0))
        if rank >= self.count:
            return self.max
        seen = 0
        for key in sorted(self.buckets):
            seen += self.buckets[key]
            if seen >= rank:
                if key == -1_000_000:
                    return 0.0
                # Report the bucket's midpoint, clamped to what was really seen.
                mid = 2 ** ((key + 0.5) / _BUCKETS_PER_DOUBLING)
                return min(max(mid, self.min), self.max)
        return self.max

    def summary(self) -> dict[str, float]:
        return {
            "count": self.count,
            "mean": self.mean,
            "p50": self.percentile(50),
            "p99": self.percentile(99),
            "max": self.max if self.count else 0.0,
        }


class _Series:
    """One metric of one node: its total and a ring of time buckets."""

    __slots__ = ("hist", "ring", "total")

    def __init__(self, histogram: bool) -> None:
        self.total = 0
        self.hist = Histogram() if histogram else None
        self.ring: deque[list[Any]] = deque()  # [bucket index, count or Histogram], oldest first


class Telemetry:
    """Per-node metrics and traces, aggregated by cell and city on demand.

    `clock()` gives the current simulated time; `placement(node)` gives its
    `(cell, city)` (nodes the placement does not know count under "").
    """

    def __init__(
        self,
        clock: Callable[[], float],
        placement: Callable[[str], tuple[str, str]] | None = None,
        bucket_ms: float = 100.0,
        horizon_ms: float = 10_000.0,
    ) -> None:
        assert bucket_ms > 0 and horizon_ms >= bucket_ms
        self._clock = clock
        self._placement = placement or (lambda node: ("", ""))
        self.bucket_ms = bucket_ms
        self._ring_len = math.ceil(horizon_ms / bucket_ms) + 1
        self._counters: dict[tuple[str, str], _Series] = {}
        self._histograms: dict[tuple[str, str], _Series] = {}
        self.events: deque[TraceEvent] = deque(maxlen=_TRACE_LIMIT)
        self._subscribers: list[Callable[[TraceEvent], None]] = []

    # -- recording ----------------------------------------------------------
    def count(self, node: str, name: str, n: int = 1) -> None:
        series = self._counters.get((node, name))
        if series is None:
            series = self._counters[(node, name)] = _Series(histogram=False)
        series.total += n
        slot = self._bucket(series)
        slot[1] += n

    def observe(self, node: str, name: str, value: float) -> None:
        series = self._histograms.get((node, name))
        if series is None:
            series = self._histograms[(node, name)] = _Series(histogram=True)
        series.total += 1
        assert series.hist is not None
        series.hist.add(value)
        self._bucket(series)[1].add(value)

    def trace(self, node: str, kind: str, **fields: Any) -> TraceEvent:
        event = _new_event(TraceEvent)  # TraceEvent(now, node, kind, fields), built faster
        _set_time_ms(event, self._clock())
        _set_node(event, node)
        _set_kind(event, kind)
        _set_fields(event, fields)
        self.events.append(event)
        for callback in self._subscribers:
            callback(event)
        return event

    def subscribe(self, callback: Callable[[TraceEvent], None]) -> Callable[[], None]:
        """Call `callback(event)` for every trace event; returns an unsubscribe."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def _bucket(self, series: _Series) -> list[Any]:
        index = int(self._clock() // self.bucket_ms)
        ring = series.ring
        if not ring or ring[-1][0] != index:
            ring.append([index, Histogram() if series.hist is not None else 0])
            if len(ring) > self._ring_len:
                ring.popleft()  # bounded: older than the horizon
        return ring[-1]

    # -- reading ------------------------------------------------------------
    def _scope_nodes(self, nodes: Iterable[str], scope: str | None) -> Iterator[str]:
        for node in nodes:
            if scope is None or node == scope or scope in self._placement(node):
                yield node

    def counter(self, name: str, scope: str | None = None, window_ms: float | None = None) -> int:
        """Counter `name` summed over `scope` (a node, cell or city; None: all).

        With `window_ms`, only what was counted in the last `window_ms` of
        simulated time, to bucket resolution (`bucket_ms`): the window is the
        current bucket and the ones before it.
        """
        total = 0
        for (node, metric), series in list(self._counters.items()):
            if metric != name or next(self._scope_nodes([node], scope), None) is None:
                continue
            if window_ms is None:
                total += series.total
            else:
                total += sum(n for _, n in self._window(series, window_ms))
        return total

    def rate_per_s(self, name: str, scope: str | None = None, window_ms: float = 1000.0) -> float:
        """Counter `name` per simulated second over the last `window_ms`."""
        return self.counter(name, scope, window_ms) * 1000.0 / window_ms

    def histogram(
        self, name: str, scope: str | None = None, window_ms: float | None = None
    ) -> Histogram:
        """Histogram `name` merged over `scope`, optionally over a window."""
        merged = Histogram()
        for (node, metric), series in list(self._histograms.items()):
            if metric != name or next(self._scope_nodes([node], scope), None) is None:
                continue
            if window_ms is None:
                assert series.hist is not None
                merged.merge(series.hist)
            else:
                for _, hist in self._window(series, window_ms):
                    merged.merge(hist)
        return merged

    def _window(self, series: _Series, window_ms: float) -> list[list[Any]]:
        # Bucket-aligned, as in Sentinel's sliding windows: the current bucket
        # and the ones before it, window_ms / bucket_ms buckets in all.
        buckets = max(1, round(window_ms / self.bucket_ms))
        if buckets > self._ring_len:
            raise ValueError(f"window {window_ms} ms is longer than the horizon kept")
        first = int(self._clock() // self.bucket_ms) - buckets + 1
        return [slot for slot in list(series.ring) if slot[0] >= first]

    def find(self, kind: str | None = None, node: str | None = None) -> list[TraceEvent]:
        """Trace events matching `kind` and `node` (None matches any), in order."""
        return [
            e
            for e in list(self.events)
            if (kind is None or e.kind == kind) and (node is None or e.node == node)
        ]

    def metric_names(self) -> tuple[list[str], list[str]]:
        """(counter names, histogram names) seen so far."""
        return (
            sorted({m for _, m in list(self._counters)}),
            sorted({m for _, m in list(self._histograms)}),
        )

    def snapshot(self, window_ms: float = 1000.0) -> dict[str, Any]:
        """Everything a dashboard shows, as plain data: totals, windowed rates
        and latency summaries per node, cell and city; the last trace events."""
        counters, histograms = self.metric_names()
        nodes = sorted(
            {n for n, _ in list(self._counters)} | {n for n, _ in list(self._histograms)}
        )
        places = {n: self._placement(n) for n in nodes}
        scopes: dict[str, list[str]] = {"node": nodes}
        scopes["cell"] = sorted({c for c, _ in places.values() if c})
        scopes["city"] = sorted({c for _, c in places.values() if c})
        out: dict[str, Any] = {"time_ms": self._clock(), "window_ms": window_ms}
        for level, names in scopes.items():
            out[level] = {
                scope: {
                    "counters": {
                        c: {
                            "total": self.counter(c, scope),
                            "rate_per_s": self.rate_per_s(c, scope, window_ms),
                        }
                        for c in counters
                    },
                    "latency": {
                        h: self.histogram(h, scope, window_ms).summary() for h in histograms
                    },
                }
                for scope in names
            }
        out["events"] = list(self.events)[-50:]
        return out
