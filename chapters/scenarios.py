"""The scenarios every payment stage runs: steady, double11, crash, partition.

A scenario only decides *when*; what a crash or a partition hits is the
stage's business (`PaymentDeployment.crash_victims`, `partition_groups`).
"""

from __future__ import annotations

import functools

from chapters.common import DEADLINE_MS, PaymentDeployment
from chapters.stage import Deployment, Scenario
from reference.sim.rng import stream

__all__ = ["SCENARIOS"]

WARMUP_MS = 200.0  # let the nodes boot before the first payment
FAULT_AT = 0.4  # faults strike at this fraction of the traffic window
FAULT_JITTER_MS = 100.0
PARTITION_MS_MAX = 1_000.0


def _fault_at(dep: Deployment, start_ms: float, end_ms: float) -> float:
    """When the fault strikes: FAULT_AT into the window, give or take a seeded jitter,
    so that across seeds it lands at every phase of every timer in the system."""
    jitter_ms = stream(dep.options.seed, "scenario/fault-at").uniform(0.0, FAULT_JITTER_MS)
    return start_ms + FAULT_AT * (end_ms - start_ms) + jitter_ms


def _window(dep: Deployment) -> tuple[float, float]:
    start_ms = dep.rt.now_ms + WARMUP_MS
    return start_ms, start_ms + dep.options.duration_s * 1000.0


def _steady(dep: Deployment) -> None:
    start_ms, end_ms = _window(dep)
    dep.start_traffic(start_ms, end_ms, "steady")
    dep.finish(end_ms + DEADLINE_MS)


def _double11(dep: Deployment) -> None:
    start_ms, end_ms = _window(dep)
    dep.start_traffic(start_ms, end_ms, "double11")
    dep.finish(end_ms + DEADLINE_MS)


def _saturate(dep: Deployment) -> None:
    start_ms, end_ms = _window(dep)
    dep.start_traffic(start_ms, end_ms, "saturate")
    dep.finish(end_ms + DEADLINE_MS)


def _crash(dep: Deployment) -> None:
    assert isinstance(dep, PaymentDeployment)
    start_ms, end_ms = _window(dep)
    dep.start_traffic(start_ms, end_ms, "steady")
    at_ms = _fault_at(dep, start_ms, end_ms)
    down_ms = dep.restart_after_ms()
    for offset_ms, victims in dep.crash_plan():
        crash_ms = at_ms + offset_ms
        dep.rt.call_at(crash_ms, functools.partial(dep.crash, victims, "the crash scenario"))
        if down_ms is not None:
            dep.rt.call_at(crash_ms + down_ms, functools.partial(dep.restart, victims))
    dep.finish(end_ms + DEADLINE_MS)


def _partition(dep: Deployment) -> None:
    assert isinstance(dep, PaymentDeployment)
    start_ms, end_ms = _window(dep)
    dep.start_traffic(start_ms, end_ms, "steady")
    at_ms = _fault_at(dep, start_ms, end_ms)
    heal_ms = at_ms + min(PARTITION_MS_MAX, 0.3 * (end_ms - start_ms))
    groups = dep.partition_groups()
    dep.rt.call_at(at_ms, lambda: dep.partition(groups))
    dep.rt.call_at(heal_ms, dep.heal)
    dep.finish(end_ms + DEADLINE_MS)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("steady", "a flat load at 60% of the stage's capacity", _steady),
        Scenario(
            "double11",
            "the Double 11 midnight spike: 100x the quiet level within a second",
            _double11,
        ),
        Scenario("crash", "steady load; the stage's weak point crashes at 40% of the run", _crash),
        Scenario("partition", "steady load; a network partition at 40% of the run", _partition),
        Scenario(
            "saturate", "closed loop: every store kept busy (for capacity figures)", _saturate
        ),
    )
}
