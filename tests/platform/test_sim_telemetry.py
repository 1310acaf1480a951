"""Telemetry: windows of simulated time, aggregation by cell and city, traces."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import pytest
from sim_helpers import runtime

from reference.node import Context, Node, NodeId
from reference.telemetry import Histogram, Telemetry, TraceEvent


def test_histogram_percentiles_are_within_a_bucket() -> None:
    hist = Histogram()
    for v in range(1, 1001):
        hist.add(float(v))
    assert hist.count == 1000 and hist.mean == pytest.approx(500.5)
    assert hist.percentile(50) == pytest.approx(500, rel=0.03)
    assert hist.percentile(99) == pytest.approx(990, rel=0.03)
    assert hist.percentile(100) == 1000 and hist.percentile(0) == pytest.approx(1, rel=0.03)
    other = Histogram()
    other.add(0.0)
    hist.merge(other)
    assert hist.count == 1001 and hist.min == 0.0


def test_counters_over_sliding_windows_and_scopes() -> None:
    now = [0.0]
    places = {"a": ("hz-1", "hangzhou"), "b": ("hz-2", "hangzhou"), "d": ("sh-1", "shanghai")}
    tel = Telemetry(clock=lambda: now[0], placement=places.__getitem__, bucket_ms=100)
    for t in range(0, 3000, 10):  # every 10 ms for 3 s
        now[0] = float(t)
        tel.count("a", "req")
        tel.count("d", "req", 2)
        if t >= 2000:
            tel.count("b", "req")
            tel.observe("b", "latency_ms", 5.0)
    assert tel.counter("req") == 300 + 600 + 100
    assert tel.counter("req", "hangzhou") == 400 and tel.counter("req", "hz-2") == 100
    assert tel.counter("req", "hz-2", window_ms=500) == 50
    assert tel.rate_per_s("req", "shanghai", window_ms=1000) == pytest.approx(200)
    assert tel.histogram("latency_ms", "hangzhou").count == 100
    snap = tel.snapshot(window_ms=1000)
    assert snap["city"]["hangzhou"]["counters"]["req"]["total"] == 400
    assert snap["cell"]["hz-2"]["latency"]["latency_ms"]["p50"] == pytest.approx(5, rel=0.03)
    assert snap["cell"]["hz-2"]["counters"]["req"]["rate_per_s"] == pytest.approx(100)
    now[0] = 9_000.0
    assert tel.counter("req", window_ms=1000) == 0  # the window slid past everything
    assert tel.histogram("latency_ms", window_ms=1000).count == 0
    with pytest.raises(ValueError, match="horizon"):
        tel.counter("req", window_ms=60_000)


class Reporter(Node):
    def __init__(self, node_id: NodeId) -> None:
        pass

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer(10, "tick")

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        ctx.count("ticks")
        ctx.observe("latency_ms", ctx.random.uniform(1, 2))
        ctx.trace("tick", at=ctx.now_ms())
        ctx.set_timer(10, "tick")

    def on_message(self, ctx: Context, src: NodeId, msg: Any) -> None:
        pass


def test_node_telemetry_is_readable_while_the_run_goes_and_streams_traces() -> None:
    rt = runtime(factory=Reporter)
    streamed: list[TraceEvent] = []
    unsubscribe = rt.telemetry.subscribe(streamed.append)
    rt.run_until(1000)
    assert rt.telemetry.counter("ticks", "a") == 100
    assert rt.telemetry.counter("ticks", "hangzhou") == 300
    rt.crash("a")
    rt.run_until(2000)
    # Window of 1000 ms = buckets [1100, 2100): ticks at 1100, 1110, ..., 2000.
    assert rt.telemetry.counter("ticks", "hangzhou", window_ms=1000) == 2 * 91
    assert rt.telemetry.counter("ticks", "a", window_ms=1000) == 0
    assert rt.telemetry.counter("ticks", "a") == 100
    unsubscribe()
    rt.run_until(3000)
    kinds = [e.kind for e in streamed]
    assert kinds.count("crash") == 1 and kinds.count("tick") == 5 * 100 + 4 * 100
    tick = rt.telemetry.find(kind="tick", node="d")[0]
    assert tick.time_ms == 10.0 and tick["at"] == 10.0
    assert rt.telemetry.histogram("latency_ms", "shanghai").max <= 2.0


def test_a_reader_in_another_thread_sees_a_run_in_progress() -> None:
    import threading

    rt = runtime(factory=Reporter)
    seen: list[int] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def watch() -> None:
        try:
            while not done.is_set():
                snap = rt.telemetry.snapshot(window_ms=1000)
                # Before the first tick is counted, the counter does not exist yet.
                totals = [
                    c["counters"].get("ticks", {}).get("total", 0) for c in snap["city"].values()
                ]
                seen.append(sum(totals))
        except BaseException as exc:  # surfaced below: a thread cannot fail a test
            errors.append(exc)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for step in range(1, 201):
            rt.run_until(step * 50.0)
    finally:
        done.set()
        watcher.join(timeout=10)
    assert not errors, errors
    assert seen and seen == sorted(seen) and seen[-1] <= 5 * 1000
    assert rt.telemetry.counter("ticks") == 5 * 1000
