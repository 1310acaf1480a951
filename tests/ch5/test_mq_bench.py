"""`d11 bench mq` on real processes: it delivers, and prints `messages_per_s:` last."""

from __future__ import annotations

from math import nan

import pytest

from reference.mq.bench import (
    Delivery,
    MessageBudget,
    MqBenchReport,
    MqBenchRow,
    longest_pause_ms,
    path_cost,
    run_one,
    stage_quantiles,
)


def test_the_report_ends_with_the_figure_scripts_read() -> None:
    row = MqBenchRow(batch=64, inflight=4, messages=30_000, seconds=1.5, p50_ms=10.0, p99_ms=40.0)
    single = MqBenchRow(batch=1, inflight=8, messages=300, seconds=1.5, p50_ms=20.0, p99_ms=60.0)
    text = MqBenchReport(row, single, fsync=True).render()
    assert text.splitlines()[-1] == "messages_per_s: 20000"
    assert "1.00x the 20,000 msgs/s target" in text and "unbatched" in text


@pytest.mark.slow
def test_messages_flow_through_three_broker_processes_with_fsync() -> None:
    row = run_one(seconds=1.0, inflight=2, batch=16, fsync=True)
    assert row.messages > 0 and row.p50_ms <= row.p99_ms
    # Every stage was seen, the consumer's acknowledgement (offset commits) too.
    assert set(row.stages) >= {"half stored", "commit and delivery", "end to end", "consumer ack"}


def test_the_path_cost_counts_every_role_and_is_printed_above_the_figure() -> None:
    cost = path_cost(batches=4, batch=8)
    assert set(cost) == {"load", "leader", "followers"} and all(us > 0 for us in cost.values())
    row = MqBenchRow(batch=8, inflight=1, messages=100, seconds=1.0, p50_ms=1.0, p99_ms=2.0)
    lines = MqBenchReport(row, row, fsync=True, path_us=cost).render().splitlines()
    assert lines[-2].startswith("CPU per message along the path") and "leader" in lines[-2]
    assert lines[-1] == "messages_per_s: 100"


def test_each_process_cpu_per_message_and_its_busy_share_are_printed() -> None:
    cpu = {"b1": 40.0, "b2": 20.0, "b3": 20.0, "harness": 25.0}
    row = MqBenchRow(64, 4, 10_000, 2.0, 30.0, 90.0, cpu)  # 5,000 msgs/s
    text = MqBenchReport(row, row, fsync=True).render()
    # 40 us a message at 5,000 a second keep b1 busy 20% of one core.
    assert "batched: CPU per message measured, us (share of one core busy): b1 40.0 (20%)" in text
    assert text.splitlines()[-1] == "messages_per_s: 5000"


def test_the_message_budget_is_printed_stage_by_stage_above_the_figure() -> None:
    budget = MessageBudget(
        sampled=12,
        half={"to leader": 1.0, "accept round": 6.0, "reply": 2.0},
        commit={"to leader": 1.0, "accept round": 6.0, "delivery": 4.0},
        latency_mean_ms=21.0,
        held_ms={"Accepted": (3.5, 40)},
        fsync_ms=(2.0, 30),
    )
    row = MqBenchRow(64, 4, 10_000, 2.0, 30.0, 90.0, budget=budget)
    lines = MqBenchReport(row, row, fsync=True).render().splitlines()
    (line,) = [x for x in lines if x.startswith("batched: budget of one message")]
    # The stages add up to the latency the load measured, and both are printed.
    assert "half round to leader 1.0, accept round 6.0, reply 2.0 (= 9.0)" in line
    assert "delivery 4.0 (= 11.0); total 20.0 against 21.0 measured" in line
    assert any("Accepted 3.5 x 40; the fsyncs themselves 2.0 ms x 30" in x for x in lines)
    assert lines[-1] == "messages_per_s: 5000"


def test_each_stage_p50_p99_and_the_longest_stall_are_printed() -> None:
    # Four messages on the load's clock: sent, stored, committed, pulled (ms).
    window = [
        Delivery(pulled_ms=30.0, born_ms=0.0, stored_ms=10.0, committed_ms=20.0),
        Delivery(pulled_ms=30.0, born_ms=5.0, stored_ms=10.0, committed_ms=20.0),
        Delivery(pulled_ms=140.0, born_ms=40.0, stored_ms=50.0, committed_ms=nan),
        Delivery(pulled_ms=150.0, born_ms=40.0, stored_ms=50.0, committed_ms=60.0),
    ]
    acks = [(35.0, 45.0), (145.0, 160.0)]  # (offset commit sent, answered)
    stages = stage_quantiles(window, acks)
    near = pytest.approx  # p99 of four values is interpolated (99.7 for 20, 20, 90, 100)
    assert stages["half stored"] == (10.0, 10.0)
    assert stages["commit and delivery"] == near((55.0, 100.0), abs=0.5)
    assert stages["verdict answered"] == (10.0, 10.0)  # the lost answer is left out, not zero
    assert stages["end to end"] == near((65.0, 110.0), abs=0.5)
    # Pulled at 30 (twice) and 140: acked by the commits sent at 35 (answered 15 ms
    # later) and 145 (answered 20 ms later); the one pulled at 150 has no commit after it.
    assert stages["consumer ack"] == near((15.0, 20.0), abs=0.5)
    assert longest_pause_ms(window) == 110.0  # nothing delivered between 30 and 140
    row = MqBenchRow(64, 4, 10_000, 2.0, 30.0, 90.0, stages=stages, longest_pause_ms=110.0)
    lines = MqBenchReport(row, row, fsync=True).render().splitlines()
    (line,) = [x for x in lines if x.startswith("batched: stages p50/p99 ms")]
    assert "half stored 10.0/10.0, commit and delivery 55.0/99.7" in line
    assert "consumer ack 15.0/19.9; longest pause in deliveries 110.0 ms" in line
    assert lines[-1] == "messages_per_s: 5000"
