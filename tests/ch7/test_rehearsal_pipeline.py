"""`d11 rehearse` on the capstone's payment pipeline (the default system): it names a
bottleneck planted in one of the pipeline's components, and its isolation verdict
catches a leak planted at a cell gateway. Each runs the recording and the load
levels on the simulator (several seconds of CPU): slow."""

from __future__ import annotations

import pytest

from chapters.ch7_rehearsal.rehearsal import (
    RehearsalPlan,
    _bottlenecks,
    _level,
    _recording,
    _run,
    _saturation,
)
from reference.capacity import recorded_arrivals

SHORT_S = 0.6  # simulated traffic per run: enough for the queues to show


@pytest.mark.slow
@pytest.mark.timeout(900)  # ~40 s of CPU; on a loaded shared machine, minutes of wall
def test_the_rehearsal_names_a_payment_service_planted_slow() -> None:
    # pay-sz-1 (Shenzhen's cell's payment service, chapter 5's producer) 50x slower
    # than a gateway at each message: past its capacity from the lowest level on.
    plan = RehearsalPlan(
        duration_s=SHORT_S, levels=(0.5, 2.0), extra={"slow": "pay-sz-1", "slow_factor": 50.0}
    )
    recorded, _, _ = _recording(plan)
    levels = [_level(plan, factor, recorded) for factor in plan.levels]
    ranked = _bottlenecks(levels, _saturation(levels))
    assert ranked[0]["node"] == "pay-sz-1", ranked
    assert ranked[0]["saturates_at"] == 0.5 and ranked[0]["mean_queue"] > 8, ranked[0]
    # The hops are the pipeline's, the load test tagged end to end and isolated.
    assert {"client→gateway", "gateway→payment", "mq half", "ledger", "end-to-end"} <= set(
        levels[-1]["links"]
    )
    assert all(lv["checks"]["isolation"] is True for lv in levels)
    assert all(lv["checks"]["double11:pipeline"] is True for lv in levels)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_isolation_verdict_catches_a_gateway_that_drops_the_tag() -> None:
    plan = RehearsalPlan(duration_s=SHORT_S, variant="leak")
    level = _level(plan, 1.1, _recording(plan)[0])
    assert level["checks"]["isolation"] is False, level["isolation"]


def test_a_node_that_only_waits_saturates_at_its_latency_knee() -> None:
    # The pipeline's Paxos groups queue nothing (a replica never works, it waits):
    # a component saturates where the p99 of the hop into it climbs past the knee.
    def level(factor: float, ledger_p99: float, queue: float) -> dict[str, object]:
        return {
            "factor": factor, "links": {}, "queues": {"pay-hz-1": queue},
            "node_links": {"ledger hz-1": {"p99": ledger_p99}, "pay-hz-1": {"p99": 1.0}},
        }  # fmt: skip

    levels = [level(0.5, 30.0, 0.5), level(1.1, 60.0, 1.0), level(2.0, 400.0, 2.0)]
    saturation = _saturation(levels)
    assert saturation == {"ledger hz-1": 2.0, "pay-hz-1": None}
    ranked = _bottlenecks(levels, saturation)
    assert ranked[0]["node"] == "ledger hz-1" and ranked[0]["inbound_p99_ms"] == 400.0
    levels[1]["queues"] = {"pay-hz-1": 9.0}  # a queue past QUEUE_SATURATED at 1.1x: first
    assert _bottlenecks(levels, _saturation(levels))[0]["node"] == "pay-hz-1"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_recording_stops_with_its_traffic_and_misses_no_payment() -> None:
    # The recording's run ends with its traffic window, before its final phase (the
    # drain, the lookups, the final reads): the same arrivals as the whole run's.
    plan = RehearsalPlan(duration_s=SHORT_S)
    recorded, _, _ = _recording(plan)
    whole, _, _ = _run(plan, {"load_test_share": 0.0}, "steady", plan.duration_s)
    assert recorded and recorded == recorded_arrivals(whole.history)
