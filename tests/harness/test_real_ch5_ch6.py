"""Chapters 5 (the message queue) and 6 (degrade controls) on real processes and Docker.

Chapter 5's producers and consumers record history, so the harness hosts
them and the broker's Paxos group runs as processes (or containers).
Chapter 6's servers run wrapped in their sidecars as processes; what the
sidecars decide (best-effort work done or shed, switches, work served after
its deadline) is recorded through the deployment's `record`, forwarded from
each node process to the harness (`checks.harness.real.forward_records`), so
the SLO checker reads the same history it reads on the simulator.

A chapter 5 run lasts at least one broker check pass (30 s, RocketMQ's
default) past its traffic, so those runs are `slow`; one short chapter 6
run on Docker is in the default suite.
"""

from __future__ import annotations

import pytest

from checks.harness.runner import TestResult, TestSpec, run_test
from checks.history import Event


def _docker_or_skip() -> None:
    from reference.runtime.docker import engine_unreachable_reason

    reason = engine_unreachable_reason()
    if reason is not None:
        pytest.skip(f"needs a Docker engine to run the chapter in containers: {reason}")


def _verdicts(result: TestResult) -> dict[str, object]:
    return {n: v.summary for n, v in result.verdicts.items()}


# A best-effort call is decided within its 1.5 s timeout, and a node process
# flushes its records every 100 ms: a payment gateway killed within this of a
# payment's acknowledgement may never record that payment's calls.
UNDECIDED_BEFORE_CRASH_MS = 2_000.0


def _acknowledged(history: list[Event], node: str = "gw-pay") -> int:
    """Payments acknowledged, except those whose gateway `node` was killed soon after."""
    down: list[tuple[float, float]] = []
    for e in history:
        if e.process == "nemesis" and isinstance(e.value, dict) and e.value.get("node") == node:
            if e.f == "crash":
                down.append((e.time_ms - UNDECIDED_BEFORE_CRASH_MS, float("inf")))
            elif e.f == "restart" and down:
                down[-1] = (down[-1][0], e.time_ms)
    acked = [e.time_ms for e in history if e.f == "transfer" and e.type == "ok"]
    return sum(1 for t in acked if not any(a <= t <= b for a, b in down))


def _degrade_records(result: TestResult) -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = {}
    for e in result.history:
        if e.process == "nemesis" and str(e.f).startswith("degrade:"):
            out.setdefault(str(e.f), []).append(e)
    return out


def _assert_sidecar_records_reached_the_history(result: TestResult) -> None:
    """After every payment the payment gateway's sidecar decides each best-effort call
    (done, failed or shed) and records it: three records per acknowledged payment at
    least. In the gateway's process they used to go to a copy of the deployment."""
    records = _degrade_records(result)
    acked = _acknowledged(result.history)
    # Real backends run chapter 6 at a quarter of its pace (~15 payments/s, 60% of it offered).
    assert acked >= 8, _verdicts(result)
    best_effort = records.get("degrade:best-effort", [])
    assert len(best_effort) >= 3 * acked, (len(best_effort), acked, sorted(records))
    assert {e.value["path"] for e in best_effort} == {"notify", "loyalty", "recommend"}
    assert all(0.0 <= e.time_ms <= result.end_ms for e in best_effort)


def _assert_ch6_holds(result: TestResult) -> None:
    """Safety holds, and the SLO: no work after its deadline (seen only through the
    sidecars' records). Its p99 is judged too, but on a machine shared by others
    (loads of 20-50 on 2 cores seen) a real payment's latency is the machine's: a
    p99 past the deadline is allowed here, and nothing else is."""
    verdicts = _verdicts(result)
    for name in ("bank", "ledger"):
        assert result.verdicts[name].valid is True, verdicts
    slo = result.verdicts["slo"]
    assert slo.valid != "unknown" and slo.details["served_late"] == 0, verdicts
    if slo.valid is False:
        assert all(str(p).startswith("p99 ") for p in slo.witness), verdicts
    _assert_sidecar_records_reached_the_history(result)


def _ch6(backend: str, **fields: object) -> TestSpec:
    return TestSpec(**{"chapter": "ch6", "time_s": 2.0, "seed": 1, "backend": backend, **fields})


@pytest.mark.docker
@pytest.mark.slow  # 8-16 s of wall time, little CPU: in .ci/run's named list
def test_ch6_runs_in_containers_and_its_sidecars_decisions_reach_the_history() -> None:
    _docker_or_skip()
    result = run_test(_ch6("docker"))
    _assert_ch6_holds(result)
    # The harness's default rate is capped at 60% of the chapter's capacity on real
    # backends (~15/s: its database at a quarter of the simulator's pace).
    assert result.spec.extra["steady_tps"] < 10


@pytest.mark.slow
def test_ch6_under_kills_on_processes_holds_with_its_sidecars_records() -> None:
    result = run_test(_ch6("process", nemeses=("kill",), time_s=6.0))
    assert any(e.f == "crash" for e in result.history if e.process == "nemesis")
    _assert_ch6_holds(result)


@pytest.mark.slow
@pytest.mark.docker
def test_ch6_under_kills_and_pauses_on_docker_holds_with_its_sidecars_records() -> None:
    _docker_or_skip()
    result = run_test(_ch6("docker", nemeses=("kill", "pause"), time_s=6.0))
    _assert_ch6_holds(result)


def _assert_ch5_valid(result: TestResult) -> None:
    assert result.valid is True, _verdicts(result)
    delivered = result.verdicts["delivery"].summary
    assert "committed messages delivered" in delivered, delivered
    assert (
        _acknowledged(result.history)
        + sum(1 for e in result.history if e.f == "send" and e.type == "ok")
        > 20
    )


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["process", "docker"])
def test_ch5_transactional_under_kill_and_partition_is_valid_on_real_backends(
    backend: str,
) -> None:
    if backend == "docker":
        _docker_or_skip()
    spec = TestSpec("ch5", nemeses=("kill", "partition-halves"), time_s=6.0, seed=2,
                    backend=backend)  # fmt: skip
    result = run_test(spec)
    _assert_ch5_valid(result)
    assert {"crash", "partition"} <= {e.f for e in result.history if e.process == "nemesis"}
