"""Two effect commands of one queue in flight at once are two history processes.

An orderly member's ApplyEffect retries until it is answered. If its lock is lost
meanwhile (another member took the queue) and granted again, the queue starts
afresh and its next command goes out while the last one still retries. Both
recorded their applies on the queue's process ("loyalty-hz#1/payments/0/0"):
`d11`'s process-backend run of ch5 under kills, on a loaded machine, ended with
"process ... invoked apply while apply is open", a history no checker reads.
"""

from __future__ import annotations

from typing import Any, cast

from checks.history import Event, pair_operations
from reference.mq.consumer import ConsumerConfig, MessageConsumer
from reference.mq.messages import Payload, StoredMessage
from reference.node import Context
from reference.testing import RecordingContext


def test_a_second_effect_command_while_the_first_is_unanswered_opens_other_processes() -> None:
    records: list[dict[str, Any]] = []
    config = ConsumerConfig(
        "loyalty", "payments", (0,), "loyalty", ("b1",), records.append, topic_queues=1,
        rebalance=True, orderly=True, retries=False,
    )  # fmt: skip
    consumer = MessageConsumer("c1", config)
    ctx = cast(Context, RecordingContext(clock_ms=1_000.0, seed=1))
    m = StoredMessage(0, "m0", "payments", 0, "k", Payload("m0", "u1", "m1@pay", 100), 0)
    process = "c1#1/payments/0"
    consumer._apply_shared(ctx, [(m, process, None)], lambda n: None)  # no answer yet
    consumer._apply_shared(ctx, [(m, process, None)], lambda n: None)  # the queue afresh
    events = [
        Event(r["type"], r["process"], r["f"], r["value"], r["time_ms"], i)
        for i, r in enumerate(records)
    ]
    ops = pair_operations(events)  # raised HistoryError: one process, two applies open
    assert [op.f for op in ops] == ["apply", "apply"]
    assert len({op.process for op in ops}) == 2
