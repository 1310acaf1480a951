"""The kernel: ordering, budgets, and a digest that is stable across processes."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reference.sim.kernel import GC_THRESHOLDS, Kernel
from reference.sim.rng import derive_seed, stream


def test_events_run_in_time_order_and_ties_in_scheduling_order() -> None:
    kernel = Kernel()
    seen: list[str] = []
    for name, at_ms in [("c", 2.0), ("a", 1.0), ("b1", 1.5), ("b2", 1.5), ("b3", 1.5)]:
        kernel.call_at(at_ms, lambda name=name: seen.append(name))
    assert kernel.run_until(10.0) == 5
    assert seen == ["a", "b1", "b2", "b3", "c"] and kernel.now_ms == 10.0


def test_max_events_bounds_a_run_and_the_clock_stays_at_the_last_event() -> None:
    kernel = Kernel()
    for i in range(10):
        kernel.call_at(float(i), lambda: None)
    assert kernel.run_until(100.0, max_events=3) == 3
    assert kernel.now_ms == 2.0 and kernel.pending() == 7
    assert kernel.next_time_ms() == 3.0


def test_events_run_with_fewer_collections_and_the_thresholds_are_put_back() -> None:
    kernel = Kernel()
    seen: list[tuple[int, int, int]] = []
    kernel.call_at(1.0, lambda: seen.append(gc.get_threshold()))

    def fail() -> None:
        raise RuntimeError("a bug in a node")

    kernel.call_at(2.0, fail)
    before = gc.get_threshold()
    assert before != GC_THRESHOLDS
    with pytest.raises(RuntimeError):
        kernel.run_until(10.0)
    assert seen == [GC_THRESHOLDS] and gc.get_threshold() == before


def test_scheduling_in_the_past_is_refused() -> None:
    kernel = Kernel()
    kernel.run_until(5.0)
    with pytest.raises(ValueError, match="before now"):
        kernel.call_at(4.0, lambda: None)


def test_streams_are_independent_and_reproducible() -> None:
    assert stream(7, "node/a").random() == stream(7, "node/a").random()
    assert stream(7, "node/a").random() != stream(7, "node/b").random()
    assert stream(7, "net").random() != stream(8, "net").random()
    assert derive_seed(7, "x") == derive_seed(7, "x") < 2**64


_DIGEST_SCRIPT = """
import sys
sys.path.insert(0, {here!r})
from test_sim_determinism import run
from reference.net.sim import NetConfig
print(run(5, NetConfig(loss=0.1, reorder=0.1), [(50.0, "crash", "a"), (90.0, "restart", "a")]))
"""


def test_digest_is_the_same_in_processes_with_different_hash_seeds() -> None:
    # str hashes differ between processes; the digest must not depend on them.
    script = _DIGEST_SCRIPT.format(here=str(Path(__file__).parent))
    outputs = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        outputs.add(done.stdout)
    assert len(outputs) == 1


def test_same_instant_events_keep_their_order_across_budgets_and_stops() -> None:
    kernel = Kernel()
    seen: list[str] = []

    def at_five(name: str) -> None:
        seen.append(name)
        if name == "b":
            kernel.stop()
            kernel.call_at(5.0, lambda: seen.append("late"))  # same instant, scheduled last

    for name in "abcd":
        kernel.call_at(5.0, lambda name=name: at_five(name))
    assert kernel.run_until(10.0, max_events=1) == 1 and seen == ["a"]
    assert kernel.run_until(10.0) == 1 and seen == ["a", "b"]  # stopped after b
    assert kernel.now_ms == 5.0 and kernel.pending() == 3
    assert kernel.run_until(10.0) == 3
    assert seen == ["a", "b", "c", "d", "late"] and kernel.now_ms == 10.0
