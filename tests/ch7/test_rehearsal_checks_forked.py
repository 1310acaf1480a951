"""A rehearsal level's checks with only the queue's part forked (`checks_begun(forked=...)`):
the same verdicts as every part forked and as none, a planted leak caught by the
forked part, and a checker raising here ends the forked one."""

from __future__ import annotations

import multiprocessing

import pytest

import checks.parallel
from chapters.ch7_rehearsal.pipeline_system import PipelineRehearsal
from chapters.ch7_rehearsal.rehearsal import RehearsalPlan, _run, planned_recording
from checks.verdict import Verdict

SHORT_S = 0.4  # simulated traffic: thousands of events, enough for every checker


def _level_run(plan: RehearsalPlan) -> PipelineRehearsal:
    recorded = planned_recording(plan)
    dep, _, _ = _run(
        plan, {"load_factor": 2.0}, "steady", plan.duration_s,
        lambda d, _rt: d.load_test(recorded),
    )  # fmt: skip
    assert isinstance(dep, PipelineRehearsal)
    return dep


def _timeless(verdicts: dict[str, Verdict]) -> dict[str, tuple[object, ...]]:
    """Each verdict but its `elapsed_s` (how long a checker took is no part of it)."""
    return {
        name: (v.valid, v.summary, {k: x for k, x in v.details.items() if k != "elapsed_s"},
               v.witness)
        for name, v in verdicts.items()
    }  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("variant", ["shadow", "leak"])
def test_one_forked_part_gives_the_verdicts_of_all_forked_and_of_none(
    variant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checks.parallel, "PARALLEL_MIN_EVENTS", 1_000)  # fork this short run's
    dep = _level_run(RehearsalPlan(duration_s=SHORT_S, variant=variant))
    assert len(dep.history) >= 1_000
    one = dep.checks_begun(forked=("mq",))()
    every = dep.checks_begun()()
    none = dep.checks_begun(forked=())()
    assert _timeless(one) == _timeless(every) == _timeless(none)
    assert list(one) == list(every) == list(none)
    isolation = one["ch5:isolation"].valid  # judged in the forked process
    assert isolation is (variant == "shadow"), one["ch5:isolation"]


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("variant", ["shadow", "leak"])
def test_a_part_history_made_without_the_merged_one_is_the_same(variant: str) -> None:
    # A forked part makes its history from the parts' own (`_part_history_unmerged`):
    # the same events, in the same order, as taken from the merged history.
    dep = _level_run(RehearsalPlan(duration_s=SHORT_S, variant=variant))
    dep._merged = None
    unmerged = {name: dep.part_history(name) for name in dep.parts}
    assert dep._merged is None  # (made without merging)
    merged = dep.history
    for name in dep.parts:
        taken = dep.part_history(name, merged)
        assert unmerged[name] == taken and dep.part_history(name) == taken
        assert [list(e.extra) for e in unmerged[name]] == [list(e.extra) for e in taken]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_checker_raising_here_ends_the_forked_part(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks.parallel, "PARALLEL_MIN_EVENTS", 1_000)
    dep = _level_run(RehearsalPlan(duration_s=SHORT_S))
    ended: list[bool] = []
    cancel = checks.parallel.PendingChecks.cancel

    def cancelled(self: checks.parallel.PendingChecks[object]) -> None:
        ended.append(bool(self._running))
        cancel(self)

    monkeypatch.setattr(checks.parallel.PendingChecks, "cancel", cancelled)

    def broken(_history: object) -> Verdict:
        raise RuntimeError("a broken checker")

    dep.parts["cells"].checks["bank"] = broken
    verdicts = dep.checks_begun(forked=("mq",))
    with pytest.raises(RuntimeError, match="a broken checker"):
        verdicts()
    assert ended == [True], "the forked part was ended, once"
    assert not multiprocessing.active_children()
