"""A settlement member gives a queue away while a message of it is in hand (its
ledger call unanswered, retrying), and a later rebalance gives the queue back
before that call is answered.

Before: the queue was dropped at once and taken again fresh, so the member
handled the same queue twice at once under one process name: a second `settle`
invoked while the first was still open. The history was malformed, and every
chapter 5 check of the capstone answered "unknown" (found in `d11 tui double11`
after a city cut and heal). Now a released queue with a message in hand is let
go only when that message is done, and taken again at the next rebalance.
"""

from __future__ import annotations

from typing import Any, cast

from reference.ledger.records import Transfer
from reference.mq.consumer import ConsumerConfig, MessageConsumer
from reference.mq.messages import Payload, StoredMessage
from reference.node import Context
from reference.paxos.messages import Propose, ProposeResult
from reference.testing import RecordingContext

TOPIC = "payments"


def _transfer(m: StoredMessage, delivery: int) -> Transfer:
    return Transfer(int(m.msg_id.removeprefix("m")), 1, 2, m.body.amount_cents, 1, 1)


def _message(offset: int) -> StoredMessage:
    body = Payload(f"p{offset}", "u1", "m1@pay", 100)
    return StoredMessage(offset, f"m{offset + 1}", TOPIC, 1, "u1", body, 0)


def _open_ops(history: list[dict[str, Any]]) -> dict[str, int]:
    """Open operations per process; asserts no process has two at once."""
    open_by: dict[str, int] = {}
    for event in history:
        process = event["process"]
        if event["type"] == "invoke":
            assert open_by.get(process, 0) == 0, f"{process} invoked while one is open"
            open_by[process] = 1
        else:
            open_by[process] = 0
    return open_by


def test_a_queue_released_with_a_message_in_hand_is_not_handled_twice_at_once() -> None:
    history: list[dict[str, Any]] = []
    config = ConsumerConfig(
        "settlement", TOPIC, (0, 1), "settlement", ("b1",), history.append, topic_queues=2,
        ledger=("l1",), settlement=_transfer, rebalance=True, retries=False,
    )  # fmt: skip
    consumer = MessageConsumer("c1", config)
    rec = RecordingContext(clock_ms=5_000.0, seed=1)
    ctx = cast(Context, rec)
    name = f"{TOPIC}/1"
    consumer.queues[name].cached.append((0, _message(0)))
    consumer._handle_next(ctx, name)  # settle m1: the ledger call is out
    [settle] = [m for _, m in rec.sent if isinstance(m, Propose)]
    assert consumer.queues[name].busy

    consumer._rebalance(ctx, ("c1", "c2"))  # c2 joined: queue 1 is c2's
    assert name not in consumer.queues and name in consumer.releasing
    consumer._rebalance(ctx, ("c1",))  # c2 died at once: queue 1 is ours again...
    assert name not in consumer.queues  # ...but not while m1 is in hand

    answer = ProposeResult(settle.request_id, True, ("ok",))
    consumer.on_message(ctx, "l1", answer)  # m1 settled
    assert name not in consumer.releasing  # let go
    consumer._rebalance(ctx, ("c1",))
    assert name in consumer.queues  # taken again, from the committed offset
    assert _open_ops(history) == {f"c1#0/{name}": 0}
