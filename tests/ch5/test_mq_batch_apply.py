"""A batch of halves or of COMMITs leaves the broker as the same commands one by one.

`SendHalves` and `EndTransactions` have their own loops (machine.py: `_store_halves`,
`_commit_many`), written out for `d11 bench mq`'s CPU; every case they do not take
(a checked half, another producer group, a key with an older half, a held commit,
a message resolved or unknown) goes through `_end` itself. These tests compare
every table, not only the snapshot, with the one-by-one path.
"""

from __future__ import annotations

from reference.mq.machine import BrokerConfig, BrokerMachine
from reference.mq.messages import (
    CheckPass,
    CommandBatch,
    EndTransaction,
    EndTransactions,
    Payload,
    PullQuery,
    SendHalf,
    SendHalves,
)

GROUP, OTHER, TOPIC = "payment-service", "refund-service", "payments"


def _state(b: BrokerMachine) -> tuple[object, ...]:
    """Everything the broker keeps, the tables the snapshot rebuilds included."""
    return (
        b.snapshot(),
        {k: list(v) for k, v in b.queues.items()},
        dict(b.ids),
        {k: list(v) for k, v in b.half_offsets.items()},
    )


def _halves(ids: tuple[str, ...], keys: tuple[str, ...], group: str = GROUP) -> SendHalves:
    bodies = tuple(Payload(m, k, "m1@pay", 5) for m, k in zip(ids, keys, strict=True))
    return SendHalves.of(group, TOPIC, ids, keys, bodies, 0)


def _one_by_one(b: BrokerMachine, c: SendHalves | EndTransactions, at_ms: int) -> list[object]:
    if isinstance(c, SendHalves):
        return [
            b.apply(SendHalf(c.producer_group, c.topic, m, k, body, at_ms))
            for m, k, body in zip(c.msg_ids, c.keys, c.bodies, strict=True)
        ]
    return [b.apply(EndTransaction(c.producer_group, m, c.commit, False, at_ms)) for m in c.msg_ids]


def _both(commands: list[tuple[SendHalves | EndTransactions | CheckPass, int]]) -> None:
    together, alone = (
        BrokerMachine(BrokerConfig(queues_per_topic=4)),
        BrokerMachine(BrokerConfig(queues_per_topic=4)),
    )
    for command, at_ms in commands:
        if isinstance(command, CheckPass):
            assert together.apply(CheckPass(at_ms)) == alone.apply(CheckPass(at_ms))
            continue
        (answer,) = together.apply(CommandBatch((command,), at_ms))
        each = _one_by_one(alone, command, at_ms)
        outcome = each[0][0]
        if all(r[0] == outcome for r in each) and outcome in ("stored", "committed"):
            assert answer == (outcome, tuple(r[1] for r in each))  # one answer for all
        elif all(r == ("rolled-back",) for r in each):
            assert answer == ("rolled-back", len(each))
        else:
            assert answer == tuple(each)  # an answer per message, as each alone says it
        assert _state(together) == _state(alone), command
    assert together.audit() == alone.audit() == []


def test_a_batch_of_fresh_halves_and_their_commits_is_stored_as_each_alone() -> None:
    ids = tuple(f"p{i}" for i in range(12))
    _both([(_halves(ids, ids), 1_000), (EndTransactions(GROUP, ids, True, 0), 2_000)])


def test_a_resend_in_a_batch_is_stored_once_and_committed_once() -> None:
    first = _halves(("p1", "p2"), ("u1", "u2"))
    again = _halves(("p2", "p3", "p3"), ("u2", "u3", "u3"))
    verdicts = EndTransactions(GROUP, ("p1", "p2", "p2", "p3", "nobody"), True, 0)
    _both([(first, 1_000), (again, 1_100), (verdicts, 2_000), (verdicts, 2_100)])


def test_commits_of_one_key_wait_for_its_older_half_in_a_batch_as_alone() -> None:
    # p2 and p3 share u1 with p1, still unresolved: both are held, then released
    # in half order by p1's commit (`_release`), which the batch's loop leaves to `_end`.
    halves = _halves(("p1", "p2", "p3", "p4"), ("u1", "u1", "u1", "u2"))
    later = EndTransactions(GROUP, ("p3", "p2", "p4"), True, 0)
    _both([(halves, 1_000), (later, 2_000), (EndTransactions(GROUP, ("p1",), True, 0), 3_000)])


def test_a_checked_half_and_another_groups_verdict_are_refused_in_a_batch_as_alone() -> None:
    timeout_ms = BrokerConfig().transaction_timeout_ms
    ours = _halves(("p1", "p2"), ("u1", "u2"))
    theirs = _halves(("r1",), ("u3",), OTHER)
    late = 1_000 + timeout_ms + 1
    verdicts = EndTransactions(GROUP, ("p1", "r1", "p2"), True, 0)
    # The check pass asks about p1, p2 and r1 (all past the timeout): a producer's
    # own COMMIT after that is refused; r1 is another group's.
    _both([(ours, 1_000), (theirs, 1_000), (CheckPass(0), late), (verdicts, late + 1)])
    fresh = _halves(("q1", "q2"), ("u4", "u5"))
    _both([(fresh, 1_000), (EndTransactions(OTHER, ("q1", "q2"), True, 0), 1_500)])


def test_rolled_back_then_committed_in_a_batch_is_refused_as_alone() -> None:
    halves = _halves(("p1", "p2"), ("u1", "u2"))
    _both(
        [
            (halves, 1_000),
            (EndTransactions(GROUP, ("p1",), False, 0), 1_500),
            (EndTransactions(GROUP, ("p1", "p2"), True, 0), 2_000),
        ]
    )


def test_a_held_pull_is_woken_exactly_when_a_pull_would_return_a_message() -> None:
    b = BrokerMachine(BrokerConfig(queues_per_topic=1))
    query = PullQuery("g", TOPIC, 0, -1, 32, 5_000)
    assert b.pull_would_find(query) == (False, False)
    b.apply(CommandBatch((_halves(("p1",), ("u1",)),), 1_000))
    assert b.pull_would_find(query) == (False, False)  # a half is not in the queue
    b.apply(CommandBatch((EndTransactions(GROUP, ("p1",), True, 0),), 2_000))
    for q in (query, PullQuery("g", TOPIC, 0, 0, 0, 5_000), PullQuery("g", TOPIC, 0, 1, 32, 0)):
        found = b.pull(q)
        assert b.pull_would_find(q) == (
            found.next_offset < found.max_offset or bool(found.messages),
            bool(found.messages),
        )
