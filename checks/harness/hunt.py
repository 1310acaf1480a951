"""The hunter: search seeds and fault schedules for a failure, then shrink it.

Hypothesis drives the search. An example is a seed and a list of faults,
each drawn as (kind, start, duration, target seed); it becomes a concrete
`Schedule` that runs on the simulator. When a run's checkers say invalid,
Hypothesis shrinks the example: fewer faults, earlier and shorter, simpler
targets, a smaller seed, until no smaller example still fails. Because the
simulator is deterministic, the minimal example is a schedule file that
`d11 test --schedule FILE` (or `d11 replay`) reproduces exactly.

The budget bounds the whole hunt, search and shrinking: Hypothesis's own
limit (`max_examples`) counts only the search, and shrinking a slow chapter's
failure could run hundreds of simulations more (`d11 hunt ch5 --budget 5`
took 205 s). Once `budget` simulations have run, every further example the
shrinker asks for is answered at once, as passing, without a run, so the
shrinker gives up; the smallest failing run seen so far is the answer, and
`HuntResult.shrink_cut` says it may not be minimal.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from checks.harness.runner import TestResult, TestSpec, build_stage, fault_targets, run_test
from checks.harness.runner import validate as validate_spec
from checks.nemesis import Action, Schedule, Targets, fault_actions

__all__ = ["HuntResult", "hunt", "schedule_from_draw"]

FAULTS_MAX = 6  # faults per drawn schedule: enough for most bugs, small to shrink
SEED_MAX = 10_000


@dataclass
class HuntResult:
    found: bool
    runs: int  # how many simulations the hunt ran (search and shrinking)
    failing_runs: int
    minimal: TestResult | None  # the smallest failing run found (None: none found)
    shrink_cut: bool = False  # shrinking stopped at the budget: minimal may not be minimal


class _Violation(Exception):
    """Raised inside a Hypothesis example to mark it failing."""


# --8<-- [start:hunt-draw]
def schedule_from_draw(
    draw: list[tuple[str, int, int, int]],
    targets: Targets,
    *,
    start_ms: float,
    span_ms: float,
    fault_ms: float,
) -> Schedule:
    """A concrete schedule from drawn faults: (kind, start permille, length, target seed).

    Smaller numbers mean earlier, shorter faults on the first targets, so
    Hypothesis shrinking towards zero shrinks towards simpler schedules.
    """
    actions: list[Action] = []
    for i, (kind, start_permille, length, target_seed) in enumerate(draw):
        pair = fault_actions(kind, random.Random(target_seed), targets)
        if pair is None:
            continue
        at_ms = round(start_ms + span_ms * start_permille / 1000, 3)
        end_ms = round(min(start_ms + span_ms, at_ms + fault_ms * length / 4), 3)
        if kind == "lose-unsynced":
            end_ms = at_ms + 1.0
        (start_op, start_params), (end_op, end_params) = pair
        actions.append(Action(at_ms, start_op, start_params, f"f{i + 1}"))
        actions.append(Action(end_ms, end_op, end_params, f"f{i + 1}"))
    actions.sort(key=lambda a: a.at_ms)
    return Schedule(tuple(actions), None, tuple(sorted({d[0] for d in draw})))


# --8<-- [end:hunt-draw]


def hunt(
    base: TestSpec,
    budget: int,
    *,
    on_run: Callable[[int, TestResult], None] | None = None,
) -> HuntResult:
    """Search for an invalid run and shrink the first one found, in at most `budget`
    simulations in all (search and shrinking)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st
    from hypothesis.errors import Flaky

    base = validate_spec(base)
    assert budget >= 1, "a hunt runs at least one example"
    nemeses = base.nemeses or ("kill", "partition-halves", "pause")
    rt, dep = build_stage(base)
    targets = fault_targets(dep)
    start_ms, span_ms = rt.now_ms, base.time_s * 1000.0
    state: dict[str, Any] = {"runs": 0, "failing": 0, "best": None, "cut": False}

    fault = st.tuples(
        st.sampled_from(sorted(nemeses)),
        st.integers(0, 999),
        st.integers(1, 8),
        st.integers(0, 1000),
    )

    @settings(
        max_examples=budget,
        database=None,
        deadline=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        print_blob=False,
    )
    @hypothesis_seed(base.seed)
    @given(seed=st.integers(0, SEED_MAX), draw=st.lists(fault, min_size=1, max_size=FAULTS_MAX))
    def probe(seed: int, draw: list[tuple[str, int, int, int]]) -> None:
        if state["runs"] >= budget:
            # The budget is spent (only shrinking asks past it): no run, and an
            # example that does not fail, so the shrinker stops trying.
            state["cut"] = state["best"] is not None
            return
        schedule = schedule_from_draw(
            draw, targets, start_ms=start_ms, span_ms=span_ms, fault_ms=base.fault_ms
        )
        spec = replace(base, seed=seed, nemeses=schedule.nemeses)
        result = run_test(spec, replace(schedule, seed=seed))
        state["runs"] += 1
        if on_run is not None:
            on_run(state["runs"], result)
        if result.valid is False:
            state["failing"] += 1
            best = state["best"]
            if best is None or _size(result) <= _size(best):
                state["best"] = result
            raise _Violation(result.spec.name)

    with contextlib.suppress(_Violation, Flaky):
        probe()
    best: TestResult | None = state["best"]
    return HuntResult(best is not None, state["runs"], state["failing"], best, state["cut"])


def _size(result: TestResult) -> tuple[int, float, int]:
    """Smaller is simpler: fewer faults, less fault time, a smaller seed."""
    faults = result.schedule.intervals()
    return (len(faults), sum(b - a for a, b, _ in faults), result.spec.seed)
