"""What travels to, from and through the transactional message broker.

Two kinds of registered messages live here:

- *Commands* of the broker's replicated log (`SendHalf`, `EndTransaction`,
  `SendMessage`, `CommitOffset`, `SendBack`, `CheckPass`). They reach the
  broker's Paxos group the way ledger commands reach theirs: inside a
  `paxos.Propose`, answered by a `paxos.ProposeResult` whose `result` is the
  command's outcome. Fields named `*_ms` that a client sends as 0 are stamped
  by the group's leader with its clock (the log is the only clock every
  replica agrees on).
- *Queries* answered from the leader's state under its lease (`Pull`,
  inside a `paxos.Read`), and the broker's own request to a producer
  (`CheckTransaction`).

Every field has an exact type: the codec carries them as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import cast

from reference.codec import Message, message
from reference.tracing.context import TraceContext

__all__ = [
    "ApplyEffect",
    "CheckPass",
    "CheckTransaction",
    "CommandBatch",
    "CommitOffset",
    "ConsumerHeartbeat",
    "ConsumerList",
    "EndTransaction",
    "EndTransactions",
    "LockQueues",
    "Payload",
    "PullQueries",
    "PullQuery",
    "PullResult",
    "PullResults",
    "SendBack",
    "SendHalf",
    "SendHalves",
    "SendMessage",
    "SendTimer",
    "SendTraces",
    "StoredMessage",
    "TimerTick",
    "TraceEntry",
    "TraceValue",
]

TraceValue = str | int | float | bool  # what a trace step's fields hold


@message(name="mq.Payload")
class Payload(Message):
    """What one payment event says: enough for every consumer and for the check-back."""

    payment_id: str
    buyer: str  # account name, e.g. "u17"
    merchant: str  # the merchant's escrow account, e.g. "m3@pay"
    amount_cents: int


@message(name="mq.StoredMessage")
class StoredMessage(Message):
    """One record of the commit log (a message as the broker stores it)."""

    offset: int  # position in the commit log
    msg_id: str
    topic: str  # the real topic for a committed message; the system topics otherwise
    queue_id: int
    key: str
    body: Payload
    born_ms: int  # when the broker first stored it (leader's clock)
    reconsume_times: int = 0  # retries so far (retry and dead-letter topics)
    deliver_at_ms: int = 0  # schedule topic (a retry) and timer topic: due then
    producer_group: str = ""
    # The message's trace context (a message property, as SOFATracer's MQ hook
    # carries it): every copy the broker makes keeps it (committed, retry,
    # dead-letter, check-max, timer). None: the producer sent no trace.
    trace: TraceContext | None = None


# -- building the broker's own records fast --------------------------------------
# The broker builds two StoredMessages and a Payload for every message it stores
# and commits, on every replica, and the bench's consumer two more a message it
# pulls: the largest share of the replicas' apply. A message's constructor
# (codec._use_fast_init) calls a slot setter per field, since a frozen class
# refuses plain attribute stores. These build the same objects through an
# unfrozen twin with the same slots (so the same memory layout): plain stores,
# then the object becomes an instance of the message class, frozen as any other
# (`__class__` assignment between classes of one layout). Measured in one process:
# StoredMessage 0.98-1.19 -> 0.41 us, Payload 0.55 -> 0.38. Every field in
# order, no defaults: tests/ch5/test_mq_records.py holds them to the classes.


class _StoredMessageTwin(Message):
    __slots__ = (
        "body",
        "born_ms",
        "deliver_at_ms",
        "key",
        "msg_id",
        "offset",
        "producer_group",
        "queue_id",
        "reconsume_times",
        "topic",
        "trace",
    )  # fmt: skip
    offset: int
    msg_id: str
    topic: str
    queue_id: int
    key: str
    body: Payload
    born_ms: int
    reconsume_times: int
    deliver_at_ms: int
    producer_group: str
    trace: TraceContext | None


class _PayloadTwin(Message):
    __slots__ = ("amount_cents", "buyer", "merchant", "payment_id")
    payment_id: str
    buyer: str
    merchant: str
    amount_cents: int


# The same slots (Python lays them out in sorted order), or `__class__` assignment
# would refuse.
assert sorted(_StoredMessageTwin.__slots__) == sorted(StoredMessage.__slots__)
assert sorted(_PayloadTwin.__slots__) == sorted(Payload.__slots__)
_new = object.__new__
_become = object.__setattr__  # (m, "__class__", cls): the object is now a `cls`


def stored_message(
    offset: int, msg_id: str, topic: str, queue_id: int, key: str, body: Payload, born_ms: int,
    reconsume_times: int, deliver_at_ms: int, producer_group: str, trace: TraceContext | None,
) -> StoredMessage:  # fmt: skip
    """`StoredMessage(...)` with every field given, built faster (see above)."""
    m = _new(_StoredMessageTwin)
    m.offset, m.msg_id, m.topic, m.queue_id, m.key, m.body = (
        offset, msg_id, topic, queue_id, key, body,
    )  # fmt: skip
    m.born_ms, m.reconsume_times, m.deliver_at_ms = born_ms, reconsume_times, deliver_at_ms
    m.producer_group, m.trace = producer_group, trace
    _become(m, "__class__", StoredMessage)
    return cast(StoredMessage, m)


def payload(payment_id: str, buyer: str, merchant: str, amount_cents: int) -> Payload:
    """`Payload(...)`, built faster (see above)."""
    m = _new(_PayloadTwin)
    m.payment_id, m.buyer, m.merchant, m.amount_cents = payment_id, buyer, merchant, amount_cents
    _become(m, "__class__", Payload)
    return cast(Payload, m)


# -- commands (inside paxos.Propose) -------------------------------------------


@message(name="mq.SendHalf")
class SendHalf(Message):
    """Store a half message: durable, invisible to consumers until committed."""

    producer_group: str
    topic: str
    msg_id: str
    key: str
    body: Payload
    born_ms: int  # 0 from the client; the leader stamps it
    trace: TraceContext | None = None  # the trace context, a message property


@message(name="mq.SendHalves")
class SendHalves(Message):
    """A producer's half messages of one topic in one command (a batching producer's
    SendHalf for each; RocketMQ's batch send, too, wants one topic per batch): the
    group and topic once, then one entry per message in each column, the bodies'
    fields too, so the wire and the log carry one record for the batch rather than
    two per message (a SendHalf and its Payload), which is what a replica decodes.
    Measured in one process, a 64-message batch with a Payload record a message
    cost the producer's encode, the leader's decode and Accept, and two
    followers' decodes 15.6 us a message, and 9.0 as columns with the three
    replicas' Payloads built in the apply (69 -> 44 bytes a message).
    Answered ("stored", offsets), each message's offset in order, in one answer
    (machine.py says why). `of` makes one from Payloads, `bodies` gives them back."""

    producer_group: str
    topic: str
    msg_ids: tuple[str, ...]
    keys: tuple[str, ...]
    payment_ids: tuple[str, ...]  # each message's Payload, a column per field
    buyers: tuple[str, ...]
    merchants: tuple[str, ...]
    amounts_cents: tuple[int, ...]
    born_ms: int  # 0 from the client; the leader stamps it
    traces: tuple[TraceContext | None, ...] = ()  # one per message, or none at all

    @classmethod
    def of(
        cls,
        producer_group: str,
        topic: str,
        msg_ids: tuple[str, ...],
        keys: tuple[str, ...],
        bodies: Sequence[Payload],
        born_ms: int,
        traces: tuple[TraceContext | None, ...] = (),
    ) -> SendHalves:
        """The command for these messages, their bodies given as Payloads."""
        return cls(
            producer_group, topic, msg_ids, keys,
            tuple(b.payment_id for b in bodies), tuple(b.buyer for b in bodies),
            tuple(b.merchant for b in bodies), tuple(b.amount_cents for b in bodies),
            born_ms, traces,
        )  # fmt: skip

    @property
    def bodies(self) -> tuple[Payload, ...]:
        """Each message's Payload (built on each access), in order."""
        return tuple(
            map(Payload, self.payment_ids, self.buyers, self.merchants, self.amounts_cents)
        )


@message(name="mq.EndTransaction")
class EndTransaction(Message):
    """The producer's verdict on a half message. Sent one-way: it may be lost."""

    producer_group: str
    msg_id: str
    commit: bool  # True: COMMIT_MESSAGE; False: ROLLBACK_MESSAGE
    from_check: bool  # an answer to a CheckTransaction
    timestamp_ms: int  # 0 from the client; the leader stamps it


@message(name="mq.EndTransactions")
class EndTransactions(Message):
    """A producer's own verdicts on several of its half messages, in one command
    (a batching producer's EndTransaction for each): on the wire and in the log,
    one string per message rather than one record. Answered in one answer when
    every verdict did what it asked, ("committed", offsets) or ("rolled-back",
    count); otherwise with each message's answer, as EndTransaction answers it."""

    producer_group: str
    msg_ids: tuple[str, ...]
    commit: bool
    timestamp_ms: int  # 0 from the client; the leader stamps it


@message(name="mq.SendMessage")
class SendMessage(Message):
    """A plain (non-transactional) message: visible at once."""

    topic: str
    msg_id: str
    key: str
    body: Payload
    born_ms: int
    trace: TraceContext | None = None  # the trace context, a message property


@message(name="mq.SendTimer")
class SendTimer(Message):
    """A timer message: stored now, visible in its topic at `deliver_at_ms`."""

    topic: str
    msg_id: str
    key: str
    body: Payload
    deliver_at_ms: int  # absolute, on the broker's (leader's) clock
    born_ms: int  # 0 from the client; the leader stamps it
    trace: TraceContext | None = None  # the trace context, a message property


@message(name="mq.TimerTick")
class TimerTick(Message):
    """The leader's clock tick for the timing wheel: deliver what is due by now."""

    timestamp_ms: int


@message(name="mq.CommitOffset")
class CommitOffset(Message):
    """A consumer group's committed offset in one queue: every message below it is done."""

    group: str
    topic: str
    queue_id: int
    offset: int
    # A *claim* (orderly consumers whose dedup table is on their own disk): the
    # member holding the queue's lock takes the messages [claim_from, offset) before
    # it applies them. Refused unless `consumer` holds the lock; the broker keeps the
    # member's last claim per queue, so a restarted member finishes what it claimed.
    consumer: str = ""
    claim_from: int = -1


@message(name="mq.ApplyEffect")
class ApplyEffect(Message):
    """Idempotent consumers' effects, each with its dedup record, in one command of
    the broker's log: an effect and its record are committed together or neither
    (RocketMQ's advice: the dedup record in the same transaction as the effect).
    Message `msg_ids[i]` adds `amounts[i]` to `accounts[i]`'s balance in the
    group's effect table ("": an effect with no state of its own, a notification:
    its record is the effect). Answered with one result per message: ("applied",
    balance) the first time (group, msg id) is seen, ("exists",) after, whoever
    holds the queue by then."""

    group: str
    msg_ids: tuple[str, ...]
    accounts: tuple[str, ...]
    amounts: tuple[int, ...]
    # Each message's commit-log offset (StoredMessage.offset), so the table knows
    # its queue and can drop its record once the queue is settled past it
    # (`BrokerMachine._trim_effects`). Empty: records kept for good.
    log_offsets: tuple[int, ...] = ()


@message(name="mq.LockQueues")
class LockQueues(Message):
    """Lock (or renew, or with `unlock` release) a consumer group's queues for one
    member: RocketMQ's LOCK_BATCH_MQ / UNLOCK_BATCH_MQ for orderly consumption. A
    lock lasts `BrokerConfig.rebalance_lock_max_live_ms` unless renewed. Answered
    with ("locked", queue ids this member now holds, those of them that came with
    a dead holder's open claim to apply first) or ("unlocked", released ids)."""

    group: str
    consumer: str
    topic: str
    queue_ids: tuple[int, ...]
    unlock: bool
    timestamp_ms: int  # 0 from the client; the leader stamps it


@message(name="mq.SendBack")
class SendBack(Message):
    """A consumer failed a message: retry it later (delay levels), or dead-letter it."""

    group: str
    log_offset: int  # the message's commit-log offset
    reconsume_times: int  # retries so far, this one not counted
    timestamp_ms: int


@message(name="mq.CheckPass")
class CheckPass(Message):
    """The leader's periodic scan of the half messages (a replicated decision:
    every replica counts the same checks and sets aside the same messages)."""

    timestamp_ms: int


@message(name="mq.CommandBatch")
class CommandBatch(Message):
    """Several commands in one proposal, applied in order, answered together (a
    tuple of their results). What a batching client sends: one log record, one
    round of Paxos and one answer for many messages. (RocketMQ batches plain
    messages; it does not batch transactional ones: see the book.)"""

    commands: tuple[
        SendHalf
        | SendHalves
        | EndTransaction
        | EndTransactions
        | SendMessage
        | SendTimer
        | CommitOffset,
        ...,
    ]
    # 0 from the client; the leader stamps the batch once, and every command in
    # it applies at this time (not each command copied to carry it: see broker.stamp).
    timestamp_ms: int = 0


@message(name="mq.TraceEntry")
class TraceEntry(Message):
    """One step of one message's life (reference/mq/trace.py), as the node that saw
    it recorded it: a record of the broker's trace topic."""

    msg_id: str
    step: str
    time_ms: float  # the node's clock
    node: str
    fields: tuple[tuple[str, TraceValue], ...]


@message(name="mq.SendTraces")
class SendTraces(Message):
    """A node's batch of trace entries for the trace topic (RMQ_SYS_TRACE_TOPIC)."""

    entries: tuple[TraceEntry, ...]


# -- queries (inside paxos.Read) and their answers -----------------------------


@message(name="mq.PullQuery")
class PullQuery(Message):
    group: str
    topic: str
    queue_id: int
    offset: int  # -1: from the group's committed offset
    max_messages: int
    now_ms: int  # 0 from the client; the leader stamps it (retry messages wait for it)
    # Long polling (RocketMQ's brokerSuspendMaxTimeMillis): nothing to read, the
    # leader holds the pull up to this long and answers when the queue grows. 0: at once.
    suspend_ms: int = 0


@message(name="mq.PullResult")
class PullResult(Message):
    messages: tuple[StoredMessage, ...]
    next_offset: int  # where the next pull of this queue starts
    max_offset: int  # the queue's length: max_offset - committed = the group's lag


@message(name="mq.PullQueries")
class PullQueries(Message):
    """Several queues' pulls in one read: a consumer that owns several queues long-polls
    them together (one request and one answer for all, not one each). Answered with a
    `PullResults`, one `PullResult` per query in order. Held (long polling) until any
    of the queues has something to read, for the longest `suspend_ms` among them.
    (RocketMQ pulls each queue on its own request; its POP consumption reads several.)"""

    queries: tuple[PullQuery, ...]


# A stored message's fields as `PullResults` carries them, a column each, in
# StoredMessage's order (its body's fields in Payload's order in its place).
_STORED_FIELDS = (
    "offset", "msg_id", "topic", "queue_id", "key", "body", "born_ms",
    "reconsume_times", "deliver_at_ms", "producer_group", "trace",
)  # fmt: skip
_ROW = attrgetter(*_STORED_FIELDS)
_BODY_ROW = attrgetter("payment_id", "buyer", "merchant", "amount_cents")


@message(name="mq.PullResults")
class PullResults(Message):
    """The answer to `PullQueries`: one `PullResult` per query, in order (`results`).

    On the wire a column per field, not a record per message: the queries'
    `next_offset`s, `max_offset`s and message counts, then each field of every
    message found, queue after queue. Decoding then checks plain values in
    lists rather than two tagged records a message (a StoredMessage and its
    Payload, each an object hook and a builder): in `d11 bench mq` the
    consumer's decode of its pulls was the largest codec cost of the path.
    Measured in one process (at load 8-10), decoding a pull and building its
    messages went from 7.3 to 5.7 us a message, its encode from 2.1 to 1.9
    with the columns' making (`of`), and 157 bytes a message to 96.
    `results` builds the same `PullResult`s (equal messages) on each access."""

    next_offsets: tuple[int, ...]
    max_offsets: tuple[int, ...]
    counts: tuple[int, ...]  # messages found per query
    offsets: tuple[int, ...]
    msg_ids: tuple[str, ...]
    topics: tuple[str, ...]
    queue_ids: tuple[int, ...]
    keys: tuple[str, ...]
    payment_ids: tuple[str, ...]
    buyers: tuple[str, ...]
    merchants: tuple[str, ...]
    amounts_cents: tuple[int, ...]
    born_ms: tuple[int, ...]
    reconsume_times: tuple[int, ...]
    deliver_at_ms: tuple[int, ...]
    producer_groups: tuple[str, ...]
    traces: tuple[TraceContext | None, ...]

    @classmethod
    def of(cls, results: Sequence[PullResult]) -> PullResults:
        """The columns of `results` (every message's fields read in C: attrgetter, zip)."""
        found = [m for r in results for m in r.messages]
        rows = list(zip(*map(_ROW, found), strict=True)) or [()] * len(_STORED_FIELDS)
        offset, msg_id, topic, queue_id, key, body, born, again, due, group, trace = rows
        pay_id, buyer, merchant, amount = list(zip(*map(_BODY_ROW, body), strict=True)) or [()] * 4
        return cls(
            tuple(r.next_offset for r in results), tuple(r.max_offset for r in results),
            tuple(len(r.messages) for r in results), offset, msg_id, topic, queue_id, key,
            pay_id, buyer, merchant, amount, born, again, due, group, trace,
        )  # fmt: skip

    @property
    def results(self) -> tuple[PullResult, ...]:
        bodies = map(payload, self.payment_ids, self.buyers, self.merchants, self.amounts_cents)
        found = list(
            map(
                stored_message, self.offsets, self.msg_ids, self.topics, self.queue_ids,
                self.keys, bodies, self.born_ms, self.reconsume_times, self.deliver_at_ms,
                self.producer_groups, self.traces,
            )
        )  # fmt: skip
        out: list[PullResult] = []
        start = 0
        for count, next_offset, max_offset in zip(
            self.counts, self.next_offsets, self.max_offsets, strict=True
        ):
            out.append(PullResult(tuple(found[start : start + count]), next_offset, max_offset))
            start += count
        return tuple(out)


# -- the broker asks a producer --------------------------------------------------


@message(name="mq.CheckTransaction")
class CheckTransaction(Message):
    """ "Did the local transaction of this half message commit?" (broker -> producer)."""

    msg_id: str
    producer_group: str
    body: Payload
    check_times: int
    trace: TraceContext | None = None  # the half message's: the check-back is a hop of its trace


# -- consumer group membership (soft state on the leader, as RocketMQ's broker keeps it) --


@message(name="mq.ConsumerHeartbeat")
class ConsumerHeartbeat(Message):
    """ "I am alive and in this group" (consumer -> the broker's leader), one-way."""

    group: str
    consumer: str


@message(name="mq.ConsumerList")
class ConsumerList(Message):
    """The group's live members as the leader knows them (sorted): each member
    computes its own share of the queues from it (RocketMQ's client-side rebalance)."""

    group: str
    members: tuple[str, ...]
    # Half messages awaiting a verdict on the leader: events that may still come
    # (how a caller outside the broker can tell that the queues have drained).
    unresolved_halves: int = 0
