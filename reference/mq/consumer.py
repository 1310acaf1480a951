"""Consumers of the payments topic: clustered, pulling, at least once.

A consumer group shares the topic's queues: each queue is read by one
member (`ConsumerConfig.queues`, assigned by the deployment). A member
pulls a queue from the broker's leader (a lease read of the broker's
state), handles its messages one at a time, in queue order (so in key
order: a key always maps to one queue), or, settling with a
`consume_window`, up to that many at once, and every
`offset_commit_interval_ms` commits, per queue, the lowest offset still
in flight (RocketMQ's rule: one slow message pins the group's offset, and a
crash redelivers from there). Delivery is therefore *at least once*: a
member that dies after handling a message and before committing past it
sees the message again after its restart. "Exactly once" is a property of
*effects*, and only of idempotent consumers:

- settlement moves the payment's amount from the merchant's escrow account
  to its settled account, as a ledger transfer whose id is derived from the
  message: the ledger applies an id once, so a redelivery changes nothing;
- loyalty points and notifications keep their effect and its dedup record
  together, written in one atomic step, where every member that may apply the
  message reads them: a member whose queues never move keeps both on its own
  disk (synced together); a member whose queues change hands (`orderly`)
  keeps both in the broker's effect table (`ApplyEffect`, one command of the
  broker's log), so the member that takes a queue over from a dead one is
  answered "exists" for what the dead one applied and never told.

With `idempotent=False` (the `no-dedup` variant) none of this is done: a
settlement transfer gets a fresh id per delivery, and the local effects
skip the dedup table. Every redelivery is then a second effect.

A failing handler (`fail_ratio`, the notification service's flaky SMS
gateway) sends the message back to the broker: retried after RocketMQ's
delay levels, then dead-lettered after `max_reconsume_times` tries.

History (checks.delivery): f="receive" {"id", "key", "group"} for every
delivery, f="apply" {"id", "group"} for a local effect applied (completed
{"result": "exists"} when the effect table says an earlier apply, perhaps of a
member that died before hearing its answer, made it), f="send-back"
{"id", "group", "due_ms"} for a message sent back to the retry topic (due
again then), f="settle" for a settlement transfer with the ledger's answer
(checks.settlement).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from reference.clients.node import Record
from reference.codec import Message
from reference.ledger import CreateTransfers, Transfer
from reference.mq.caller import CALL_TIMER, Group, GroupCaller
from reference.mq.lanes import data_view
from reference.mq.machine import DELAY_LEVELS_MS, RETRY_FIRST_LEVEL, dlq_topic, retry_topic
from reference.mq.messages import (
    ApplyEffect,
    CommitOffset,
    ConsumerHeartbeat,
    ConsumerList,
    LockQueues,
    PullQuery,
    PullResult,
    SendBack,
    StoredMessage,
)
from reference.mq.trace import FLUSH_MS, TRACE_TIMER, TraceBuffer, flush_to_broker
from reference.node import Context, Node, NodeId
from reference.paxos.messages import Propose, ProposeResult, Read, ReadResult
from reference.tracing.context import TraceContext, emit_span

__all__ = ["EFFECTS", "ConsumerConfig", "MessageConsumer"]

EFFECTS = ("settlement", "loyalty", "notification")
BROKER, LEDGER = "broker", "ledger"
PULL_TIMER, COMMIT_TIMER, HEARTBEAT_TIMER = "pull", "commit", "heartbeat"
LOCK_TIMER, RECOVER_TIMER, LOCK_RETRY_TIMER = "lock", "recover", "lock-retry"
LOCK_RETRY_MS = 250.0  # a lock not granted (or not answered) is asked again this soon
DEDUP = "dedup/"  # + msg id: the key was applied
POINTS = "points/"  # + buyer: loyalty points
INCARNATION = "incarnation"
CACHED_MAX = 1_000  # RocketMQ's pullThresholdForQueue: stop pulling beyond it
EFFECTS_PER_COMMAND = 32  # claimed messages whose effects one ApplyEffect carries


@dataclass(frozen=True)
class ConsumerConfig:
    group: str
    topic: str
    queues: tuple[int, ...]  # the topic's queues this member reads
    effect: str  # one of EFFECTS
    broker: tuple[NodeId, ...]
    record: Record
    idempotent: bool = True
    ledger: Group = ()  # settlement only: a group, or every cell's (`caller.Routed`)
    # settlement only: (message, delivery number) -> the ledger transfer
    settlement: Callable[[StoredMessage, int], Transfer] | None = None
    fail_ratio: float = 0.0  # share of handlings that fail (then sent back)
    poll_interval_ms: float = 100.0  # an empty pull waits this long before the next
    offset_commit_interval_ms: float = 5_000.0  # RocketMQ's persistConsumerOffsetInterval
    work_ms: float = 0.1
    retries: bool = True  # also read the group's retry topic
    topic_queues: int = 4  # the topic's queues, shared among the group's live members
    heartbeat_interval_ms: float = 1_000.0  # RocketMQ: 30 s heartbeats, 20 s rebalances
    # Take over the queues of members that die, give up queues when members join.
    # Only for effects idempotent *where they live* (the ledger): a dedup table on
    # this member's disk knows nothing of what another member applied.
    rebalance: bool = False
    # Orderly consumption (RocketMQ's MessageListenerOrderly): a member consumes a
    # queue only while it holds the queue's lock at the broker, and hands a queue
    # over by finishing the message in hand, committing its offset and only then
    # unlocking: the next owner starts where it stopped, so a group whose effects
    # are deduplicated on each member's own disk applies nothing twice across a
    # rebalance (a member that dies holding a lock is another story: see the book).
    orderly: bool = False
    lock_renew_interval_ms: float = 20_000.0  # RocketMQ renews every 20 s (60 s life)
    traced: bool = False  # chapter 7: a `span` trace event for every message handled
    trace_topic: bool = False  # send the message trace to the broker's trace topic
    trace_events: bool = True  # each trace step also a telemetry event (`TraceBuffer`)
    # Concurrent consumption (RocketMQ's MessageListenerConcurrently, its messages
    # run on a pool of 20 consume threads): up to this many messages of one queue
    # in hand at once, each its own ledger call, answered in any order; the
    # committed offset stays the lowest still in hand (at least once). 1: one at a
    # time, in queue order. Settlement only: a local effect is applied at once,
    # and an orderly group's point is one at a time.
    consume_window: int = 1

    def __post_init__(self) -> None:
        assert self.effect in EFFECTS and self.broker
        assert self.rebalance or not self.orderly, "orderly consumption locks rebalanced queues"
        assert not self.orderly or self.effect != "settlement", "orderly: local effects only"
        # A claim is applied again by whoever holds its queue next: safe only where
        # the effect table answers "exists" (idempotent members).
        assert not self.orderly or self.idempotent, "orderly: idempotent consumers only"
        assert self.effect != "settlement" or (self.ledger and self.settlement is not None)
        assert 0.0 <= self.fail_ratio < 1.0 and self.poll_interval_ms > 0
        assert 1 <= self.consume_window <= CACHED_MAX
        assert self.consume_window == 1 or self.effect == "settlement", "window: settlement only"


@dataclass
class _Queue:
    topic: str
    queue_id: int
    next_offset: int = -1  # where the next pull starts (-1: the group's committed offset)
    cached: deque[tuple[int, StoredMessage]] = field(default_factory=deque)  # (queue offset, msg)
    pulling: bool = False
    busy: bool = False  # the head is being handled
    committed: int = -1  # what we last committed (-1: nothing yet)
    max_offset: int = 0  # the queue's length at the last pull
    pulled_ms: float = -1e18  # when the last pull was answered
    pull_asked_ms: float = (
        -1e18
    )  # when that pull was sent (its answer reads the log as of then, or later)
    # Handled, not yet passed by a committed offset: (queue offset, msg id), for the
    # message trace's "acknowledged" step.
    handled: deque[tuple[int, str]] = field(default_factory=deque)
    locked: bool = True  # orderly: the broker's lock is ours (False: asked, not granted)
    releasing: bool = False  # orderly: given up, handing over (finish, commit, unlock)
    claimed_to: int = -1  # orderly: messages below this queue offset are claimed (ours)
    recovering: bool = False  # orderly: applying a claim taken over with the lock first
    confirmed_to: int = -1  # orderly: the claims below this offset are closed (applied)
    failing: set[int] = field(default_factory=set)  # drawn to fail, looking ahead of the head
    # The last pull stopped at a message not due yet: the broker holds it, and the
    # ones behind it, until then (none in a queue a consumer reads: retries wait
    # out their delay in the broker's schedule topic).
    not_due: bool = False
    # Concurrent settlement (`consume_window` > 1): the cached messages taken, a
    # prefix of `cached`: those in hand (queue offset -> its history slot), and
    # those answered behind a lower one still in hand (popped with it).
    in_hand: dict[int, int] = field(default_factory=dict)
    answered: set[int] = field(default_factory=set)

    @property
    def low_watermark(self) -> int:
        """The lowest offset still in flight (or the pull position when none is)."""
        return self.cached[0][0] if self.cached else self.next_offset


def _effect_answers(result: object, n: int) -> TypeGuard[tuple[tuple[object, ...], ...]]:
    """Is `result` the effect table's answer to `n` effects: ("applied", balance) or
    ("exists",) each? (A refusal, ("refused", why), is not, whatever `n` is.)"""
    return (
        isinstance(result, tuple)
        and len(result) == n
        and all(isinstance(a, tuple) and a[:1] in (("applied",), ("exists",)) for a in result)
    )


class MessageConsumer(Node):
    """See the module docstring."""

    def __init__(self, node_id: NodeId, config: ConsumerConfig) -> None:
        self.node_id = node_id
        self.config = config
        groups: dict[str, Group] = {BROKER: config.broker}
        if config.ledger:
            groups[LEDGER] = config.ledger
        self.caller = GroupCaller(groups)
        self.queues: dict[str, _Queue] = {}
        locked = not config.orderly  # orderly: a queue is read once its lock is granted
        for qid in config.queues:
            self.queues[f"{config.topic}/{qid}"] = _Queue(config.topic, qid, locked=locked)
        if config.retries and 0 in config.queues:
            # One retry queue per group; read by the member holding queue 0.
            retry = _Queue(retry_topic(config.group), 0, locked=locked)
            self.queues[f"{retry_topic(config.group)}/0"] = retry
        self.deliveries: dict[str, int] = {}  # msg id -> deliveries seen by this incarnation
        # Released queues not let go yet: orderly, being handed over; else, a
        # message still in hand.
        self.releasing: dict[str, _Queue] = {}
        self.started_ms = 0.0
        self.unresolved_halves = -1  # as the broker's leader last said (-1: not heard)
        self.heard_ms = -1e18
        # When the leader's answers began saying "no half message unresolved" (this
        # run of them; inf: the last said some). A check-back's COMMIT appends a
        # message to the queues as it resolves the half: only a pull sent after
        # this knows the queues' ends with every half resolved (`caught_up`).
        self.no_halves_since_ms = math.inf
        # Request ids name the incarnation: the broker answers a request id it has
        # applied from its dedup table, and a restarted member counts its calls from
        # 0 again, in the same order as its last life: "lock:loyalty-hz:1" asked
        # again was answered with the locks of the dead incarnation (another member
        # held them by then), and both applied the same messages.
        self.calls = 0
        self.incarnation = 0
        self.recovered = not config.orderly  # orderly: last claims finished after a start
        self.traces = TraceBuffer(config.trace_topic, config.trace_events)
        self.lock_retry = False  # a retry of unanswered lock requests is scheduled
        self.effect_commands = 0  # ApplyEffect commands made (their history processes)
        # Orderly members' queues change hands, claims and all: their local effects
        # keep the dedup record beside the effect where the next holder reads it,
        # the broker's effect table. (A member rebalancing without locks keeps its
        # own disk's table: the chapter's lesson of what that costs.)
        self.shared_effects = config.idempotent and config.orderly

    def _rid(self, kind: str) -> str:
        """The request id of this incarnation's current call (see `calls`)."""
        return f"{kind}:{self.node_id}#{self.incarnation}:{self.calls}"

    def caught_up(self, now_ms: float, fresh_ms: float, asked_after_ms: float = -math.inf) -> bool:
        """Every queue read to its end by a pull answered within `fresh_ms` and sent
        at `asked_after_ms` or later, nothing waiting to be handled (what a harness
        can observe of a group from outside).
        A queue read up to a message not due yet is read to its end: that message
        is in flight, as the delivery checker holds a retry due after the history's
        end (`retry-pending`). (Retries wait out their delay, RocketMQ's levels of
        10 s, 30 s, 1 min ..., in the broker's schedule topic, and reach the retry
        queue only when due: `machine._move_due_retries`.)"""
        return all(
            not q.cached
            and (q.next_offset >= q.max_offset or q.not_due)
            and now_ms - q.pulled_ms <= fresh_ms
            and q.pull_asked_ms >= asked_after_ms
            for q in self.queues.values()
        )

    # --8<-- [start:rebalance]
    def _allocate(self, members: tuple[str, ...]) -> set[int]:
        """My queues among the live members: RocketMQ's AllocateMessageQueueAveragelyByCircle."""
        if self.node_id not in members:
            return set()
        me = members.index(self.node_id)
        return {q for q in range(self.config.topic_queues) if q % len(members) == me}

    def _rebalance(self, ctx: Context, members: tuple[str, ...]) -> None:
        c = self.config
        mine = self._allocate(members)
        if not mine and self.node_id not in members:
            return  # the leader has not heard from us yet: keep what we read
        wanted = {f"{c.topic}/{q}": (c.topic, q) for q in mine}
        if c.retries and 0 in mine:
            wanted[f"{retry_topic(c.group)}/0"] = (retry_topic(c.group), 0)
        for name in [n for n in self.queues if n not in wanted]:
            q = self.queues.pop(name)  # released: commit where we are, then let go
            ctx.trace("mq.rebalance", group=c.group, released=name)
            if c.orderly and not q.locked:
                # Never granted: nothing of ours to finish or hand over. (Parked in
                # `releasing`, it waited there for ever, and kept the queue from
                # being taken again; a grant still on its way is handed straight
                # back: `_give_back`.)
                continue
            if c.orderly:
                q.releasing = True
                self.releasing[name] = q
                self._handle_next(ctx, name)  # the claimed messages first, then hand over
            else:
                self._commit(ctx, q)
                if q.busy or q.in_hand:
                    # A message still in hand (a settlement retrying its ledger
                    # call): parked until it is done, so that a rebalance giving the
                    # queue back does not handle the queue twice at once here (one
                    # process, two open operations: a malformed history).
                    self.releasing[name] = q
        for name, (topic, qid) in wanted.items():
            if name not in self.queues and name not in self.releasing:  # (handed over first)
                # From the group's committed offset; orderly: once the lock is ours.
                self.queues[name] = _Queue(topic, qid, locked=not c.orderly)
                ctx.trace("mq.rebalance", group=c.group, took=name, members=list(members))
                self._pull(ctx, name)
        if c.orderly:
            self._lock_queues(ctx, renew=False)

    # --8<-- [end:rebalance]

    # --8<-- [start:queue-locks]
    def _lock_queues(self, ctx: Context, *, renew: bool) -> None:
        """Ask the broker for the locks of our queues not locked yet (and, to renew
        them, of those we hold); start consuming a queue once its lock is granted."""
        by_topic: dict[str, list[int]] = {}
        for q in self.queues.values():
            if renew or not q.locked:
                by_topic.setdefault(q.topic, []).append(q.queue_id)
        for topic, qids in by_topic.items():
            self.calls += 1
            lock = LockQueues(self.config.group, self.node_id, topic, tuple(sorted(qids)), False, 0)

            def granted(ok: bool, result: object, lock: LockQueues = lock) -> None:
                if not ok or not isinstance(result, tuple) or result[:1] != ("locked",):
                    self._retry_locks(ctx)  # no leader yet (a booting broker): soon again
                    return
                # Queues whose last holder left a claim open (older brokers: none).
                adopted = result[2] if len(result) > 2 else ()
                self._give_back(ctx, lock, result[1])
                if set(lock.queue_ids) - set(result[1]):
                    # Held by another member, handing it over (or dead): ask again
                    # soon, not at the next renewal (20 s).
                    self._retry_locks(ctx)
                for name, q in list(self.queues.items()):
                    if q.topic != lock.topic or q.queue_id not in lock.queue_ids:
                        continue
                    if q.queue_id in result[1] and not q.locked:
                        q.locked = True
                        ctx.trace("mq.lock", group=self.config.group, queue=name)
                        if q.queue_id in adopted:
                            # Its last holder died mid-claim: that claim is ours now,
                            # and applied before anything else of the queue.
                            q.recovering = True
                            ctx.trace("mq.claim-adopted", group=self.config.group, queue=name)
                            self._recover(ctx, (q.topic, q.queue_id))
                        self._pull(ctx, name)
                    elif q.queue_id not in result[1] and q.locked:
                        # Our lock expired and another member holds it now: stop.
                        self.queues[name] = _Queue(q.topic, q.queue_id, locked=False)
                        ctx.trace("mq.lock-lost", group=self.config.group, queue=name)

            request = Propose(self._rid("lock"), lock)
            self.caller.call(ctx, BROKER, request, granted, attempts_max=3)

    def _give_back(self, ctx: Context, lock: LockQueues, granted: tuple[int, ...]) -> None:
        """Unlock at once the queues a lock answer grants that a rebalance gave away
        while the answer was on its way: otherwise the broker holds them for us, no
        one renews them, and their next owner waits out the lock's life (60 s). An
        open claim that came with one stays for that owner to adopt."""
        ours = {
            q.queue_id
            for q in [*self.queues.values(), *self.releasing.values()]
            if q.topic == lock.topic
        }
        stale = tuple(qid for qid in granted if qid not in ours)
        if stale:
            self.calls += 1
            unlock = LockQueues(self.config.group, self.node_id, lock.topic, stale, True, 0)
            request = Propose(self._rid("unlock"), unlock)
            self.caller.call(ctx, BROKER, request, lambda ok, r: None, attempts_max=10)
            ctx.trace("mq.lock-given-back", group=self.config.group, topic=lock.topic,
                      queues=list(stale))  # fmt: skip

    def _retry_locks(self, ctx: Context) -> None:
        if not self.lock_retry:
            self.lock_retry = True
            ctx.set_timer(LOCK_RETRY_MS, LOCK_RETRY_TIMER)

    def _hand_over(self, ctx: Context, name: str, q: _Queue) -> None:
        """A released queue, nothing in hand: commit where we stopped, then unlock."""
        c = self.config
        q.busy = True  # handing over: nothing more is handled here
        unlock = LockQueues(c.group, self.node_id, q.topic, (q.queue_id,), True, 0)

        def committed(ok: bool, result: object) -> None:
            if not ok:  # not known to be committed: keep the lock (it expires)
                self.releasing.pop(name, None)
                return
            self._acknowledge(ctx, q, low)
            self.calls += 1
            request = Propose(self._rid("unlock"), unlock)
            self.caller.call(ctx, BROKER, request, lambda ok, r: None, attempts_max=10)
            self.releasing.pop(name, None)

        low = q.low_watermark
        if low < 0:
            committed(True, None)  # never read: nothing to commit
            return
        self.calls += 1
        # A claim of nothing at `low`: the group's offset moves there, and our last
        # claim is closed (applied), which the broker wants before it unlocks.
        commit = CommitOffset(c.group, q.topic, q.queue_id, low, self.node_id, low)
        request = Propose(self._rid("offset"), commit)
        self.caller.call(ctx, BROKER, request, committed, attempts_max=10)

    # --8<-- [end:queue-locks]

    # --8<-- [start:claims]
    def _claim(self, ctx: Context, name: str, q: _Queue) -> None:
        """Orderly: claim the cached messages at the broker before applying them
        (the group's offset moves past them, fenced by our lock), so a member that
        takes the queue after we die starts after them, and applies none again."""
        c = self.config
        lo, hi = q.cached[0][0], q.cached[-1][0] + 1
        q.busy = True
        self.calls += 1
        claim = CommitOffset(c.group, q.topic, q.queue_id, hi, self.node_id, lo)

        def answered(ok: bool, result: object) -> None:
            q.busy = False
            if ok and isinstance(result, tuple) and result[:1] == ("ok",):
                q.claimed_to = hi
                q.confirmed_to = lo  # a new claim closes the last one (all applied)
                self._handle_next(ctx, name)
            elif ok:  # refused: the lock is not ours any more (released as dead, expired)
                ctx.trace("mq.lock-lost", group=c.group, queue=name)
                if self.queues.get(name) is q:
                    self.queues[name] = _Queue(q.topic, q.queue_id, locked=False)
                self.releasing.pop(name, None)
            else:  # no answer: ask again at the next poll
                ctx.set_timer(c.poll_interval_ms, (PULL_TIMER, name))

        request = Propose(self._rid("claim"), claim)
        self.caller.call(ctx, BROKER, request, answered, attempts_max=10)

    def _confirm(self, ctx: Context, q: _Queue, offset: int) -> None:
        """A claim of nothing at `offset`: the last claim is applied (one-way)."""
        c = self.config
        q.confirmed_to = offset
        self.calls += 1
        close = CommitOffset(c.group, q.topic, q.queue_id, offset, self.node_id, offset)
        self.caller.call(ctx, BROKER, Propose(self._rid("claim"), close), None)

    def _recover(self, ctx: Context, only: tuple[str, int] | None = None) -> None:
        """After a start (`only` None): apply our last claims again (we died between
        claiming and closing), before anything else. After a lock granted with the
        open claim of a member that died (`only`: that queue), the same for the
        claim we took over, before the queue's next message. Delivered again (at
        least once, as RocketMQ's next owner reads from the committed offset), but
        applied once: the effect table answers "exists" for what the dead member,
        or our last incarnation, applied of the claim before dying."""
        c = self.config
        self.calls += 1

        def claims(ok: bool, result: object) -> None:
            if not ok or not isinstance(result, tuple):
                ctx.set_timer(c.poll_interval_ms, (RECOVER_TIMER, only))  # asked again
                return
            pending = [
                (t, q, lo, hi)
                for t, q, lo, hi in result
                if hi > lo and (only is None or (t, q) == only)
            ]
            self._recover_next(ctx, pending, only)

        read = Read(self._rid("claims"), ("claims", c.group, self.node_id))
        self.caller.call(ctx, BROKER, read, claims, attempts_max=10)

    def _recover_next(
        self,
        ctx: Context,
        pending: list[tuple[str, int, int, int]],
        only: tuple[str, int] | None = None,
    ) -> None:
        if not pending:
            if only is None:
                self.recovered = True
            for name, q in [*self.queues.items(), *self.releasing.items()]:
                if only is not None and (q.topic, q.queue_id) == only:
                    q.recovering = False
                if only is None or not q.recovering:
                    self._handle_next(ctx, name)
            return
        topic, qid, lo, hi = pending[0]
        c = self.config
        self.calls += 1
        query = PullQuery(c.group, topic, qid, lo, hi - lo, 0)

        def pulled(ok: bool, result: object) -> None:
            if not ok or not isinstance(result, PullResult):
                ctx.set_timer(c.poll_interval_ms, (RECOVER_TIMER, only))  # start over
                return

            def finished() -> None:
                self._confirm(ctx, _Queue(topic, qid), hi)
                self._recover_next(ctx, pending[1:], only)

            start = result.next_offset - len(result.messages)
            claimed = deque(enumerate(result.messages, start))
            self._recover_apply(ctx, f"{topic}/{qid}", claimed, finished)

        self.caller.call(ctx, BROKER, Read(self._rid("pull"), query), pulled)

    def _recover_apply(
        self,
        ctx: Context,
        name: str,
        claimed: deque[tuple[int, StoredMessage]],
        finished: Callable[[], None],
    ) -> None:
        """Apply a claim's messages (queue offset, message) in order, a batch per
        command of the effect table, which answers "exists" for those applied
        before (by us, or by the member that died holding the claim: a dedup table
        on a member's own disk would know only its own)."""
        if not claimed:
            finished()
            return
        batch = [claimed.popleft() for _ in range(min(len(claimed), EFFECTS_PER_COMMAND))]
        handled = [(m, *self._delivered(ctx, name, offset, m)) for offset, m in batch]

        def then(n: int) -> None:
            for _, m in batch:  # the claim moved the group's offset past them already
                self.traces.step(ctx, m.msg_id, "acknowledged", group=self.config.group)
            self._recover_apply(ctx, name, claimed, finished)

        self._apply_shared(ctx, handled, then)

    # --8<-- [end:claims]

    def on_start(self, ctx: Context) -> None:
        # History process ids name the incarnation: an operation cut short by a
        # crash stays open (Jepsen's rule), and the restarted node is a new process.
        self.started_ms = ctx.now_ms()
        self.incarnation = int(ctx.disk.get(INCARNATION, 0)) + 1
        ctx.disk.put(INCARNATION, self.incarnation)
        ctx.disk.sync()
        for name in self.queues:
            self._pull(ctx, name)
        ctx.set_timer(self.config.offset_commit_interval_ms, COMMIT_TIMER)
        if self.config.rebalance:
            ctx.set_timer(0.0, HEARTBEAT_TIMER)
        if self.traces.to_topic:
            ctx.set_timer(FLUSH_MS, TRACE_TIMER)
        if self.config.orderly:
            ctx.set_timer(self.config.lock_renew_interval_ms, LOCK_TIMER)
            self._lock_queues(ctx, renew=False)
            self._recover(ctx)

    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        ctx.work(self.config.work_ms)
        if isinstance(msg, ProposeResult | ReadResult):
            self.caller.on_result(ctx, src, msg)
        elif isinstance(msg, ConsumerList):
            if msg.group == self.config.group:
                if msg.unresolved_halves != 0:
                    self.no_halves_since_ms = math.inf
                elif self.unresolved_halves != 0:
                    self.no_halves_since_ms = ctx.now_ms()
                self.unresolved_halves, self.heard_ms = msg.unresolved_halves, ctx.now_ms()
            # The first lists after a start may not know every member yet: wait two
            # heartbeats before acting on them, or a booting group churns.
            settled = ctx.now_ms() - self.started_ms >= 2 * self.config.heartbeat_interval_ms
            if msg.group == self.config.group and settled:
                self._rebalance(ctx, msg.members)
        else:
            super().on_message(ctx, src, msg)

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        if isinstance(tag, tuple) and tag[0] == CALL_TIMER:
            self.caller.on_timer(ctx, tag)
        elif isinstance(tag, tuple) and tag[0] == PULL_TIMER:
            if str(tag[1]) in self.queues:  # not released meanwhile
                self._pull(ctx, str(tag[1]))
        elif tag == HEARTBEAT_TIMER:
            ctx.set_timer(self.config.heartbeat_interval_ms, HEARTBEAT_TIMER)
            beat = ConsumerHeartbeat(self.config.group, self.node_id)
            ctx.send(self.caller.leader(BROKER), beat)
        elif isinstance(tag, tuple) and tag[0] == RECOVER_TIMER:
            only = tag[1]  # None: every claim of ours (a start); else that queue's
            self._recover(ctx, (str(only[0]), int(only[1])) if isinstance(only, tuple) else None)
        elif tag == TRACE_TIMER:
            ctx.set_timer(FLUSH_MS, TRACE_TIMER)
            flush_to_broker(ctx, self.caller, BROKER, self.traces)
        elif tag == LOCK_RETRY_TIMER:
            self.lock_retry = False
            self._lock_queues(ctx, renew=False)
        elif tag == LOCK_TIMER:
            ctx.set_timer(self.config.lock_renew_interval_ms, LOCK_TIMER)
            self._lock_queues(ctx, renew=True)
        elif tag == COMMIT_TIMER:
            ctx.set_timer(self.config.offset_commit_interval_ms, COMMIT_TIMER)
            self._commit_offsets(ctx)
        else:
            super().on_timer(ctx, tag)

    # -- pulling ---------------------------------------------------------------------
    def _pull(self, ctx: Context, name: str) -> None:
        q = self.queues[name]
        if q.pulling or not q.locked:
            return
        if len(q.cached) >= CACHED_MAX:  # backpressure: wait for the handler
            ctx.set_timer(self.config.poll_interval_ms, (PULL_TIMER, name))
            return
        q.pulling = True
        self.calls += 1
        query = PullQuery(self.config.group, q.topic, q.queue_id, q.next_offset, 32, 0)
        asked_ms = ctx.now_ms()

        def pulled(ok: bool, result: object) -> None:
            q.pulling = False
            if self.queues.get(name) is not q:
                return  # released while the pull was out
            if not ok or not isinstance(result, PullResult):
                ctx.set_timer(self.config.poll_interval_ms, (PULL_TIMER, name))
                return
            start = result.next_offset - len(result.messages)
            for i, m in enumerate(result.messages):
                q.cached.append((start + i, m))
            q.next_offset = result.next_offset
            q.max_offset, q.pulled_ms, q.pull_asked_ms = result.max_offset, ctx.now_ms(), asked_ms
            # Nothing read, yet the queue is longer: its head is not due (the broker's
            # pull stops only there, or at the batch's size).
            q.not_due = not result.messages and result.next_offset < result.max_offset
            if result.messages:
                self._pull(ctx, name)  # more may be waiting
            else:
                ctx.set_timer(self.config.poll_interval_ms, (PULL_TIMER, name))
            self._handle_next(ctx, name)

        read = Read(self._rid("pull"), query)
        self.caller.call(ctx, BROKER, read, pulled, attempts_max=3)

    # --8<-- [start:commit-offsets]
    def _commit_offsets(self, ctx: Context) -> None:
        """Commit, per queue, the lowest offset still in flight (at least once)."""
        for q in self.queues.values():
            self._commit(ctx, q)

    def _commit(self, ctx: Context, q: _Queue) -> None:
        low = q.low_watermark
        if low < 0 or low == q.committed:
            return
        q.committed = low
        self._acknowledge(ctx, q, low)
        self.calls += 1
        commit = CommitOffset(self.config.group, q.topic, q.queue_id, low)
        self.caller.call(ctx, BROKER, Propose(self._rid("offset"), commit), None)

    # --8<-- [end:commit-offsets]

    def _acknowledge(self, ctx: Context, q: _Queue, low: int) -> None:
        """The message trace's "acknowledged" step: the group's offset passed them."""
        while q.handled and q.handled[0][0] < low:
            self.traces.step(ctx, q.handled.popleft()[1], "acknowledged", group=self.config.group)

    # -- handling ----------------------------------------------------------------------
    def _handle_next(self, ctx: Context, name: str) -> None:
        q = self.queues.get(name) or self.releasing.get(name)
        if q is None or q.busy or not q.locked or not self.recovered or q.recovering:
            return
        if q.releasing and (not q.cached or q.cached[0][0] >= q.claimed_to):
            self._hand_over(ctx, name, q)  # every claimed message applied: hand it over
            return
        if not q.cached:
            return
        queue_offset, m = q.cached[0]
        c = self.config
        if c.orderly and queue_offset >= q.claimed_to:
            self._claim(ctx, name, q)
            return
        if c.consume_window > 1:
            self._settle_window(ctx, name, q)
            return
        q.busy = True
        fail = self._fails(ctx, q, queue_offset)
        if self.shared_effects and not fail:
            self._apply_run(ctx, name, q)
            return
        process, trace = self._delivered(ctx, name, queue_offset, m)
        done = functools.partial(self._done(ctx, name, q), 1)
        if fail:
            self._send_back(ctx, m, done, trace)
        elif c.effect == "settlement":
            self._settle(ctx, process, m, done, trace)
        else:
            self._apply_local(ctx, process, m, trace)
            done()

    # --8<-- [start:consume-window]
    def _settle_window(self, ctx: Context, name: str, q: _Queue) -> None:
        """Concurrent settlement: take the cached messages after those taken, in
        queue order, until `consume_window` are in hand, each settled on a history
        slot of its own (`<queue process>/<slot>`: a slot's settlements one after
        the other). A message drawn to fail stops the taking: it goes back to the
        broker when it is the head, nothing else in hand (RocketMQ sends a failed
        message back from its thread; here the retry topic's order stays simple)."""
        window = self.config.consume_window
        while len(q.in_hand) < window and self.queues.get(name) is q:
            taken = len(q.in_hand) + len(q.answered)
            if taken >= len(q.cached):
                return
            queue_offset, m = q.cached[taken]
            if taken and queue_offset in q.failing:
                return  # its draw failed: sent back when it is the head
            if self._fails(ctx, q, queue_offset):
                if taken:
                    q.failing.add(queue_offset)  # drawn now, kept for when it is the head
                    return
                q.busy = True
                _, trace = self._delivered(ctx, name, queue_offset, m)
                self._send_back(ctx, m, functools.partial(self._done(ctx, name, q), 1), trace)
                return
            slot = min(set(range(window)) - set(q.in_hand.values()))
            q.in_hand[queue_offset] = slot
            process, trace = self._delivered(ctx, name, queue_offset, m)
            answered = functools.partial(self._settled_in_window, ctx, name, q, queue_offset)
            self._settle(ctx, f"{process}/{slot}", m, answered, trace)

    def _settled_in_window(self, ctx: Context, name: str, q: _Queue, queue_offset: int) -> None:
        """A settlement of the window answered: the answered messages at the head
        leave the cache (the lowest offset in hand is the committed offset's
        bound: RocketMQ's ProcessQueue.removeMessage), and the slot takes the next."""
        del q.in_hand[queue_offset]
        q.answered.add(queue_offset)
        done = 0
        for offset, _ in q.cached:
            if offset not in q.answered:
                break
            q.answered.discard(offset)
            done += 1
        if done:
            self._done(ctx, name, q)(done)
        elif self.queues.get(name) is q:
            self._handle_next(ctx, name)

    # --8<-- [end:consume-window]

    def _fails(self, ctx: Context, q: _Queue, queue_offset: int) -> bool:
        """Does this handling of the message fail (`fail_ratio`)? Drawn once per
        handling: a draw made looking ahead of the head (`_apply_run`) is kept."""
        if queue_offset in q.failing:
            q.failing.discard(queue_offset)
            return True
        return bool(self.config.fail_ratio) and ctx.random.random() < self.config.fail_ratio

    def _delivered(
        self, ctx: Context, name: str, queue_offset: int, m: StoredMessage
    ) -> tuple[str, TraceContext | None]:
        """A delivery's bookkeeping (load, trace, history): its process and trace."""
        ctx.count("txns")  # a message handled (the report's load per node)
        process = f"{self.node_id}#{self.incarnation}/{name}"
        self.deliveries[m.msg_id] = self.deliveries.get(m.msg_id, 0) + 1
        trace = self.message_trace(ctx, m) if m.trace is not None else None
        self.traces.step(
            ctx, m.msg_id, "delivered", group=self.config.group, queue=name, offset=queue_offset,
            reconsume=m.reconsume_times,
        )  # fmt: skip
        self._record_receive(process, m, ctx.now_ms())
        return process, trace

    def _done(self, ctx: Context, name: str, q: _Queue) -> Callable[[int], None]:
        """What follows the handling of the queue's first `n` messages."""
        c = self.config

        def done(n: int) -> None:
            for _ in range(n):
                queue_offset, m = q.cached.popleft()
                q.handled.append((queue_offset, m.msg_id))
            q.busy = False
            if c.orderly:  # the claim moved the group's offset past it already
                self._acknowledge(ctx, q, q.claimed_to)
            if c.orderly and not q.cached and q.claimed_to > q.confirmed_to:
                self._confirm(ctx, q, q.claimed_to)  # the claim is applied: close it
            if self.queues.get(name) is q:  # not released meanwhile
                self._handle_next(ctx, name)
            elif q.releasing and self.releasing.get(name) is q:
                # orderly: the message in hand is done; the rest of the claim is
                # ours to apply, then the queue is handed over (`_handle_next`)
                self._handle_next(ctx, name)
            elif self.releasing.get(name) is q and not q.in_hand:
                # released while busy: its messages are done; let go (the committed
                # offset is where it was released, so its next holder, maybe us at
                # the next rebalance, may see those messages again: at least once)
                del self.releasing[name]

        return done

    def _apply_run(self, ctx: Context, name: str, q: _Queue) -> None:
        """Orderly: the head and the claimed messages after it, up to the first
        whose handling fails, applied by one command of the effect table."""
        run = [q.cached[0]]
        for queue_offset, m in itertools.islice(q.cached, 1, EFFECTS_PER_COMMAND):
            if queue_offset >= q.claimed_to:
                break
            if self._fails(ctx, q, queue_offset):
                q.failing.add(queue_offset)  # sent back when it is the head
                break
            run.append((queue_offset, m))
        handled = [(m, *self._delivered(ctx, name, off, m)) for off, m in run]
        self._apply_shared(ctx, handled, self._done(ctx, name, q))

    def message_trace(self, ctx: Context, m: StoredMessage) -> TraceContext:
        """The context this delivery's effects carry: the message's (its property),
        one hop on. Its tag sends the effects to shadow accounts (`data_view`)."""
        assert m.trace is not None
        return m.trace.child(f"{self.node_id}/{m.msg_id}/{self.deliveries[m.msg_id]}")

    def _span(
        self,
        ctx: Context,
        m: StoredMessage,
        trace: TraceContext | None,
        op: str,
        *,
        topic: str,
        writes: tuple[str, ...] = (),
        outcome: str = "",
    ) -> None:
        if self.config.traced:
            pid, group = m.body.payment_id, self.config.group
            emit_span(ctx, trace, op, payment=pid, writes=writes, outcome=outcome, topic=topic,
                      group=group)  # fmt: skip

    def _record_receive(self, process: str, m: StoredMessage, now_ms: float) -> None:
        value = {"id": m.msg_id, "key": m.key, "group": self.config.group}
        for kind in ("invoke", "ok"):
            self.config.record(
                {"type": kind, "process": process, "f": "receive", "value": value,
                 "time_ms": now_ms}
            )  # fmt: skip

    def _record_send_back(self, m: StoredMessage, now_ms: float) -> None:
        """A message sent back to the retry topic, and when it is due again (the
        broker's delay level for its tries): the delivery checker holds a message
        whose retry is due after the history's end in flight, not lost."""
        delay_ms = DELAY_LEVELS_MS[RETRY_FIRST_LEVEL - 1 + m.reconsume_times]
        value = {"id": m.msg_id, "group": self.config.group, "due_ms": now_ms + delay_ms}
        for kind in ("invoke", "ok"):
            self.config.record(
                {"type": kind, "process": f"{self.node_id}#{self.incarnation}/back",
                 "f": "send-back", "value": value, "time_ms": now_ms}
            )  # fmt: skip

    # --8<-- [start:idempotent-apply]
    def _apply_local(
        self, ctx: Context, process: str, m: StoredMessage, trace: TraceContext | None
    ) -> None:
        """A local effect and its dedup record, on this node's disk, synced together."""
        c = self.config
        data = data_view(m.body, trace)  # a tagged event earns shadow points
        writes = (data.buyer,) if c.effect == "loyalty" else ()
        # --8<-- [start:dedup]
        if c.idempotent and ctx.disk.get(DEDUP + m.msg_id) is not None:
            self.traces.step(ctx, m.msg_id, "consumed", group=c.group, duplicate=True)
            self._span(ctx, m, trace, "mq.consume", topic=m.topic, outcome="duplicate")
            return  # applied before (by this incarnation or an earlier one)
        if c.effect == "loyalty":
            key = POINTS + data.buyer
            ctx.disk.put(key, int(ctx.disk.get(key, 0)) + m.body.amount_cents // 100)
        if c.idempotent:
            ctx.disk.put(DEDUP + m.msg_id, ctx.now_ms())
        ctx.disk.sync()  # effect and dedup record durable at once, or neither
        # --8<-- [end:dedup]
        self.traces.step(ctx, m.msg_id, "consumed", group=c.group, duplicate=False)
        self._span(ctx, m, trace, "mq.consume", topic=m.topic, writes=writes, outcome="applied")
        value = {"id": m.msg_id, "group": c.group}
        for kind in ("invoke", "ok"):
            c.record(
                {
                    "type": kind,
                    "process": process,
                    "f": "apply",
                    "value": value,
                    "time_ms": ctx.now_ms(),
                }
            )

    def _apply_shared(
        self,
        ctx: Context,
        handled: list[tuple[StoredMessage, str, TraceContext | None]],
        done: Callable[[int], None],
    ) -> None:
        """Local effects whose queue may change hands: (message, history process,
        trace) each. Each effect and its dedup record are one entry of a command of
        the broker's log (`ApplyEffect`), so whichever member applies a message a
        second time is answered "exists". A member that dies after the command is
        committed and before its answer leaves its applies open in the history
        (indeterminate); the next holder's "exists" says they took effect."""
        c = self.config
        loyalty = c.effect == "loyalty"
        datas = [data_view(m.body, trace) for m, _, trace in handled]  # tagged: shadow points
        effect = ApplyEffect(
            c.group,
            tuple(m.msg_id for m, _, _ in handled),
            tuple(d.buyer if loyalty else "" for d in datas),
            tuple(m.body.amount_cents // 100 if loyalty else 0 for m, _, _ in handled),
            tuple(m.offset for m, _, _ in handled),
        )
        # One history process per entry and command: one operation open per process
        # at a time, though a queue's last command may still be retrying when the
        # queue's next one goes out (its lock lost and granted again meanwhile: on
        # processes under load, loyalty-hz#1/payments/0/0 had two applies open).
        self.effect_commands += 1
        processes = [
            f"{process}/{self.effect_commands}.{i}" for i, (_, process, _) in enumerate(handled)
        ]
        for (m, _, _), process in zip(handled, processes, strict=True):
            c.record(
                {"type": "invoke", "process": process, "f": "apply",
                 "value": {"id": m.msg_id, "group": c.group}, "time_ms": ctx.now_ms()}
            )  # fmt: skip

        def answered(ok: bool, result: object) -> None:
            if not ok or not _effect_answers(result, len(handled)):
                call()  # no answer (or refused): the same effects again, "exists" if in
                return
            for (m, _, trace), data, process, answer in zip(
                handled, datas, processes, result, strict=True
            ):
                duplicate = answer[:1] == ("exists",)
                self.traces.step(ctx, m.msg_id, "consumed", group=c.group, duplicate=duplicate)
                writes = (data.buyer,) if loyalty and not duplicate else ()
                outcome = "duplicate" if duplicate else "applied"
                self._span(ctx, m, trace, "mq.consume", topic=m.topic, writes=writes,
                           outcome=outcome)  # fmt: skip
                value = {"id": m.msg_id, "group": c.group}
                c.record(
                    {"type": "ok", "process": process, "f": "apply", "time_ms": ctx.now_ms(),
                     "value": {**value, "result": "exists"} if duplicate else value}
                )  # fmt: skip
            done(len(handled))

        def call() -> None:
            self.calls += 1
            request = Propose(self._rid("apply"), effect)
            self.caller.call(ctx, BROKER, request, answered, attempts_max=10)

        call()

    def _settle(
        self,
        ctx: Context,
        process: str,
        m: StoredMessage,
        done: Callable[[], None],
        trace: TraceContext | None = None,
    ) -> None:
        """Settlement: a ledger transfer whose id the message fixes (idempotent), or
        a fresh one per delivery (not). A tagged event settles shadow accounts."""
        c = self.config
        assert c.settlement is not None
        delivery = (
            0 if c.idempotent else self.deliveries[m.msg_id] + 1_000 * ctx.random.randrange(1 << 20)
        )
        data = data_view(m.body, trace)
        seen = m if data is m.body else dataclasses.replace(m, body=data)
        transfer = c.settlement(seen, delivery)
        value: dict[str, Any] = {
            "id": m.msg_id,
            "payment": m.body.payment_id,
            "merchant": data.merchant,
            "amount": m.body.amount_cents,
        }
        c.record(
            {
                "type": "invoke",
                "process": process,
                "f": "settle",
                "value": value,
                "time_ms": ctx.now_ms(),
            }
        )
        self.calls += 1
        # One request id per handling: a retry of this call is answered from the
        # group's dedup table (the same answer), while a *redelivery* reaches the
        # ledger, which answers "exists" for a transfer id it already holds.
        request_id = f"settle:{transfer.id}:{self.node_id}#{self.incarnation}:{self.calls}"

        def answered(ok: bool, result: object) -> None:
            code = result[0] if ok and isinstance(result, tuple) and len(result) == 1 else None
            if code is None:  # no answer: try again (same transfer id when idempotent)
                c.record(
                    {
                        "type": "info",
                        "process": process,
                        "f": "settle",
                        "value": value,
                        "time_ms": ctx.now_ms(),
                    }
                )
                self._settle_again(ctx, process, m, done, trace)
                return
            c.record(
                {
                    "type": "ok",
                    "process": process,
                    "f": "settle",
                    "value": {**value, "result": str(code)},
                    "time_ms": ctx.now_ms(),
                }
            )
            self.traces.step(ctx, m.msg_id, "consumed", group=c.group, result=str(code))
            # The escrow it debits (its settled twin is named after it).
            self._span(ctx, m, trace, "mq.consume", topic=m.topic, writes=(data.merchant,),
                       outcome=str(code))  # fmt: skip
            done()

        command = CreateTransfers((transfer,), 0)
        self.caller.call(ctx, LEDGER, Propose(request_id, command), answered, attempts_max=40)

    # --8<-- [end:idempotent-apply]

    def _settle_again(
        self,
        ctx: Context,
        process: str,
        m: StoredMessage,
        done: Callable[[], None],
        trace: TraceContext | None,
    ) -> None:
        """An unanswered settlement (40 attempts, about 6 s, without an answer):
        handled again, the queue waiting behind it. RocketMQ's orderly consumer
        does the same (it retries locally, Integer.MAX_VALUE times, rather than
        sending back): settlement must not skip a payment, and its transfer id
        makes every retry safe."""
        self._settle(ctx, process, m, done, trace)

    def _send_back(
        self,
        ctx: Context,
        m: StoredMessage,
        done: Callable[[], None],
        trace: TraceContext | None = None,
    ) -> None:
        self.calls += 1
        back = SendBack(self.config.group, m.offset, m.reconsume_times, 0)

        def answered(ok: bool, result: object) -> None:
            if ok:
                ctx.count("mq.sent_back")
                dead = isinstance(result, tuple) and result[:1] == ("dead-letter",)
                step = "dead-lettered" if dead else "retried"
                self.traces.step(
                    ctx, m.msg_id, step, group=self.config.group, tries=m.reconsume_times + 1
                )
                # The broker's copy in the retry (or dead-letter) topic keeps the
                # message's trace: the hop into it is a hop of the same trace.
                group = self.config.group
                topic = dlq_topic(group) if dead else retry_topic(group)
                self._span(ctx, m, trace, f"mq.{step}", topic=topic)
                if not dead:
                    self._record_send_back(m, ctx.now_ms())
                done()
            else:  # the broker did not take it back: handle it again here
                for name, q in itertools.chain(self.queues.items(), self.releasing.items()):
                    if q.cached and q.cached[0][1] is m:
                        q.busy = False
                        self._handle_next(ctx, name)
                        return

        request_id = self._rid("back")
        self.caller.call(ctx, BROKER, Propose(request_id, back), answered, attempts_max=10)
