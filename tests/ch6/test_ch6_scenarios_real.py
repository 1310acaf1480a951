"""Chapter 6's own spike scenarios on real processes and containers, judged by the SLO checker.

`d11 test ch6 --backend process --scenario overload-10x` runs what `d11 run
ch6 --scenario overload-10x` runs on the simulator, with every server a
process (or a container) behind its sidecar. On a real backend the payment
database is `REAL_DB_SLOWDOWN` times slower (about 15 payments/s, so a 10x
spike offers about 150/s): the stated scale. The SLO's targets (90% of
capacity through the spike, p99 within the deadline) are the simulator's;
here the checker judges each run from its history alone and these tests
hold what must hold on any machine: money is safe, no work starts after
its deadline, and the checker reached a verdict with its figures.
"""

from __future__ import annotations

import pytest

from chapters.ch6_degrade.stage import REAL_DB_SLOWDOWN, DegradeStage, capacity_tps
from chapters.stage import StageOptions
from checks.harness.runner import HarnessError, TestResult, TestSpec, run_test
from checks.history import pair_operations

SCENARIOS = ("double11", "retry-storm", "dependency-slow", "hot-merchant", "overload-3x",
             "overload-10x")  # fmt: skip
AFTER_MS = 6_000.0  # the calm after the spike (the chapter's own is 32 s)


def _run(backend: str, scenario: str) -> TestResult:
    if backend == "docker":
        from reference.runtime.docker import engine_unreachable_reason

        reason = engine_unreachable_reason()
        if reason is not None:
            pytest.skip(f"needs a Docker engine to run the chapter in containers: {reason}")
    spec = TestSpec("ch6", scenario=scenario, backend=backend, time_s=4.0, seed=1,
                    extra={"after_ms": AFTER_MS})  # fmt: skip
    try:
        return run_test(spec)
    except HarnessError as exc:
        if backend == "process" and "backend" in str(exc):
            pytest.skip(f"node processes cannot start on this machine: {exc}")
        raise


def _assert_judged(result: TestResult, scenario: str) -> None:
    verdicts = {n: v.summary for n, v in result.verdicts.items()}
    assert result.verdicts["bank"].valid is True, verdicts
    assert result.verdicts["ledger"].valid is not False, verdicts  # "unknown": too many to settle
    slo = result.verdicts["slo"]
    if slo.valid == "unknown" and "recovery not judged" in slo.summary:
        # As below: a host too busy to keep the traffic's timers (the slow sweep beside
        # CI, load 7) stops the traffic before the recovery's window is up.
        pytest.skip(f"the host's timers ran late, nothing to judge: {slo.summary}")
    assert slo.valid in (True, False), verdicts
    assert slo.details["served_late"] == 0, verdicts
    # The stated scale: the database at a quarter of the chapter's pace.
    assert slo.details["capacity_tps"] == pytest.approx(
        capacity_tps(StageOptions(extra={"db_slowdown": REAL_DB_SLOWDOWN})), rel=0.01
    )
    start_ms, end_ms = slo.details["spike_ms"]  # the scenario's marks reached the history
    assert 0 < start_ms < end_ms < result.end_ms, (scenario, slo.details["spike_ms"])


def test_the_real_pace_is_a_quarter_of_the_simulators() -> None:
    assert DegradeStage.scenarios.keys() >= set(SCENARIOS)
    sim = capacity_tps()
    real = capacity_tps(StageOptions(extra={"db_slowdown": REAL_DB_SLOWDOWN}))
    assert real < sim / 3


@pytest.mark.slow
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_a_chapter_6_scenario_runs_on_processes_and_the_slo_checker_judges_it(
    scenario: str,
) -> None:
    _assert_judged(_run("process", scenario), scenario)


@pytest.mark.slow
@pytest.mark.docker
def test_a_chapter_6_spike_runs_in_containers_and_the_slo_checker_judges_it() -> None:
    _assert_judged(_run("docker", "overload-3x"), "overload-3x")


UNANSWERED_SHARE_MAX = 0.1  # payments in the spike that heard nothing before their deadline
GOODPUT_SHARE_MIN = 0.8  # of the capacity, through the spike (the simulator's target: 0.9)


@pytest.mark.slow
def test_on_processes_the_gateways_refusals_reach_the_clients_through_a_10x_spike() -> None:
    """double11 on processes: the flow rule refuses most of a 10x spike, and each refusal
    reaches its client before the deadline (before the runtime's fix the edge read its
    sockets a tick a message: 175-328 of the spike's payments timed out at 1,000 ms)."""
    result = _run("process", "double11")
    slo = result.verdicts["slo"]
    if slo.valid not in (True, False):  # "unknown": the host was too busy to judge
        pytest.skip(f"the host's timers ran late, nothing to judge: {slo.summary}")
    start_ms, end_ms = slo.details["spike_ms"]
    spike = [
        op for op in pair_operations(result.history, only=("transfer",))
        if start_ms <= op.invoke.time_ms < end_ms
    ]  # fmt: skip
    refused = [op for op in spike if op.type == "fail"]
    unanswered = [op for op in spike if op.type == "info"]
    assert refused, "a 10x spike and no refusal: the flow rule did not act"
    assert len(unanswered) <= UNANSWERED_SHARE_MAX * len(spike), (
        f"{len(unanswered)} of {len(spike)} payments in the spike heard nothing: {slo.summary}"
    )
    # Goodput in the spike: 3-44% before the fix, 94% after (the recovery target is
    # not held here: the 6 s calm after the spike is shorter than the chapter's).
    assert slo.details["goodput_share"] >= GOODPUT_SHARE_MIN, slo.summary
