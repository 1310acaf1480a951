"""The broker's state machine, command by command: RocketMQ's transactional
semantics, retries and dead letters, and the per-key hold, with no network."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from reference.codec import decode, decode_value, encode, encode_value
from reference.mq.broker import stamp
from reference.mq.machine import (
    CHECK_MAX_TOPIC,
    DELAY_LEVELS_MS,
    HALF_TOPIC,
    SCHEDULE_TOPIC,
    BrokerConfig,
    BrokerMachine,
    dlq_topic,
    queue_of,
    retry_topic,
)
from reference.mq.messages import (
    CheckPass,
    CheckTransaction,
    CommandBatch,
    CommitOffset,
    EndTransaction,
    EndTransactions,
    LockQueues,
    Payload,
    PullQueries,
    PullQuery,
    SendBack,
    SendHalf,
    SendHalves,
    SendMessage,
    SendTimer,
    TimerTick,
)
from reference.tracing.context import TraceContext

GROUP, TOPIC = "payment-service", "payments"
TIMEOUT_MS = BrokerConfig().transaction_timeout_ms


def _half(b: BrokerMachine, msg_id: str, key: str = "u1", at_ms: int = 1_000) -> int:
    body = Payload(msg_id, key, "m1@pay", 500)
    result = b.apply(SendHalf(GROUP, TOPIC, msg_id, key, body, at_ms))
    assert result[0] == "stored"
    return int(result[1])


def _end(b: BrokerMachine, msg_id: str, commit: bool, *, check: bool = False, at_ms: int = 2_000):
    return b.apply(EndTransaction(GROUP, msg_id, commit, check, at_ms))


def _visible(b: BrokerMachine, key: str = "u1", group: str = "g", now_ms: int = 10**9) -> list[str]:
    qid = queue_of(key, b.config.queues_per_topic)
    pulled = b.pull(PullQuery(group, TOPIC, qid, -1, 32, now_ms))
    return [m.msg_id for m in pulled.messages]


def test_a_half_message_is_invisible_until_committed() -> None:
    b = BrokerMachine()
    offset = _half(b, "p1")
    assert b.log[offset].topic == HALF_TOPIC
    assert _visible(b) == []
    assert _end(b, "p1", True)[0] == "committed"
    assert _visible(b) == ["p1"]
    assert b.ops["p1"] == "committed"


def test_a_rolled_back_half_message_is_never_visible() -> None:
    b = BrokerMachine()
    _half(b, "p1")
    assert _end(b, "p1", False) == ("rolled-back",)
    assert _visible(b) == [] and b.ops["p1"] == "rolled-back"


def test_a_resent_half_is_stored_once() -> None:
    b = BrokerMachine()
    assert _half(b, "p1") == _half(b, "p1")
    assert len(b.log) == 1


def test_a_second_verdict_changes_nothing() -> None:
    """RocketMQ issue 8158: a commit racing a check-back's commit stored the message
    twice; a COMMIT after a check-back's ROLLBACK was accepted."""
    b = BrokerMachine()
    _half(b, "p1")
    _end(b, "p1", False, check=True)
    assert _end(b, "p1", True) == ("refused", "already rolled-back")
    _half(b, "p2", key="u2")
    _end(b, "p2", True, check=True)
    assert _end(b, "p2", True) == ("refused", "already committed")
    assert _visible(b, "u2") == ["p2"] and _visible(b) == []


def test_check_pass_waits_for_the_transaction_timeout() -> None:
    b = BrokerMachine()
    _half(b, "p1", at_ms=1_000)
    assert b.apply(CheckPass(1_000 + TIMEOUT_MS - 1)) == ((), ())
    checks, discarded = b.apply(CheckPass(1_000 + TIMEOUT_MS))
    assert discarded == ()
    assert checks == (CheckTransaction("p1", GROUP, b.log[0].body, 1),)


def test_after_a_check_only_a_check_answer_decides() -> None:
    b = BrokerMachine()
    _half(b, "p1", at_ms=0)
    b.apply(CheckPass(TIMEOUT_MS))
    assert _end(b, "p1", True)[0] == "refused"
    assert _end(b, "p1", True, check=True)[0] == "committed"


def test_after_the_last_check_a_half_is_set_aside_and_a_late_commit_refused() -> None:
    b = BrokerMachine()
    _half(b, "p1", at_ms=0)
    cfg = b.config
    for i in range(cfg.transaction_check_max):
        checks, discarded = b.apply(CheckPass(TIMEOUT_MS + i * cfg.transaction_check_interval_ms))
        assert [c.check_times for c in checks] == [i + 1] and discarded == ()
    checks, discarded = b.apply(CheckPass(10**8))
    assert checks == () and discarded == ("p1",)
    assert b.ops["p1"] == "discarded" and b.log[-1].topic == CHECK_MAX_TOPIC
    assert _end(b, "p1", True, check=True) == ("refused", "already discarded")
    assert _visible(b) == []


def test_checks_per_pass_are_bounded() -> None:
    b = BrokerMachine(BrokerConfig(checks_per_pass_max=3))
    for i in range(5):
        _half(b, f"p{i}", key=f"u{i}", at_ms=0)
    checks, _ = b.apply(CheckPass(TIMEOUT_MS))
    assert [c.msg_id for c in checks] == ["p0", "p1", "p2"]


def test_a_key_keeps_its_order_when_an_older_half_waits_for_its_check() -> None:
    b = BrokerMachine()
    _half(b, "p1", at_ms=0)  # its commit will be lost: the check-back decides
    _half(b, "p2", at_ms=10)
    assert _end(b, "p2", True) == ("committed", -1)  # held behind p1
    assert _visible(b) == []
    b.apply(CheckPass(TIMEOUT_MS))
    _end(b, "p1", True, check=True)
    assert _visible(b) == ["p1", "p2"]


def test_a_rollback_releases_the_messages_held_behind_it() -> None:
    b = BrokerMachine()
    _half(b, "p1", at_ms=0)
    _half(b, "p2", at_ms=10)
    _end(b, "p2", True)
    _end(b, "p1", False)
    assert _visible(b) == ["p2"]


def test_consumer_retries_follow_the_delay_levels_then_dead_letter() -> None:
    b = BrokerMachine()
    b.apply(SendMessage(TOPIC, "p1", "u1", Payload("p1", "u1", "m1@pay", 1), 0))
    offset, now_ms = 0, 0
    waits: list[int] = []
    for tries in range(b.config.max_reconsume_times):
        kind, offset = b.apply(SendBack("g", offset, tries, now_ms))
        assert kind == "retry"
        waiting = b.log[offset]  # in the schedule topic's queue of its delay level
        level = 3 + tries  # RocketMQ: delayLevel = 3 + reconsumeTimes
        assert (waiting.topic, waiting.queue_id) == (SCHEDULE_TOPIC, level - 1)
        waits.append(waiting.deliver_at_ms - now_ms)
        now_ms = waiting.deliver_at_ms
        assert b.apply(TimerTick(now_ms)) == ("delivered", 1)  # due: to the retry topic
        retry = b.log[-1]
        assert retry.topic == retry_topic("g") and retry.reconsume_times == tries + 1
        offset = retry.offset
    assert waits[:3] == [10_000, 30_000, 60_000] and waits[-1] == 7_200_000
    assert waits == list(DELAY_LEVELS_MS[2:])
    kind, offset = b.apply(SendBack("g", offset, b.config.max_reconsume_times, now_ms))
    assert kind == "dead-letter" and b.log[offset].topic == dlq_topic("g")


def test_a_retry_is_not_pulled_before_it_is_due() -> None:
    b = BrokerMachine()
    b.apply(SendMessage(TOPIC, "p1", "u1", Payload("p1", "u1", "m1@pay", 1), 0))
    b.apply(SendBack("g", 0, 0, 1_000))
    assert b.lag("g", retry_topic("g")) == 1  # waiting, in the schedule topic
    assert not b.retries_due(10_999) and b.retries_due(11_000)
    b.apply(TimerTick(10_999))
    early = b.pull(PullQuery("g", retry_topic("g"), 0, -1, 32, 10_999))
    b.apply(TimerTick(11_000))
    due = b.pull(PullQuery("g", retry_topic("g"), 0, -1, 32, 11_000))
    assert early.messages == () and [m.msg_id for m in due.messages] == ["p1"]
    assert b.lag("g", retry_topic("g")) == 1 and b.waiting_retries("g") == 0


def test_a_retry_due_sooner_is_not_held_behind_one_of_a_longer_delay_level() -> None:
    """p1 fails for the sixth time (its retry waits 4 min), then p2 for the first
    (10 s): p2 is due at 11 s. In one retry queue read in order (before), p2 was
    stored behind p1 and waited for it until 4 min; one queue per delay level
    (RocketMQ's SCHEDULE_TOPIC_XXXX) delivers each at its due time."""
    b = BrokerMachine()
    for mid in ("p1", "p2"):
        b.apply(SendMessage(TOPIC, mid, mid, Payload(mid, "u1", "m1@pay", 1), 0))
    b.apply(SendBack("g", 0, 5, 0))  # level 8: 4 min
    b.apply(SendBack("g", 1, 0, 1_000))  # level 3: 10 s
    topic = retry_topic("g")

    def pulled(now_ms: int) -> list[str]:
        b.apply(TimerTick(now_ms))
        return [m.msg_id for m in b.pull(PullQuery("g", topic, 0, -1, 32, now_ms)).messages]

    assert pulled(10_000) == []
    assert pulled(11_000) == ["p2"]  # before: [] until 240 s
    assert pulled(239_999) == ["p2"] and b.waiting_retries("g") == 1
    assert pulled(240_000) == ["p2", "p1"] and b.waiting_retries("g") == 0
    assert b.audit() == []


def test_retries_due_in_one_tick_reach_the_retry_topic_in_due_order() -> None:
    b = BrokerMachine()
    for mid in ("p1", "p2", "p3"):
        b.apply(SendMessage(TOPIC, mid, mid, Payload(mid, "u1", "m1@pay", 1), 0))
    b.apply(SendBack("g", 0, 1, 0))  # 30 s: due 30 s
    b.apply(SendBack("g", 1, 0, 5_000))  # 10 s: due 15 s
    b.apply(SendBack("h", 2, 0, 6_000))  # another group's: due 16 s
    b.apply(TimerTick(60_000))  # a leader that ticks late moves them all, in due order
    assert [(m.msg_id, m.topic) for m in b.log[-3:]] == [
        ("p2", retry_topic("g")),
        ("p3", retry_topic("h")),
        ("p1", retry_topic("g")),
    ]
    b.apply(SendBack("g", 0, 2, 60_000))  # 1 min: waits
    clone = b.clone()  # the schedule's cursors and its waiting retries are in the snapshot
    assert clone.schedule_next == b.schedule_next and clone.scheduled_for == b.scheduled_for
    assert len(clone.scheduled_for) == 1 and clone.retries_due(120_000)


def test_committed_offsets_only_move_forward_and_measure_lag() -> None:
    b = BrokerMachine(BrokerConfig(queues_per_topic=1))
    for i in range(3):
        b.apply(SendMessage(TOPIC, f"p{i}", "u1", Payload(f"p{i}", "u1", "m1@pay", 1), 0))
    assert b.lag("g", TOPIC) == 3
    b.apply(CommitOffset("g", TOPIC, 0, 2))
    b.apply(CommitOffset("g", TOPIC, 0, 1))  # a late commit from a restarted consumer
    assert b.offsets[("g", TOPIC, 0)] == 2 and b.lag("g", TOPIC) == 1
    assert [m.msg_id for m in b.pull(PullQuery("g", TOPIC, 0, -1, 32, 0)).messages] == ["p2"]


def test_snapshot_restores_an_equal_broker_through_the_codec() -> None:
    b = BrokerMachine()
    _half(b, "p1", at_ms=0)
    _half(b, "p2", at_ms=10)
    _end(b, "p2", True)
    b.apply(CheckPass(TIMEOUT_MS))
    snapshot = decode_value(encode_value(b.snapshot()))
    other = BrokerMachine()
    other.restore(snapshot)
    assert other.snapshot() == b.snapshot()
    _end(other, "p1", True, check=True)
    assert _visible(other) == ["p1", "p2"]


@pytest.mark.parametrize(
    "msg",
    [
        SendHalf(GROUP, TOPIC, "p1", "u1", Payload("p1", "u1", "m1@pay", 5), 0),
        EndTransaction(GROUP, "p1", True, False, 0),
        CheckTransaction("p1", GROUP, Payload("p1", "u1", "m1@pay", 5), 3),
        PullQuery("g", TOPIC, 1, -1, 32, 0),
        SendBack("g", 4, 0, 0),
    ],
)
def test_messages_round_trip_through_the_codec(msg: object) -> None:
    assert decode(encode(msg)) == msg  # type: ignore[arg-type]


def test_a_command_batch_applies_in_order_and_answers_each() -> None:
    b = BrokerMachine()
    body = Payload("p1", "u1", "m1@pay", 5)
    results = b.apply(
        CommandBatch(
            (
                SendHalf(GROUP, TOPIC, "p1", "u1", body, 0),
                EndTransaction(GROUP, "p1", True, False, 1),
                EndTransaction(GROUP, "p1", True, False, 2),
            )
        )
    )
    assert results[0][0] == "stored" and results[1][0] == "committed"
    assert results[2] == ("refused", "already committed")
    assert b.apply(CommandBatch((CheckPass(0),))) == (("refused", "not a batchable command"),)  # type: ignore[arg-type]


# -- timer messages -------------------------------------------------------------


def _timer(b: BrokerMachine, msg_id: str, deliver_at_ms: int, born_ms: int = 0) -> Any:
    body = Payload(msg_id, "u1", "m1@pay", 1)
    return b.apply(SendTimer(TOPIC, msg_id, "u1", body, deliver_at_ms, born_ms))


def test_a_timer_message_is_visible_from_its_second_on() -> None:
    b = BrokerMachine()
    b.apply(TimerTick(0))
    _timer(b, "t1", 5_500)
    assert b.apply(TimerTick(4_999)) == ("delivered", 0) and _visible(b) == []
    assert b.apply(TimerTick(5_000)) == ("delivered", 1)  # 1 s precision: its second has come
    assert _visible(b) == ["t1"]


def test_timer_messages_beyond_the_ring_wait_their_round_and_keep_their_order() -> None:
    b = BrokerMachine(BrokerConfig(timer_roll_window_slots=10))  # a 10 s ring
    b.apply(TimerTick(0))
    _timer(b, "late", 23_000)  # same slot as "soon", two rounds later
    _timer(b, "soon", 3_000)
    _timer(b, "also-soon", 3_400)
    delivered = [b.apply(TimerTick(t * 1_000))[1] for t in range(1, 25)]
    assert _visible(b) == ["soon", "also-soon", "late"]
    assert delivered[2] == 2 and delivered[22] == 1 and sum(delivered) == 3


def test_a_late_tick_catches_up_boundedly_and_loses_nothing() -> None:
    b = BrokerMachine()
    b.apply(TimerTick(0))
    for i in range(5):
        _timer(b, f"t{i}", 1_000 + i * 1_000_000)  # up to 4,000 s out
    b.apply(TimerTick(5_000_000))  # a leader that was down for over an hour
    assert b.wheel.hand == 3_600 and b.wheel.size == 1  # an hour of slots per tick, at most
    b.apply(TimerTick(5_000_000))
    assert b.wheel.size == 0 and len(_visible(b)) == 5


def test_a_delay_beyond_the_maximum_is_refused() -> None:
    b = BrokerMachine()
    three_days_ms = 3 * 86_400_000
    assert _timer(b, "ok", three_days_ms, born_ms=0)[0] == "stored"
    assert _timer(b, "no", three_days_ms + 1, born_ms=0)[0] == "refused"
    forty_days = BrokerMachine(BrokerConfig(timer_max_delay_ms=40 * 86_400_000))
    assert _timer(forty_days, "cloud", 40 * 86_400_000)[0] == "stored"


def test_the_wheel_survives_a_snapshot() -> None:
    b = BrokerMachine()
    b.apply(TimerTick(0))
    _timer(b, "t1", 2_000)
    other = BrokerMachine()
    other.restore(decode_value(encode_value(b.snapshot())))
    other.apply(TimerTick(2_000))
    assert _visible(other) == ["t1"]


def test_a_producers_verdicts_in_one_command_answer_each_message() -> None:
    b = BrokerMachine()
    for m in ("p1", "p2"):
        b.apply(SendHalf(GROUP, TOPIC, m, "u1", Payload(m, "u1", "m1@pay", 5), 0))
    verdicts = EndTransactions(GROUP, ("p1", "p2", "p1"), True, 0)
    assert decode(encode(verdicts)) == verdicts
    results = b.apply(CommandBatch((verdicts,), timestamp_ms=7))
    ((first, second, again),) = results
    assert first[0] == second[0] == "committed" and again == ("refused", "already committed")
    assert _visible(b) == ["p1", "p2"] and {m.born_ms for m in b.log[2:]} == {7}


def test_verdicts_that_all_did_what_they_asked_answer_once() -> None:
    b = BrokerMachine()
    for m, key in (("p1", "u1"), ("p2", "u1"), ("p3", "u2"), ("p4", "u3")):
        b.apply(SendHalf(GROUP, TOPIC, m, key, Payload(m, key, "m1@pay", 5), 0))
    # p2 waits behind p1 (same key, p1 unresolved): -1, as EndTransaction says it.
    assert b.apply(EndTransactions(GROUP, ("p2", "p3"), True, 5)) == ("committed", (-1, 4))
    assert b.apply(EndTransactions(GROUP, ("p1", "p4"), False, 6)) == ("rolled-back", 2)
    assert _visible(b, "u1") == ["p2"] and _visible(b, "u2") == ["p3"]  # p2 once p1 is gone
    # One verdict that did not do what it asked: an answer per verdict again.
    mixed = b.apply(EndTransactions(GROUP, ("p4",), True, 7))
    assert mixed == (("refused", "already rolled-back"),)


def test_a_batchs_answers_stay_small_in_the_groups_dedup_table() -> None:
    # Every answer is kept by the Paxos group's dedup table and encoded again when
    # a chunk of 1,024 is sealed, on every replica at once: at a tuple per message
    # that was 195 ms of codec every 65,536 messages of d11 bench mq (its stall).
    b = BrokerMachine(BrokerConfig(queues_per_topic=8))
    ids = tuple(f"p{i}" for i in range(1_000, 1_064))
    bodies = tuple(Payload(m, m, "m1@pay", 5) for m in ids)
    stored = b.apply(SendHalves.of(GROUP, TOPIC, ids, ids, bodies, 0))
    committed = b.apply(EndTransactions(GROUP, ids, True, 9))
    assert stored == ("stored", tuple(range(64))) and committed[0] == "committed"
    assert len(encode_value(stored)) + len(encode_value(committed)) < 16 * len(ids)


# -- the leader's stamp -------------------------------------------------------------

_BODY = Payload("p1", "u1", "m1@pay", 5)
_TRACE = TraceContext("t1", "s2", "s1", "T")
# Every stamped command with each field away from its default, so a field added
# to one of them (with a default) fails here until the sample, and stamp, set it.
_STAMPED: list[tuple[Any, str]] = [
    (SendHalf(GROUP, TOPIC, "p1", "u1", _BODY, 0, _TRACE), "born_ms"),
    (SendHalves.of(GROUP, TOPIC, ("p1",), ("u1",), (_BODY,), 0, (_TRACE,)), "born_ms"),
    (SendMessage(TOPIC, "p1", "u1", _BODY, 0, _TRACE), "born_ms"),
    (SendTimer(TOPIC, "p1", "u1", _BODY, 9_000, 0, _TRACE), "born_ms"),
    (EndTransaction(GROUP, "p1", True, True, 0), "timestamp_ms"),
    (EndTransactions(GROUP, ("p1", "p2"), True, 0), "timestamp_ms"),
    (SendBack("g", 4, 2, 0), "timestamp_ms"),
    (CheckPass(0), "timestamp_ms"),
    (TimerTick(0), "timestamp_ms"),
    (LockQueues("g", "c1", TOPIC, (1, 2), True, 0), "timestamp_ms"),
    (PullQuery("g", TOPIC, 1, 7, 32, 0, 400), "now_ms"),
    (CommandBatch((EndTransaction(GROUP, "p1", True, False, 3),), 0), "timestamp_ms"),
]


@pytest.mark.parametrize(("command", "time_field"), _STAMPED)
def test_stamp_sets_the_leaders_time_and_keeps_every_other_field(
    command: Any, time_field: str
) -> None:
    for f in dataclasses.fields(command):
        if f.name != time_field:
            assert getattr(command, f.name) != f.default, f"sample leaves {f.name} at its default"
    stamped = stamp(command, 1_234.9)
    assert type(stamped) is type(command)
    assert stamped == dataclasses.replace(command, **{time_field: 1_234})
    pulls = PullQueries((command,) if isinstance(command, PullQuery) else ())
    assert stamp(pulls, 1_234.9) == PullQueries(tuple(stamp(q, 1_234) for q in pulls.queries))


def test_stamp_leaves_other_commands_as_they_are() -> None:
    offset = CommitOffset("g", TOPIC, 1, 5)
    assert stamp(offset, 1_000.0) is offset


def test_half_messages_sent_together_are_stored_as_each_alone() -> None:
    bodies = tuple(Payload(m, k, "m1@pay", 5) for m, k in (("p1", "u1"), ("p2", "u2")))
    halves = SendHalves.of(GROUP, TOPIC, ("p1", "p2"), ("u1", "u2"), bodies, 0, (None, _TRACE))
    assert decode(encode(halves)) == halves
    together, alone = BrokerMachine(), BrokerMachine()
    answers = together.apply(CommandBatch((halves,), timestamp_ms=1_000))
    for body, trace in zip(bodies, (None, _TRACE), strict=True):
        alone.apply(SendHalf(GROUP, TOPIC, body.payment_id, body.buyer, body, 1_000, trace))
    assert answers == (("stored", (0, 1)),)  # one answer, each message's offset
    assert together.snapshot() == alone.snapshot()
    # A resend is stored once, as a SendHalf's; the verdicts then work on each.
    assert together.apply(halves) == ("stored", (0, 1))
    assert _end(together, "p2", True)[0] == "committed" and _visible(together, "u2") == ["p2"]


def test_half_messages_sent_together_need_a_key_and_body_each() -> None:
    b = BrokerMachine()
    short = SendHalves.of(GROUP, TOPIC, ("p1", "p2"), ("u1",), (_BODY, _BODY), 0)
    assert b.apply(short)[0] == "refused"
    traces = SendHalves.of(GROUP, TOPIC, ("p1",), ("u1",), (_BODY,), 0, (_TRACE, _TRACE))
    assert b.apply(traces)[0] == "refused" and not b.log
