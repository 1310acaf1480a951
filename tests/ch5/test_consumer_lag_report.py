"""`d11 run ch5 --scenario consumer-lag` reports the lag it is about (newcomer LOW):
each group's backlog and committed lag, the stall, and the drain after it, measured
from the run and consistent with the broker's state; no "shards" in chapter 5."""

from __future__ import annotations

from typing import Any

import pytest
from rich.console import Console

from chapters.ch5_mq.deployment import MqDeployment
from chapters.report import render
from chapters.run import RunResult, simulate
from reference.mq.machine import retry_topic

pytestmark = pytest.mark.slow  # a whole run (about 3 s of CPU), twice for the digest


@pytest.fixture(scope="module")
def run() -> RunResult:
    return simulate("ch5", "consumer-lag", seed=1, checks=())


def _note_ms(run: RunResult, kind: str) -> float:
    (at_ms,) = [t for t, k, _ in run.summary["timeline"] if k == kind]
    return float(at_ms)


def test_the_stalled_group_lags_then_drains(run: RunResult) -> None:
    lag = run.summary["lag"]
    stall = lag["stall"]
    assert stall["group"] == "settlement"
    assert stall["paused_at_ms"] == _note_ms(run, "pause")
    assert stall["resumed_at_ms"] == _note_ms(run, "resume")
    g = lag["groups"]["settlement"]
    # The backlog grew while the group was stalled, and peaked around the resume.
    assert g["backlog_at_resume"] > 0
    assert g["backlog_peak"] >= g["backlog_at_resume"]
    assert stall["paused_at_ms"] < g["backlog_peak_at_ms"] <= run.summary["sim_time_ms"]
    # It drained after the resume, and is empty at the end.
    assert g["caught_up_after_resume_ms"] > 0
    assert g["backlog_last"] == 0
    # The groups that kept consuming never had such a backlog.
    others = [v for name, v in lag["groups"].items() if name != "settlement"]
    assert all(o["backlog_peak"] < g["backlog_at_resume"] for o in others), lag["groups"]


def test_the_committed_lag_agrees_with_the_broker(run: RunResult) -> None:
    dep = run.deployment
    assert isinstance(dep, MqDeployment)
    state = dep.broker_state()
    assert state is not None
    lag = run.summary["lag"]
    assert lag["committed_lag_samples"] > 0
    for group, topic in dep.lanes():
        g = lag["groups"][group]
        owed = state.lag(group, topic) + state.lag(group, retry_topic(group))
        assert g["committed_lag_last"] == owed == 0, (group, g)
        assert g["committed_lag_peak"] > 0
    settlement = lag["groups"]["settlement"]
    assert settlement["committed_lag_zero_after_resume_ms"] > 0
    assert run.summary["broker"]["lag"]["settlement"] == settlement["committed_lag_last"]


def test_the_report_shows_it(run: RunResult) -> None:
    console = Console(record=True, width=100)
    render(run.summary, console)
    text = console.export_text()
    stall = run.summary["lag"]["stall"]
    assert f"consumer lag: settlement stalled from {stall['paused_at_ms']:,.0f}" in text
    peak = run.summary["lag"]["groups"]["settlement"]["backlog_peak"]
    assert f"{peak:,} (" in text
    assert "shards" not in text  # chapter 5 has none
    assert "led-hz" not in text and "brk-hz" not in text  # replicas count no txns


def test_load_and_size_are_chapter_5s(run: RunResult) -> None:
    s: dict[str, Any] = run.summary
    assert s["shards"] == 0
    per = s["load"]["txns_by_store"]
    assert not [n for n in per if n.startswith(("led-", "brk-"))]
    assert all(per[n] > 0 for n in per), per  # each producer and consumer served


def test_measuring_the_lag_leaves_the_run_unchanged(
    run: RunResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(MqDeployment, "watch_lag", lambda self, stall: None)
    unwatched = simulate("ch5", "consumer-lag", seed=1, checks=())
    assert "lag" not in unwatched.summary
    assert unwatched.deployment.rt.trace_digest() == run.deployment.rt.trace_digest()  # type: ignore[attr-defined]
