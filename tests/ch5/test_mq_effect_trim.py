"""The broker's effect table is bounded: a dedup record goes once its message is
settled for its group, and exactly once still holds across a hand-over.

The table (`BrokerMachine._apply_effect`) keeps each message's dedup record
beside its effect, so the member that adopts a dead member's claim is answered
"exists" for what the dead one applied. It kept every record for good. The rule
now: per (group, topic, queue), the *settled mark* is the lowest of the group's
committed offset and the start of every open claim there; no member is handed a
message below it again (a claim moves the offset before its messages are
applied and stays open until they are; a new holder starts at the offset or
adopts the claim). Records below the mark are dropped, and an apply of a
message below the highest dropped one is answered "exists" by the mark: a late
command of a member taken for dead included.
"""

from __future__ import annotations

from reference.mq.machine import BrokerMachine
from reference.mq.messages import ApplyEffect, CommitOffset, LockQueues, Payload, SendMessage

TOPIC, GROUP = "payments", "loyalty"


def _broker(n: int) -> tuple[BrokerMachine, int]:
    """n messages of one key (so one queue), and that queue's id."""
    b = BrokerMachine()
    for i in range(n):
        b.apply(SendMessage(TOPIC, f"m{i}", "k", Payload(f"m{i}", "u1", "m1@pay", 100), 0))
    qid = b.log[0].queue_id
    assert all(m.queue_id == qid for m in b.log)
    return b, qid


def _apply(b: BrokerMachine, *ids: int) -> list[str]:
    """Each message's effect (one point to u1), as one command: its answers."""
    names = tuple(f"m{i}" for i in ids)
    offsets = tuple(b.ids[n] for n in names)  # a plain message: its one record
    effect = ApplyEffect(GROUP, names, ("u1",) * len(ids), (1,) * len(ids), offsets)
    return [str(a[0]) for a in b.apply(effect)]


def _claim(b: BrokerMachine, who: str, qid: int, lo: int, hi: int) -> None:
    assert b.apply(CommitOffset(GROUP, TOPIC, qid, hi, who, lo))[0] == "ok"


def test_settled_records_are_trimmed_and_a_hand_over_applies_nothing_twice() -> None:
    b, qid = _broker(8)
    assert b.apply(LockQueues(GROUP, "c1", TOPIC, (qid,), False, 0))[1] == (qid,)
    _claim(b, "c1", qid, 0, 3)
    assert _apply(b, 0, 1, 2) == ["applied"] * 3
    _claim(b, "c1", qid, 3, 6)  # closes [0, 3): applied; claims [3, 6)
    assert _apply(b, 3) == ["applied"]  # c1 applies m3 and dies, its claim open
    # m0..m2 are below the committed offset and outside every open claim: gone.
    assert set(b.applied) == {(GROUP, "m3")} and b.trimmed_below == {(GROUP, TOPIC, qid): 3}
    assert b.settled_mark((GROUP, TOPIC, qid)) == 3  # c1's open claim holds it at 3
    # The leader releases the dead member's lock; c2 takes the queue with the claim.
    assert b.apply(LockQueues(GROUP, "c1", TOPIC, (qid,), True, 1_000))[0] == "unlocked"
    assert b.apply(LockQueues(GROUP, "c2", TOPIC, (qid,), False, 1_000)) == (
        "locked", (qid,), (qid,),
    )  # fmt: skip
    assert _apply(b, 3, 4, 5) == ["exists", "applied", "applied"]  # m3 kept: the claim's
    assert _apply(b, 1) == ["exists"]  # c1's late command for m1: trimmed, the mark answers
    _claim(b, "c2", qid, 6, 8)  # closes the adopted claim
    assert _apply(b, 6) == ["applied"]
    assert set(b.applied) == {(GROUP, "m6")}  # m3..m5 trimmed too
    assert b.balances[(GROUP, "u1")] == 7  # m0..m6: each effect once
    # Snapshots keep the table and the mark: a new leader answers the same.
    other = b.clone()
    assert other.applied == b.applied and other.trimmed_below == b.trimmed_below
    assert _apply(other, 4, 7) == ["exists", "applied"]


def test_without_offsets_records_are_kept() -> None:
    b, qid = _broker(3)
    b.apply(LockQueues(GROUP, "c1", TOPIC, (qid,), False, 0))
    _claim(b, "c1", qid, 0, 2)
    effect = ApplyEffect(GROUP, ("m0", "m1"), ("u1", "u1"), (1, 1))  # an older client's
    assert [a[0] for a in b.apply(effect)] == ["applied", "applied"]
    _claim(b, "c1", qid, 2, 3)
    assert _apply(b, 2) == ["applied"]
    assert set(b.applied) == {(GROUP, "m0"), (GROUP, "m1"), (GROUP, "m2")}
