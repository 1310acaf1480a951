"""Concurrent settlement: a settlement member with a `consume_window` has up to
that many messages of one queue in hand at once, each its own ledger call.

Before: a queue's messages were settled one at a time (one ledger commit, ~50
ms, each), so the capstone's 16 queues settled ~320 a second while the
rehearsal's 2x peak brought ~640: its settlement lane ended ~24,000 messages
behind. Now the window's calls go out together, are answered in any order, and
the committed offset stays the lowest offset still in hand (at least once), as
RocketMQ's ProcessQueue keeps it for its pool of consume threads.
"""

from __future__ import annotations

from typing import Any, cast

import pytest

from reference.ledger import CreateTransfers
from reference.ledger.records import Transfer
from reference.mq.consumer import ConsumerConfig, MessageConsumer
from reference.mq.messages import CommitOffset, Payload, SendBack, StoredMessage
from reference.node import Context
from reference.paxos.messages import Propose, ProposeResult
from reference.testing import RecordingContext
from tests.ch5.test_mq_release_busy import _open_ops

TOPIC = "payments"
NAME = f"{TOPIC}/0"


def _transfer(m: StoredMessage, delivery: int) -> Transfer:
    return Transfer(int(m.msg_id.removeprefix("m")), 1, 2, m.body.amount_cents, 1, 1)


def _message(offset: int) -> StoredMessage:
    body = Payload(f"p{offset}", "u1", "m1@pay", 100)
    return StoredMessage(offset, f"m{offset + 1}", TOPIC, 0, "u1", body, 0)


def _consumer(
    window: int, history: list[dict[str, Any]], *, rebalance: bool = False
) -> MessageConsumer:
    config = ConsumerConfig(
        "settlement", TOPIC, (0,), "settlement", ("b1",), history.append, ledger=("l1",),
        settlement=_transfer, retries=False, consume_window=window, rebalance=rebalance,
        topic_queues=2,
    )  # fmt: skip
    consumer = MessageConsumer("c1", config)
    for offset in range(6):
        consumer.queues[NAME].cached.append((offset, _message(offset)))
    consumer.queues[NAME].next_offset = 6
    return consumer


def _settles(rec: RecordingContext) -> dict[int, Propose]:
    """The ledger calls sent so far, by the queue offset of their message."""
    out: dict[int, Propose] = {}
    for _, m in rec.sent:
        if isinstance(m, Propose) and isinstance(m.command, CreateTransfers):
            out[m.command.transfers[0].id - 1] = m
    return out


def _answer(consumer: MessageConsumer, ctx: Context, call: Propose) -> None:
    consumer.on_message(ctx, "l1", ProposeResult(call.request_id, True, ("ok",)))


def _committed(rec: RecordingContext) -> list[int]:
    return [
        m.command.offset
        for _, m in rec.sent
        if isinstance(m, Propose) and isinstance(m.command, CommitOffset)
    ]


def test_a_window_settles_its_messages_at_once_and_commits_the_lowest_in_hand() -> None:
    history: list[dict[str, Any]] = []
    consumer = _consumer(4, history)
    rec = RecordingContext(clock_ms=5_000.0, seed=1)
    ctx = cast(Context, rec)
    q = consumer.queues[NAME]
    consumer._handle_next(ctx, NAME)
    calls = _settles(rec)
    assert sorted(calls) == [0, 1, 2, 3]  # four ledger calls out at once

    _answer(consumer, ctx, calls[2])  # a later one answered first
    assert sorted(_settles(rec)) == [0, 1, 2, 3, 4]  # its slot takes the next message
    consumer._commit_offsets(ctx)
    assert _committed(rec) == [0]  # the lowest offset still in hand: at least once
    assert [o for o, _ in q.cached][:1] == [0]

    _answer(consumer, ctx, calls[0])
    consumer._commit_offsets(ctx)
    assert _committed(rec) == [0, 1]  # 1 still in hand (2 answered behind it)
    _answer(consumer, ctx, calls[1])  # 1 and 2 leave together
    consumer._commit_offsets(ctx)
    assert _committed(rec) == [0, 1, 3]
    for offset in (3, 4, 5):
        _answer(consumer, ctx, _settles(rec)[offset])
    consumer._commit_offsets(ctx)
    assert _committed(rec) == [0, 1, 3, 6] and not q.cached and not q.in_hand
    # Each slot's settlements one after the other: a well-formed history.
    opened = _open_ops(history)
    settle_processes = {e["process"] for e in history if e["f"] == "settle"}
    assert settle_processes == {f"c1#0/{NAME}/{slot}" for slot in range(4)}
    assert set(opened.values()) == {0}


def test_a_message_drawn_to_fail_waits_to_be_the_head_and_goes_back() -> None:
    history: list[dict[str, Any]] = []
    consumer = _consumer(4, history)
    rec = RecordingContext(clock_ms=5_000.0, seed=1)
    ctx = cast(Context, rec)
    q = consumer.queues[NAME]
    q.failing.add(2)  # its draw failed
    consumer._handle_next(ctx, NAME)
    calls = _settles(rec)
    assert sorted(calls) == [0, 1]  # the taking stops at it
    _answer(consumer, ctx, calls[1])
    _answer(consumer, ctx, calls[0])
    [back] = [m for _, m in rec.sent if isinstance(m, Propose) and isinstance(m.command, SendBack)]
    assert back.command.log_offset == 2 and sorted(_settles(rec)) == [0, 1]  # nothing else in hand
    consumer.on_message(ctx, "b1", ProposeResult(back.request_id, True, ("retry",)))
    assert sorted(_settles(rec)) == [0, 1, 3, 4, 5]  # then the rest


def test_a_queue_released_with_a_window_in_hand_is_let_go_when_all_are_answered() -> None:
    history: list[dict[str, Any]] = []
    consumer = _consumer(3, history, rebalance=True)
    rec = RecordingContext(clock_ms=5_000.0, seed=1)
    ctx = cast(Context, rec)
    consumer._handle_next(ctx, NAME)
    calls = _settles(rec)
    consumer._rebalance(ctx, ("c0", "c1"))  # c0 joined: queue 0 is c0's
    assert NAME in consumer.releasing and _committed(rec) == [0]
    _answer(consumer, ctx, calls[0])
    _answer(consumer, ctx, calls[2])
    assert NAME in consumer.releasing  # 1 still in hand
    assert sorted(_settles(rec)) == [0, 1, 2]  # and nothing new taken
    _answer(consumer, ctx, calls[1])
    assert NAME not in consumer.releasing
    assert set(_open_ops(history).values()) == {0}


@pytest.mark.parametrize("window", [0, 1_001])
def test_the_window_is_bounded(window: int) -> None:
    with pytest.raises(AssertionError):
        _consumer(window, [])


def test_a_window_is_for_settlement_only() -> None:
    with pytest.raises(AssertionError, match="settlement only"):
        ConsumerConfig("loyalty", TOPIC, (0,), "loyalty", ("b1",), lambda e: None, consume_window=2)
