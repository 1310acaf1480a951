"""The rehearsal's runs side by side (`chapters/ch7_rehearsal/forks.py`): each run in a
forked child, its result back by key, an error raised here; and the readiness report
the same byte for byte whether its runs go two at a time or one after the other. Each
run is judged with the collector's thresholds raised, as its simulation ran."""

from __future__ import annotations

import gc
import json
import os

import pytest

from chapters.ch7_rehearsal import rehearsal
from chapters.ch7_rehearsal.forks import RunFailed, Runs
from chapters.ch7_rehearsal.rehearsal import RehearsalPlan, rehearse
from checks.verdict import Verdict
from reference.clients import Payment


def _pid_and(value: int) -> tuple[int, int]:
    return os.getpid(), value


def _fails() -> None:
    raise ValueError("a run that raises")


def test_runs_fork_two_at_a_time_and_hand_back_each_result_by_key() -> None:
    started: list[str] = []
    runs = Runs(2, on_start=started.append)
    assert runs.forking
    runs.submit("a", "first", lambda: _pid_and(1))
    runs.submit("b", "second", lambda: _pid_and(2))
    runs.submit("c", "third", lambda: _pid_and(3))
    runs.submit("d", "urgent", lambda: _pid_and(4), urgent=True)
    assert started == ["first", "second"]  # two at once; the rest wait their turn
    results = {key: runs.result(key) for key in "dcba"}
    assert started == ["first", "second", "urgent", "third"]  # the urgent run jumped ahead
    assert [results[key][1] for key in "abcd"] == [1, 2, 3, 4]
    assert os.getpid() not in {pid for pid, _ in results.values()}


def test_one_at_a_time_runs_here_when_asked_for() -> None:
    runs = Runs(1)
    runs.submit("a", "first", lambda: _pid_and(1))
    assert runs.result("a") == (os.getpid(), 1)


def test_a_run_that_raises_raises_here_with_its_traceback() -> None:
    runs = Runs(2)
    runs.submit("bad", "bad", _fails)
    with pytest.raises(RunFailed, match="a run that raises"):
        runs.result("bad")


@pytest.mark.slow
@pytest.mark.timeout(1200)  # ~25 s of CPU, twice; minutes of wall on a loaded machine
def test_the_pipelines_report_is_the_same_run_two_at_a_time_or_one_after_the_other() -> None:
    plan = RehearsalPlan(
        duration_s=0.6, sweep_s=0.4, levels=(0.5, 1.1, 2.0), concurrency=(4, 32, 128),
        night=False,
    )  # fmt: skip
    side_by_side = json.dumps(rehearse(plan, width=2), default=str)
    one_by_one = json.dumps(rehearse(plan, width=1), default=str)
    assert side_by_side == one_by_one


class _JudgedRun:
    """A finished run with no payment: what a level reads, and when its checks ran."""

    history: list[object] = []  # noqa: RUF012
    traffic_window = (0.0, 1000.0)
    scale = 1.0
    collecting: bool | None = None

    def forecast_tps(self) -> float:
        return 100.0

    def run_checks(self) -> dict[str, Verdict]:
        self.collecting = gc.isenabled()
        return {"isolation": Verdict("isolation", True, "no tagged write")}


def test_a_level_is_judged_with_the_collector_off_and_its_heap_aged_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A level makes no cyclic garbage: a collection would only rescan the
    # simulation's heap (rehearsal._uncollected). After it, what it allocated is
    # in the oldest generation: no young collection over all of it.
    run = _JudgedRun()
    monkeypatch.setattr(rehearsal, "_run", lambda *args, **kwargs: (run, {}, 0.0))
    assert gc.isenabled()
    level = rehearsal._level(RehearsalPlan(system="ch7"), 1.1, [])
    assert level["checks"] == {"isolation": True}
    assert run.collecting is False
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_what_an_uncollected_run_allocated_is_old_after_it() -> None:
    # Left young, the first allocation after gc.enable() would start a young
    # collection over everything the run allocated (rehearsal._aged).
    def run() -> list[list[int]]:
        return [[i] for i in range(1000)]

    kept = rehearsal._uncollected(run)()
    assert gc.isenabled()
    assert any(obj is kept for obj in gc.get_objects(generation=2))


def _bench_lines(
    monkeypatch: pytest.MonkeyPatch, planned: list[Payment], recorded: list[Payment]
) -> tuple[list[str], list[list[Payment]]]:
    """`bench_level` with its runs stubbed: what it prints, and what each level replayed."""
    replayed: list[list[Payment]] = []

    def level(_plan: RehearsalPlan, _factor: float, rec: list[Payment]) -> dict[str, object]:
        replayed.append(rec)
        checks = {"isolation": True, "ch5:delivery": bool(rec)}  # (no payment: not valid)
        return {
            "offered_tps": 1.0, "goodput_tps": 1.0, "success": 1.0, "links": {}, "scale": 1.0,
            "checks": checks,
        }  # fmt: skip

    monkeypatch.setattr(rehearsal, "planned_recording", lambda _plan: planned)
    monkeypatch.setattr(rehearsal, "_recording", lambda _plan: (recorded, 100.0, 1.0))
    monkeypatch.setattr(rehearsal, "_level", level)
    # One at a time, here: what each level replayed is seen (a forked one's is not).
    monkeypatch.setattr(rehearsal, "Runs", lambda _width: Runs(1))
    lines = list(rehearsal.bench_level(RehearsalPlan(duration_s=1.0), 2.0))
    return lines, replayed


def test_the_bench_level_replays_the_plan_and_again_the_recording_if_it_differs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The level replays production's plan while the recording runs beside it (a
    # forked process); the same list: nothing more. Another: the level runs again.
    plan = [Payment(1.0, "u1", "m1", 5), Payment(2.0, "u2", "m1", 7)]
    lines, replayed = _bench_lines(monkeypatch, plan, list(plan))
    assert replayed == [plan] and "the same list" in lines[1]
    assert "  checks: all 2 valid" in lines
    assert lines[0].startswith("recording: 2 payments in 1 simulated s")
    assert lines[-1].startswith("total_wall_s:") and lines[-2].startswith("total_cpu_s:")
    shed = plan[:1]  # a client shed the second payment
    lines, replayed = _bench_lines(monkeypatch, plan, shed)
    assert replayed == [plan, shed] and "NOT the list" in lines[1]
    assert any("runs again" in line for line in lines)
    assert "  checks: all 2 valid" in lines  # the level on the recording is the one judged


def test_the_bench_says_which_checks_of_its_level_are_not_valid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines, _ = _bench_lines(monkeypatch, [], [])  # the stub's delivery fails on no payment
    assert "  checks: ch5:delivery False" in lines
