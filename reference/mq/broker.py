"""The broker node: a Paxos replica whose state machine is the broker.

The broker's commit log is not a file of its own: it is the state
(`machine.BrokerMachine`) of a Multi-Paxos group (`reference.paxos`), the
same group that carries chapter 4's ledger. Every command a producer or a
consumer sends (store a half message, commit it, commit an offset, send a
failed message back) is a slot of the group's log, on disk on a majority of
cities before it is answered. So losing a city loses no committed message,
for the reason it loses no payment. Group commit comes with it: the leader
batches the commands that arrive together into one slot and one fsync.

What this node adds to a plain replica, when it leads:

- it stamps time into commands and pulls (`stamp`): the log is the only
  clock every replica agrees on, as for the ledger;
- every `transaction_check_interval_ms` it proposes a `CheckPass`; the
  group decides which half messages to check and which to set aside, and
  the leader then sends each `CheckTransaction` to a producer of the
  message's group, and reports each message set aside (trace `mq.check-max`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping
from typing import Any

from reference.codec import Message
from reference.mq.machine import BrokerConfig, BrokerMachine
from reference.mq.membership import ConsumerMembers
from reference.mq.messages import (
    CheckPass,
    CheckTransaction,
    CommandBatch,
    ConsumerHeartbeat,
    ConsumerList,
    EndTransaction,
    EndTransactions,
    LockQueues,
    PullQueries,
    PullQuery,
    SendBack,
    SendHalf,
    SendHalves,
    SendMessage,
    SendTimer,
    TimerTick,
)
from reference.mq.trace import FLUSH_MS, TRACE_TIMER, TraceBuffer
from reference.node import Context, NodeId
from reference.paxos.config import PaxosConfig
from reference.paxos.messages import Propose, ProposeResult, Read
from reference.paxos.replica import LEADER, Replica
from reference.tracing.context import emit_span

__all__ = ["BrokerReplica", "stamp"]

CHECK_TIMER = "mq.check"
WHEEL_TIMER = "mq.wheel"
HOLD_TIMER = "mq.hold"  # (HOLD_TIMER, request_id): a held pull's suspension is over
RELEASE = "release"  # request ids of the leader's own unlocks for dead members
TRACES = "traces"  # request ids of the leader's own trace entries
HELD_PULLS_MAX = 1_024  # pulls held at once; beyond it a pull is answered at once


def stamp(command: Any, now_ms: float) -> Any:
    """The command with the leader's clock in its time field (others unchanged).

    Each copy is built by its constructor, not `dataclasses.replace`, which walks
    the fields by name: a profile of the rehearsal's level put replace at a fifth
    of the broker's own time (a stamp per command and pull). A test checks that
    every other field is kept (tests/ch5/test_mq_broker.py)."""
    t = max(0, int(now_ms))
    c = command
    if isinstance(c, PullQuery):
        return PullQuery(c.group, c.topic, c.queue_id, c.offset, c.max_messages, t, c.suspend_ms)
    if isinstance(c, PullQueries):
        return PullQueries(tuple(stamp(q, t) for q in c.queries))
    if isinstance(c, SendHalf):
        return SendHalf(c.producer_group, c.topic, c.msg_id, c.key, c.body, t, c.trace)
    if isinstance(c, EndTransaction):
        return EndTransaction(c.producer_group, c.msg_id, c.commit, c.from_check, t)
    if isinstance(c, SendHalves):
        return SendHalves(
            c.producer_group, c.topic, c.msg_ids, c.keys, c.payment_ids, c.buyers, c.merchants,
            c.amounts_cents, t, c.traces,
        )  # fmt: skip
    if isinstance(c, CommandBatch):
        return CommandBatch(c.commands, t)  # one stamp for all (see machine.apply)
    if isinstance(c, SendMessage):
        return SendMessage(c.topic, c.msg_id, c.key, c.body, t, c.trace)
    if isinstance(c, SendTimer):
        return SendTimer(c.topic, c.msg_id, c.key, c.body, c.deliver_at_ms, t, c.trace)
    if isinstance(c, EndTransactions):
        return EndTransactions(c.producer_group, c.msg_ids, c.commit, t)
    if isinstance(c, SendBack):
        return SendBack(c.group, c.log_offset, c.reconsume_times, t)
    if isinstance(c, CheckPass):
        return CheckPass(t)
    if isinstance(c, TimerTick):
        return TimerTick(t)
    if isinstance(c, LockQueues):
        return LockQueues(c.group, c.consumer, c.topic, c.queue_ids, c.unlock, t)
    return command


def _pulls(query: object) -> tuple[PullQuery, ...]:
    """The queue pulls a read asks for (none: not a pull)."""
    if isinstance(query, PullQuery):
        return (query,)
    if isinstance(query, PullQueries):
        return query.queries
    return ()


class BrokerReplica(Replica):
    """One replica of the broker's Paxos group (see the module docstring)."""

    def __init__(
        self,
        node_id: NodeId,
        cfg: PaxosConfig,
        broker: BrokerConfig,
        producers: Mapping[str, tuple[NodeId, ...]],
        *,
        member_timeout_ms: float = 3_000.0,
        trace_topic: bool = False,
    ) -> None:
        super().__init__(node_id, cfg, lambda: BrokerMachine(broker))
        assert all(producers.values()), "every producer group needs a producer to check"
        self.broker = broker
        self.producers = dict(producers)  # producer group -> who may answer a check
        self.passes = 0
        self.ticks = 0
        # Consumer groups' live members: soft state of the leader (not replicated,
        # as in RocketMQ): a new leader learns them from the next heartbeats, and
        # waits for the lock holders of the replicated state (membership.py).
        self.members = ConsumerMembers(member_timeout_ms)
        self.member_timeout_ms = member_timeout_ms
        self.checks_sent = 0
        self.releases = 0
        self.traces = TraceBuffer(trace_topic)  # the leader's own steps (checked, set aside)
        # Long polling: pulls that found nothing, held until their queue grows or
        # their suspension ends (leader soft state: a client re-pulls on timeout).
        self.held_pulls: dict[tuple[NodeId, str], Read] = {}  # (client, request id) ->
        self.held_at_index = -1  # the commit index the held pulls last saw

    @property
    def machine(self) -> BrokerMachine:
        machine = self.state.machine
        assert isinstance(machine, BrokerMachine)
        return machine

    def on_start(self, ctx: Context) -> None:
        super().on_start(ctx)
        ctx.set_timer(float(self.broker.transaction_check_interval_ms), CHECK_TIMER)
        ctx.set_timer(float(self.broker.timer_precision_ms), WHEEL_TIMER)
        if self.traces.to_topic:
            ctx.set_timer(FLUSH_MS, TRACE_TIMER)

    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        if isinstance(msg, ConsumerHeartbeat):
            self._on_consumer_heartbeat(ctx, src, msg)
            return
        if isinstance(msg, ProposeResult) and src == self.node_id:
            self._on_check_pass(ctx, msg)
            return
        if self.role == LEADER:
            # Stamped once, here, by the leader; a follower answers "not-leader".
            if isinstance(msg, Propose):
                msg = Propose(msg.request_id, stamp(msg.command, ctx.now_ms()))
            elif isinstance(msg, Read):
                msg = Read(msg.request_id, stamp(msg.query, ctx.now_ms()))
                if self._hold(ctx, src, msg):
                    return
        super().on_message(ctx, src, msg)
        if self.held_pulls:
            self._wake_pulls(ctx)

    def _hold(self, ctx: Context, src: NodeId, read: Read) -> bool:
        """Hold a pull that would find nothing (long polling); False: answer it now."""
        queries = _pulls(read.query)
        suspend_ms = max((q.suspend_ms for q in queries), default=0)
        if suspend_ms <= 0:
            return False
        key = (src, read.request_id)
        if len(self.held_pulls) >= HELD_PULLS_MAX or key in self.held_pulls:
            return False
        machine = self.machine
        for q in queries:
            if machine.pull_would_find(q)[0]:
                return False  # something to read, or a retry not due yet: answer now
        self.held_pulls[key] = read
        self.held_at_index = self.commit_index
        ctx.set_timer(float(suspend_ms), (HOLD_TIMER, key))
        return True

    def _wake_pulls(self, ctx: Context) -> None:
        """Answer the held pulls whose queue grew (or all, once no longer leading).
        The answer goes through the replica's own read path: its lease check decides."""
        leading = self.role == LEADER
        if leading and self.commit_index == self.held_at_index:
            return  # nothing applied since: no queue grew
        self.held_at_index = self.commit_index
        for key, read in list(self.held_pulls.items()):
            queries = _pulls(read.query)
            assert queries, read
            if leading and not any(self.machine.pull_would_find(q)[1] for q in queries):
                continue
            self._answer_held(ctx, key)

    def _answer_held(self, ctx: Context, key: tuple[NodeId, str]) -> None:
        read = self.held_pulls.pop(key)
        ctx.cancel_timer((HOLD_TIMER, key))
        super().on_message(ctx, key[0], Read(read.request_id, stamp(read.query, ctx.now_ms())))

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        if isinstance(tag, tuple) and tag[0] == HOLD_TIMER:
            if tag[1] in self.held_pulls:
                self._answer_held(ctx, tag[1])  # suspended long enough: an empty answer
            return
        self._on_broker_timer(ctx, tag)
        if self.held_pulls:
            self._wake_pulls(ctx)  # a timer may end the leadership (and held pulls with it)

    def _on_broker_timer(self, ctx: Context, tag: Hashable) -> None:
        if tag == TRACE_TIMER:
            ctx.set_timer(FLUSH_MS, TRACE_TIMER)
            if self.role == LEADER:  # (a follower has no steps of its own to send)
                self.traces.flush(lambda batch, sent: self._propose_own(ctx, TRACES, batch))
            return
        if tag == WHEEL_TIMER:
            # The timing wheel's hand moves through the log: one tick a second
            # (timerPrecisionMs), proposed by the leader while timers wait.
            ctx.set_timer(float(self.broker.timer_precision_ms), WHEEL_TIMER)
            # Also while a retry waiting in the schedule topic is due: the tick moves
            # it to its group's retry topic.
            machine = self.machine
            due = machine.wheel.size or machine.retries_due(max(0, int(ctx.now_ms())))
            if self.role == LEADER and due:
                self.ticks += 1
                request_id = f"tick/{self.node_id}/{self.ballot[0]}/{self.ticks}"
                self.on_message(ctx, self.node_id, Propose(request_id, TimerTick(0)))
            return
        if tag != CHECK_TIMER:
            super().on_timer(ctx, tag)
            return
        ctx.set_timer(float(self.broker.transaction_check_interval_ms), CHECK_TIMER)
        if self.role == LEADER and self.machine.halves:
            self.passes += 1
            request_id = f"check/{self.node_id}/{self.ballot[0]}/{self.passes}"
            self.on_message(ctx, self.node_id, Propose(request_id, CheckPass(0)))

    def _on_consumer_heartbeat(self, ctx: Context, src: NodeId, msg: ConsumerHeartbeat) -> None:
        """Record a live member; answer with the group's live members (leader only)."""
        if self.role != LEADER:
            return  # the member's next heartbeat finds the leader
        holders = (who for (g, _, _), (who, _) in self.machine.locks.items() if g == msg.group)
        for member in self.members.heartbeat(
            self.ballot, msg.group, msg.consumer, ctx.now_ms(), holders
        ):
            self._release_locks(ctx, msg.group, member)
        halves = len(self.machine.halves)
        ctx.send(src, ConsumerList(msg.group, self.members.live(msg.group), halves))

    def _release_locks(self, ctx: Context, group: str, member: NodeId) -> None:
        """A member the group can tell is dead does not keep its queue locks for
        their whole life (60 s): the leader releases them, through the log. Where
        the member died in the middle of a claim, the queue's next holder adopts
        the claim: what the member applied of it is in the effect table (one
        command with its dedup record), so the next holder's second apply of
        those is answered "exists", and nothing waits for the member's return."""
        held: dict[str, list[int]] = {}
        for (g, topic, qid), (who, _until) in sorted(self.machine.locks.items()):
            if g == group and who == member:
                held.setdefault(topic, []).append(qid)
        for topic, qids in held.items():
            unlock = LockQueues(group, member, topic, tuple(qids), True, 0)
            self._propose_own(ctx, RELEASE, unlock)
            ctx.trace("mq.locks-released", group=group, member=member, topic=topic,
                      queues=list(qids))  # fmt: skip

    def _propose_own(self, ctx: Context, kind: str, command: Message) -> None:
        """Propose a command of the leader's own (its answer comes back to it)."""
        self.releases += 1
        request_id = f"{kind}/{self.node_id}/{self.ballot[0]}/{self.releases}"
        self.on_message(ctx, self.node_id, Propose(request_id, command))

    # --8<-- [start:check-back]
    def _on_check_pass(self, ctx: Context, result: ProposeResult) -> None:
        if result.request_id.startswith(("tick/", f"{RELEASE}/", f"{TRACES}/")):
            return  # the wheel's tick, locks released, trace entries stored: nothing to send
        if not result.ok or not isinstance(result.result, tuple):
            return  # not committed (leadership moved): the next pass decides again
        checks, discarded = result.result
        # A check pass is bounded; more checks than that is a storm (the bug zoo's
        # unbounded-checks): crash here rather than flood the producers.
        assert len(checks) <= self.broker.checks_per_pass_max, len(checks)
        for check in checks:
            assert isinstance(check, CheckTransaction)
            group = self.producers.get(check.producer_group, ())
            if not group:
                continue
            # Round robin over the group's producers: a dead one is skipped
            # by the next check of the same message.
            producer = group[(check.check_times - 1) % len(group)]
            self.checks_sent += 1
            ctx.count("mq.checks")
            n = check.check_times
            self.traces.step(ctx, check.msg_id, "checked", check=n, producer=producer)
            if check.trace is not None:  # the check is a hop of the half message's trace
                span = check.trace.child(f"{self.node_id}/{check.msg_id}/{check.check_times}")
                emit_span(ctx, span, "mq.check", payment=check.msg_id)
                check = dataclasses.replace(check, trace=span)
            ctx.send(producer, check)
        if checks or discarded:
            ctx.trace("mq.check-pass", checks=len(checks), discarded=len(discarded))
        for msg_id in discarded:
            ctx.count("mq.check_max")
            ctx.trace("mq.check-max", msg_id=msg_id, checks=self.broker.transaction_check_max)
            self.traces.step(ctx, msg_id, "set-aside", checks=self.broker.transaction_check_max)

    # --8<-- [end:check-back]
