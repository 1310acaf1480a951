"""A message both sent back and applied: its retry copy is answered "exists".

`d11 test double11 --nemesis partition-halves --seed 1` found it (the trial's
F16). notification-sz handled cells-client-1-388 on payments/4: its effect failed
(the flaky SMS gateway), and it sent the message back. The broker stored the
send-back (a copy in the schedule topic, due 10 s on), but the partition lost the
answer; so the member handled the message again, and applied it. The effect
table's record of that apply was trimmed once payments/4's settled mark passed
it, and ten seconds later the retry copy (same msg id, in %RETRY%notification)
was answered "applied": the notification went out twice. A RocketMQ user's
dedup table, keyed by the message id, answers "exists" to a retry copy of a
message it applied; the broker's table now keeps such a record until the
group's last copy of the message is settled, and no longer.
"""

from __future__ import annotations

from reference.mq.machine import BrokerMachine, retry_topic
from reference.mq.messages import (
    ApplyEffect,
    CommitOffset,
    LockQueues,
    Payload,
    SendBack,
    SendMessage,
    TimerTick,
)

TOPIC, GROUP = "payments", "notification"
RETRY = retry_topic(GROUP)


def _broker(n: int) -> tuple[BrokerMachine, int]:
    """n messages of one key (so one queue), and that queue's id."""
    b = BrokerMachine()
    for i in range(n):
        b.apply(SendMessage(TOPIC, f"m{i}", "k", Payload(f"m{i}", "u1", "m1@pay", 100), 0))
    qid = b.log[0].queue_id
    return b, qid


def _apply(b: BrokerMachine, msg_id: str, log_offset: int) -> str:
    """The message's effect (one point to u1) from the copy at `log_offset`."""
    answer = b.apply(ApplyEffect(GROUP, (msg_id,), ("u1",), (1,), (log_offset,)))
    return str(answer[0][0])


def _claim(b: BrokerMachine, topic: str, qid: int, lo: int, hi: int) -> None:
    assert b.apply(CommitOffset(GROUP, topic, qid, hi, "c1", lo))[0] == "ok"


def _lock(b: BrokerMachine, topic: str, qid: int) -> None:
    assert b.apply(LockQueues(GROUP, "c1", topic, (qid,), False, 0))[1] == (qid,)


def test_the_retry_copy_of_a_message_sent_back_then_applied_is_answered_exists() -> None:
    b, qid = _broker(4)
    _lock(b, TOPIC, qid)
    _claim(b, TOPIC, qid, 0, 2)
    # m0's effect fails: sent back, stored (the member never hears it) ...
    sent = b.apply(SendBack(GROUP, b.ids["m0"], 0, 1_000))
    assert sent[0] == "retry"
    # ... so the member handles m0 again, and this time it is applied.
    assert _apply(b, "m0", b.ids["m0"]) == "applied"
    assert _apply(b, "m1", b.ids["m1"]) == "applied"
    _claim(b, TOPIC, qid, 2, 4)  # [0, 2) applied; the mark passes m0 and m1
    assert _apply(b, "m2", b.ids["m2"]) == "applied"  # trims the queue's records
    assert (GROUP, "m1") not in b.applied  # trimmed: the mark answers for it
    # Ten seconds on, the copy is due: moved to the group's retry queue and handed.
    assert b.apply(TimerTick(11_000)) == ("delivered", 1)
    copy = b.queues[(RETRY, 0)][0]
    assert b.log[copy].msg_id == "m0"
    _lock(b, RETRY, 0)
    _claim(b, RETRY, 0, 0, 1)
    # A new leader answers the same (the kept record is in the snapshot).
    assert _apply(b.clone(), "m0", copy) == "exists"
    assert _apply(b, "m0", copy) == "exists"  # not a second notification
    assert b.balances[(GROUP, "u1")] == 3  # m0, m1, m2: each effect once
    # m0's record was kept past payments' mark, for the copy it sent back.
    assert b.kept_for_retry == {(GROUP, "m0")} and b.retry_copies == {(GROUP, "m0"): 1}
    assert b.audit() == []
    # The copy is applied: its claim closes, the retry queue's mark passes it,
    # and the record goes; the mark answers for a late apply of the copy.
    _claim(b, RETRY, 0, 1, 1)
    assert (GROUP, "m0") not in b.applied
    assert b.kept_for_retry == set() and b.retry_copies == {}
    assert _apply(b, "m0", copy) == "exists"
    assert b.balances[(GROUP, "u1")] == 3


def test_the_copies_of_a_group_without_effect_table_are_uncounted_when_settled() -> None:
    """A group that sends back and commits plainly (its dedup table on its own disk)
    leaves nothing in the broker's count once its retry queue passes the copies."""
    b, _ = _broker(2)
    for name in ("m0", "m1"):
        assert b.apply(SendBack(GROUP, b.ids[name], 0, 1_000))[0] == "retry"
    b.apply(TimerTick(11_000))
    assert b.retry_copies == {(GROUP, "m0"): 1, (GROUP, "m1"): 1}
    assert b.apply(CommitOffset(GROUP, RETRY, 0, 1))[0] == "ok"
    assert b.retry_copies == {(GROUP, "m1"): 1}
    assert b.clone().retry_copies == b.retry_copies
    assert b.apply(CommitOffset(GROUP, RETRY, 0, 2))[0] == "ok"
    assert b.retry_copies == {} and b.retry_settled == {GROUP: 2}
