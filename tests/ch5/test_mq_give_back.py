"""An orderly member gives a queue away before its lock is granted (a rebalance
while its lock request is on its way): the grant, when it comes, is handed
straight back, and the queue can be taken again later.

Before: the queue, never granted, was parked among the queues being handed
over, where nothing ever handed it over (a hand-over starts once the lock is
ours), the late grant was ignored (so the broker held the lock for a member
that did not know it held it, renewed by no one: the next owner waited out the
lock's life, 60 s), and a later rebalance giving the queue back could not take
it (a queue still being handed over is not taken again).
"""

from __future__ import annotations

from typing import cast

from reference.mq.consumer import ConsumerConfig, MessageConsumer
from reference.mq.messages import LockQueues
from reference.node import Context
from reference.paxos.messages import Propose, ProposeResult
from reference.testing import RecordingContext

TOPIC = "payments"


def _locks(rec: RecordingContext) -> list[Propose]:
    return [m for _, m in rec.sent if isinstance(m, Propose) and isinstance(m.command, LockQueues)]


def test_a_queue_given_away_before_its_grant_is_unlocked_at_once_and_can_be_taken_again() -> None:
    config = ConsumerConfig(
        "loyalty", TOPIC, (0, 1), "loyalty", ("b1",), lambda event: None, topic_queues=2,
        rebalance=True, orderly=True, retries=False,
    )  # fmt: skip
    consumer = MessageConsumer("c1", config)
    rec = RecordingContext(clock_ms=5_000.0, seed=1)
    ctx = cast(Context, rec)  # its disk is a SimDisk
    consumer._lock_queues(ctx, renew=False)
    [asked] = _locks(rec)
    assert asked.command.queue_ids == (0, 1)
    consumer._rebalance(ctx, ("c1", "c2"))  # c2 joined: queue 1 is c2's now
    assert f"{TOPIC}/1" not in consumer.queues and f"{TOPIC}/1" not in consumer.releasing
    granted = ProposeResult(asked.request_id, True, ("locked", (0, 1), ()))
    rec.sent.clear()
    consumer.on_message(ctx, "b1", granted)
    unlocks = [p.command for p in _locks(rec) if p.command.unlock]
    assert [(u.consumer, u.queue_ids) for u in unlocks] == [("c1", (1,))]  # handed back
    assert consumer.queues[f"{TOPIC}/0"].locked
    consumer._rebalance(ctx, ("c1",))  # c2 left: queue 1 is ours again
    assert f"{TOPIC}/1" in consumer.queues
