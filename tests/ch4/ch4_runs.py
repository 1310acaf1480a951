"""Runs shared by the chapter 4 tests: memoized (a run is a pure function of its
inputs on the simulator), and fault schedules written out fault by fault."""

from __future__ import annotations

import functools
import random
from typing import Any

from chapters.run import RunResult, simulate
from checks.harness.runner import TestResult, TestSpec, build_stage, fault_targets, run_test
from checks.nemesis import Action, Schedule, fault_actions

# Seeds where chapter 3 (async replication) loses acknowledged payments when
# Shanghai is lost (found by tests/ch4/test_ch4_vs_ch3.py's slow sweep).
CH3_LOSING_SEEDS = (2, 3, 4, 5)

SKEW_IN_BOUND_MS = 8.0  # the groups' bound is 10 ms (chapters/ch4_paxos/group.py)
DRIFT_IN_BOUND_PPM = 100.0  # 0.1 ms per simulated second: under 1 ms in a run


@functools.cache
def _simulate(chapter: str, scenario: str, frozen: tuple[tuple[str, Any], ...]) -> RunResult:
    options = {k: dict(v) if k == "extra" else v for k, v in frozen}
    return simulate(chapter, scenario, **options)


def run(chapter: str, scenario: str, **options: Any) -> RunResult:
    """`chapters.run.simulate`, memoized per test session."""
    frozen = {k: tuple(sorted(v.items())) if k == "extra" else v for k, v in options.items()}
    return _simulate(chapter, scenario, tuple(sorted(frozen.items())))


def failing(result: RunResult | TestResult) -> dict[str, str]:
    """check name -> summary, for every verdict that is not valid (assert messages)."""
    return {n: f"{v.valid}: {v.summary}" for n, v in result.verdicts.items() if v.valid is not True}


@functools.cache
def one_fault_each(
    names: tuple[str, ...],
    *,
    seed: int,
    variant: str = "",
    time_s: float = 4.0,
    fault_ms: float = 500.0,
    calm_ms: float = 250.0,
) -> TestResult:
    """A harness run of chapter 4 whose schedule has one fault of each kind in
    `names`, one after another ("skew" stays inside the clock-skew bound).
    Memoized: a liveness test and a safety test can share one run."""
    spec = TestSpec(chapter="ch4", nemeses=tuple(names), seed=seed, variant=variant, time_s=time_s)
    _, dep = build_stage(spec)  # only to learn the node names the faults may hit
    targets = fault_targets(dep)
    rng = random.Random(f"ch4-schedule:{seed}")
    actions: list[Action] = []
    t_ms = end_ms = 400.0
    for i, name in enumerate(names):
        fault = f"f{i + 1}"
        end_ms = t_ms + (1.0 if name == "lose-unsynced" else fault_ms)
        if name == "skew":
            # Every ledger replica's clock off by the bound's 80%, alternately
            # ahead and behind (two clocks then differ by 16 ms < 2 x 10 ms),
            # and drifting apart at 100 ppm on top.
            members = sorted(m for g in dep.groups.values() for m in g.replicas)
            for j, node in enumerate(members):
                sign = 1.0 if (j + seed) % 2 == 0 else -1.0
                params = {"node": node, "skew_ms": sign * SKEW_IN_BOUND_MS,
                          "drift_ppm": sign * DRIFT_IN_BOUND_PPM}  # fmt: skip
                actions.append(Action(t_ms, "skew", params, fault))
                reset = {"node": node, "skew_ms": 0.0, "drift_ppm": 0.0}
                actions.append(Action(end_ms, "skew", reset, fault))
        else:
            pair = fault_actions(name, rng, targets)
            assert pair is not None, name
            (start_op, start_params), (end_op, end_params) = pair
            actions.append(Action(t_ms, start_op, start_params, fault))
            actions.append(Action(end_ms, end_op, end_params, fault))
        t_ms = end_ms + calm_ms
    assert end_ms <= time_s * 1000.0, "the faults must end before the final phase"
    actions.sort(key=lambda a: a.at_ms)
    return run_test(spec, Schedule(tuple(actions), seed, tuple(names)))
