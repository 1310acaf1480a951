"""The sidecar: degrade controls wrapped around the calls of any node.

`Sidecar(inner, config)` is a node that holds another node (a gateway, a SQL
store) and stands between it and the world, the way a service-mesh sidecar
or Sentinel's filters stand around an application's calls. The inner node is
unchanged: it sees the same messages and timers, and a `Context` whose
`send` the sidecar watches.

Inbound (a request arriving): no work starts after the request's deadline
(`deadline=True`); the guard's rules decide whether it runs now, after a
queueing wait, or is refused with `GatewayRejected` (no effect anywhere).
The inner node's reply to that request is its exit: response time and outcome
feed the statistics, breakers and adaptive limits.

Outbound (the inner node calling a downstream): up to `attempts` tries with
a fixed per-try timeout (the naive layer), and, when a `RetryThrottle` is
configured, only while gRPC's retry budget allows.

After a payment succeeds: the best-effort calls (notify, loyalty,
recommend). `best_effort_sync=True` is the naive coupling: the reply waits
for them (up to their fixed timeout). Otherwise they run after the reply,
each behind its breaker and its degrade switch.

Everything the controls decide that a checker needs is recorded in the
history (`record`), as `info` events of the `nemesis` process (they are
observations, not client operations) named `degrade:...`: best-effort work
done or shed, switches flipped, breaker transitions, requests a server ran
after their deadline.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from reference.codec import Message
from reference.degrade.breaker import Breaker, BreakerRule
from reference.degrade.cluster import ClusterRule, TokenReply, TokenRequest
from reference.degrade.flow import FlowRule, FlowRules
from reference.degrade.guard import Blocked, Entry, Guard, GuardConfig
from reference.degrade.leases import GIVE_AT, LeaseBook, LeaseRule
from reference.degrade.messages import ControlAck, ControlUpdate, EffortReply, EffortRequest
from reference.degrade.retry import RetryThrottle
from reference.degrade.switches import DegradePlan, SwitchBoard
from reference.degrade.window import Statistics
from reference.gateway.messages import GatewayRejected
from reference.mq.caller import CALL_TIMER, GroupCaller
from reference.node import Context, Node, NodeId
from reference.paxos.messages import Propose, ProposeResult
from reference.payment.messages import PayReply, PayRequest
from reference.sqlstore.messages import StoreRejected

__all__ = ["BestEffortCall", "Sidecar", "SidecarConfig"]

Record = Callable[[dict[str, Any]], None]
REJECT_MS = 0.05  # busy time to refuse a request
SWEEP_MS = 250.0  # how often entries whose reply will never come are given up
GIVE_UP_AFTER_DEADLINE_MS = 1_000.0  # an entry this far past its deadline is abandoned
NO_DEADLINE_MS = 10_000.0
TRACKED_MAX = 50_000  # inbound entries, outbound calls, held replies: each bounded
_TAG = "sc"
_CONTROL_KEY = "degrade-control"  # the last control update applied, on disk before its ack
_LEASE_KEY = "degrade-leases"  # tokens given to the group, on disk before they are proposed
_TOKENS = "tokens"  # the token group, as the GroupCaller names it


@dataclass(frozen=True)
class BestEffortCall:
    path: str  # "notify" | "loyalty" | "recommend"
    target: NodeId
    timeout_ms: float = 1_500.0


@dataclass(frozen=True)
class SidecarConfig:
    resource: str = "pay"
    guard: GuardConfig | None = None  # inbound rules (None: none)
    deadline: bool = False  # refuse work whose deadline has passed
    serves: bool = False  # this node does the work (a store): record late service
    attempts: int = 1  # outbound tries per call (1: no retry here)
    attempt_timeout_ms: float = 400.0
    throttle_tokens: float = 0.0  # > 0: a gRPC retry budget with this many tokens
    throttle_ratio: float = 0.1
    best_effort: tuple[BestEffortCall, ...] = ()
    best_effort_sync: bool = True
    best_effort_breaker: BreakerRule | None = None  # a template: one breaker per path
    plan: DegradePlan | None = None
    capacity_qps: float = 0.0  # what the critical path may take: pressure's denominator
    cluster: ClusterRule | None = None  # a global limit counted by a token server
    leases: LeaseRule | None = None  # a global limit split in shares, loans in a Paxos group
    record: Record | None = None
    # > 0 (real backends only): a timer this often, and once a second a `host-lag`
    # record of how late it ran: a node whose process waits for a core shows here.
    host_probe_ms: float = 0.0

    def __post_init__(self) -> None:
        assert 1 <= self.attempts <= 10 and self.attempt_timeout_ms > 0, self
        assert 0 <= self.host_probe_ms <= 1_000.0, self


@dataclass
class _In:
    src: NodeId
    entry: Entry | None
    msg: PayRequest
    since_ms: float = 0.0


@dataclass
class _Out:
    dst: NodeId
    msg: Message
    attempts: int
    deadline_ms: float


@dataclass
class _Held:
    dst: NodeId
    reply: Message
    req_id: str  # the inbound request it answers
    waiting: set[str] = field(default_factory=set)


class _SidecarContext:
    """The inner node's Context: the real one, with `send` watched."""

    def __init__(self, sidecar: Sidecar, ctx: Context) -> None:
        self._sc = sidecar
        self._ctx = ctx
        self.node_id = ctx.node_id
        self.random: random.Random = ctx.random
        self.disk = ctx.disk

    def now_ms(self) -> float:
        return self._ctx.now_ms()

    def send(self, dst: NodeId, msg: Message) -> None:
        self._sc._inner_send(self._ctx, dst, msg)

    def set_timer(self, delay_ms: float, tag: Hashable) -> None:
        self._ctx.set_timer(delay_ms, tag)

    def cancel_timer(self, tag: Hashable) -> None:
        self._ctx.cancel_timer(tag)

    def work(self, duration_ms: float) -> None:
        self._ctx.work(duration_ms)

    def count(self, name: str, n: int = 1) -> None:
        self._ctx.count(name, n)

    def observe(self, name: str, value: float) -> None:
        self._ctx.observe(name, value)

    def trace(self, kind: str, **fields: Any) -> None:
        self._ctx.trace(kind, **fields)


class Sidecar(Node):
    """See the module docstring."""

    def __init__(self, inner: Node, config: SidecarConfig) -> None:
        self.inner = inner
        self.config = config
        self.guard = Guard(config.guard) if config.guard is not None else None
        self.inbound: dict[str, _In] = {}
        self.waiting: dict[str, _In] = {}  # queued by the rate limiter
        self.outbound: dict[str, _Out] = {}
        self.held: dict[str, _Held] = {}  # replies waiting for best-effort calls (sync)
        self.effort: dict[str, tuple[str, float, str]] = {}  # be req_id -> (path, sent, held)
        self.throttle = (
            RetryThrottle(config.throttle_tokens, config.throttle_ratio)
            if config.throttle_tokens > 0
            else None
        )
        rule = config.best_effort_breaker
        self.breakers: dict[str, Breaker] = {}
        if rule is not None:
            for call in config.best_effort:
                self.breakers[call.path] = Breaker(
                    BreakerRule(**{**rule.__dict__, "resource": call.path})
                )
        self.board = SwitchBoard(config.plan) if config.plan is not None else None
        self.tokens: dict[str, _In] = {}  # waiting for the token server's answer
        self.fallback_stats = Statistics()
        self.fallback = FlowRules(self.fallback_stats)
        self.cluster_mode = "server"  # "server" | "fallback": recorded when it changes
        self.server_index = 0  # which of the rule's token servers this node asks
        self.unanswered = 0  # token requests in a row without an answer
        self.control_version = 0
        self.book = LeaseBook(config.leases) if config.leases is not None else None
        self.group: GroupCaller | None = None
        self.loan_asked = -1  # the epoch of the take in flight (-1: none)
        self.boots = 0  # this node's starts, on disk: part of every request id to the group
        if config.leases is not None:
            self.group = GroupCaller({_TOKENS: config.leases.group},
                                     attempt_timeout_ms=config.leases.call_timeout_ms)  # fmt: skip
            if self.guard is None:
                self.guard = Guard(GuardConfig())
        if config.cluster is not None:
            if self.guard is None:
                self.guard = Guard(GuardConfig())
            c = config.cluster
            self.fallback.load([FlowRule(c.resource, c.fallback_count, behavior="rate-limiter",
                                         max_queueing_time_ms=c.max_queueing_time_ms)])  # fmt: skip
        self._seq = 0
        self._proxy: _SidecarContext | None = None
        self._probe_due_ms = 0.0  # the host probe (config.host_probe_ms)
        self._lag_max_ms = 0.0
        self._lag_ticks = 0

    def _p(self, ctx: Context) -> _SidecarContext:
        if self._proxy is None or self._proxy._ctx is not ctx:
            self._proxy = _SidecarContext(self, ctx)
        return self._proxy

    def _record(self, now_ms: float, f: str, value: dict[str, Any]) -> None:
        if self.config.record is not None:
            self.config.record(
                {
                    "type": "info",
                    "process": "nemesis",
                    "f": f"degrade:{f}",
                    "value": value,
                    "time_ms": now_ms,
                }
            )

    # -- the node contract ---------------------------------------------------------
    def on_start(self, ctx: Context) -> None:
        self.inner.on_start(self._p(ctx))
        saved = ctx.disk.get(_CONTROL_KEY)
        if isinstance(saved, ControlUpdate):
            self._apply_control(ctx, saved)  # what was acknowledged survives a crash
        if self.book is not None:
            self._lease_start(ctx)
        if self._tracks:
            ctx.set_timer(SWEEP_MS, (_TAG, "sweep"))
        if self.config.host_probe_ms:
            self._probe_due_ms = ctx.now_ms() + self.config.host_probe_ms
            ctx.set_timer(self.config.host_probe_ms, (_TAG, "lag"))

    def _probe(self, ctx: Context) -> None:
        """How late the probe's timer ran; the worst of each second, recorded."""
        now_ms = ctx.now_ms()
        self._lag_max_ms = max(self._lag_max_ms, now_ms - self._probe_due_ms)
        self._lag_ticks += 1
        if self._lag_ticks * self.config.host_probe_ms >= 1_000.0:
            lag_ms = round(max(0.0, self._lag_max_ms), 1)
            self._record(now_ms, "host-lag", {"node": ctx.node_id, "lag_ms": lag_ms})
            self._lag_max_ms, self._lag_ticks = 0.0, 0
        self._probe_due_ms = now_ms + self.config.host_probe_ms
        ctx.set_timer(self.config.host_probe_ms, (_TAG, "lag"))

    @property
    def _tracks(self) -> bool:
        """Whether inbound requests are followed to their replies (rules or best effort)."""
        return self.guard is not None or bool(self.config.best_effort)

    def _sweep(self, ctx: Context) -> None:
        """Give up entries whose reply will never come (lost, or dropped by the inner node)."""
        now_ms = ctx.now_ms()
        for req_id, mine in list(self.inbound.items()):
            limit_ms = (
                mine.msg.deadline_ms + GIVE_UP_AFTER_DEADLINE_MS
                if mine.msg.deadline_ms
                else mine.since_ms + NO_DEADLINE_MS
            )
            if now_ms > limit_ms and req_id not in self.held:
                self._abandon(now_ms, req_id)
        ctx.set_timer(SWEEP_MS, (_TAG, "sweep"))

    def _abandon(self, now_ms: float, req_id: str) -> None:
        mine = self.inbound.pop(req_id)
        if mine.entry is not None and self.guard is not None:
            self.guard.abandon(now_ms, mine.entry)

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        if self.group is not None and isinstance(tag, tuple) and tag and tag[0] == CALL_TIMER \
                and tag[1] in self.group.calls:  # fmt: skip
            self.group.on_timer(ctx, tag)
            return
        if not (isinstance(tag, tuple) and tag and tag[0] == _TAG):
            self.inner.on_timer(self._p(ctx), tag)
            return
        kind = tag[1]
        if kind == "sweep":
            self._sweep(ctx)
        elif kind == "lag":
            self._probe(ctx)
        elif kind == "run":
            self._run_queued(ctx, tag[2])
        elif kind == "try":
            self._try_timeout(ctx, tag[2], tag[3])
        elif kind == "effort":
            self._effort_done(ctx, tag[2], "timeout")
        elif kind == "token":
            self._token_answer(ctx, tag[2], "timeout")
        elif kind == "lease":
            self._lease_tick(ctx)

    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        if isinstance(msg, PayRequest):
            self._inbound(ctx, src, msg)
        elif isinstance(msg, EffortReply):
            self._effort_done(ctx, msg.req_id, msg.status)
        elif isinstance(msg, ControlUpdate):
            self._on_control(ctx, src, msg)
        elif isinstance(msg, TokenReply):
            ctx.cancel_timer((_TAG, "token", msg.req_id))
            self._token_answer(ctx, msg.req_id, msg.status, msg.wait_ms)
        elif isinstance(msg, ProposeResult) and self.group is not None:
            # The token group's answer; a late one (the call was retried or given up:
            # two answers to one request) is dropped here, never handed to the inner node.
            self.group.on_result(ctx, src, msg)
        elif getattr(msg, "req_id", None) in self.outbound:
            self._outbound_reply(ctx, src, msg)
        else:
            self.inner.on_message(self._p(ctx), src, msg)

    # -- inbound ----------------------------------------------------------------------
    # --8<-- [start:sidecar-inbound]
    def _inbound(self, ctx: Context, src: NodeId, msg: PayRequest) -> None:
        now_ms = ctx.now_ms()
        ctx.count("requests")  # every try that reaches this node, retries included
        if msg.req_id in self.waiting:
            return  # the caller's retry of a request still queued here: it will answer
        late = bool(msg.deadline_ms) and now_ms >= msg.deadline_ms
        if late and self.config.deadline:
            self._refuse(ctx, src, msg, "deadline")  # no work starts after its deadline
            return
        self._pressure(ctx, now_ms)
        entry: Entry | None = None
        if self.guard is not None:
            got = self.guard.entry(
                now_ms, self.config.resource, caller=src, args={"merchant": msg.merchant}
            )
            if isinstance(got, Blocked):
                self._refuse(ctx, src, msg, got.reason)
                return
            entry = got
            if self.config.cluster is not None:
                self._ask_token(ctx, _In(src, got, msg, now_ms))
                return
            wait_ms = got.wait_ms
            if self.book is not None:
                lease_wait_ms = self._lease_admit(ctx, now_ms)
                if lease_wait_ms is None:
                    self.guard.abandon(now_ms, got)
                    self._refuse(ctx, src, msg, "cluster:pay")
                    return
                wait_ms = max(wait_ms, lease_wait_ms)
            if wait_ms > 0:
                starts_ms = now_ms + wait_ms
                if self.config.deadline and msg.deadline_ms and starts_ms >= msg.deadline_ms:
                    self.guard.abandon(now_ms, got)  # it would start after its deadline
                    self._refuse(ctx, src, msg, "deadline")
                    return
                if len(self.waiting) < TRACKED_MAX:
                    self.waiting[msg.req_id] = _In(src, got, msg)
                    ctx.set_timer(wait_ms, (_TAG, "run", msg.req_id))
                    return
        self._run(ctx, src, msg, entry, late)

    # --8<-- [end:sidecar-inbound]

    # --8<-- [start:sidecar-cluster]
    def _ask_token(self, ctx: Context, waiting: _In) -> None:
        rule = self.config.cluster
        assert rule is not None
        self._seq += 1
        token_id = f"{ctx.node_id}:tok:{self._seq}"
        self.tokens[token_id] = waiting
        ctx.send(rule.server_at(self.server_index), TokenRequest(token_id, rule.resource, 1))
        ctx.set_timer(rule.token_timeout_ms, (_TAG, "token", token_id))

    def _token_answer(self, ctx: Context, token_id: str, status: str, wait_ms: float = 0.0) -> None:
        waiting = self.tokens.pop(token_id, None)
        if waiting is None:
            return  # answered after its timeout: the fallback already decided
        rule = self.config.cluster
        assert rule is not None and self.guard is not None and waiting.entry is not None
        now_ms = ctx.now_ms()
        self._count_answer(now_ms, answered=status != "timeout")
        if status in ("ok", "blocked"):
            self._cluster_mode(now_ms, "server")
            passed = status == "ok"
        else:  # timeout, or the server protecting itself: this node's share, locally
            self._cluster_mode(now_ms, "fallback")
            decision = self.fallback.check(now_ms, rule.resource)
            passed, wait_ms = decision.passed, decision.wait_ms
        deadline_ms = waiting.msg.deadline_ms
        if passed and self.config.deadline and deadline_ms and now_ms + wait_ms >= deadline_ms:
            passed, why = False, "deadline"  # it would start after its deadline
        else:
            why = "cluster:pay"
        if not passed:
            self.guard.abandon(now_ms, waiting.entry)
            self._refuse(ctx, waiting.src, waiting.msg, why)
        elif wait_ms > 0 and len(self.waiting) < TRACKED_MAX:
            self.waiting[waiting.msg.req_id] = waiting
            ctx.set_timer(wait_ms, (_TAG, "run", waiting.msg.req_id))
        else:
            late = bool(deadline_ms) and now_ms >= deadline_ms
            self._run(ctx, waiting.src, waiting.msg, waiting.entry, late)

    def _count_answer(self, now_ms: float, *, answered: bool) -> None:
        """Move to the next token server after `failover_after` silences in a row."""
        rule = self.config.cluster
        assert rule is not None
        self.unanswered = 0 if answered else self.unanswered + 1
        if rule.standbys and self.unanswered >= rule.failover_after:
            self.unanswered = 0
            self.server_index += 1
            server = rule.server_at(self.server_index)
            self._record(now_ms, "cluster", {"mode": "failover", "server": server})

    def _cluster_mode(self, now_ms: float, mode: str) -> None:
        if mode != self.cluster_mode:
            self.cluster_mode = mode
            self._record(now_ms, "cluster", {"mode": mode})

    # --8<-- [end:sidecar-cluster]

    # --8<-- [start:sidecar-leases]
    def _lease_start(self, ctx: Context) -> None:
        """Gives survive a crash (they are on disk before they are proposed); after a
        restart the node sits out the epoch it restarted in: what it used is not known.

        Request ids carry the boot count: the group's dedup table would answer a
        new take with an old one's result if a restarted node reused an id."""
        book = self.book
        assert book is not None
        now_ms = ctx.now_ms()
        saved = ctx.disk.get(_LEASE_KEY)
        if saved is not None:
            self.boots, gave = saved
            book.gave = {int(e): float(n) for e, n in gave}
            book.start_epoch = book.epoch_of(now_ms) + 1
        self.boots += 1
        self._lease_save(ctx)
        self._lease_timer(ctx, now_ms)

    def _lease_save(self, ctx: Context) -> None:
        assert self.book is not None
        ctx.disk.put(_LEASE_KEY, (self.boots, tuple(self.book.gave.items())))
        ctx.disk.sync()

    def _lease_timer(self, ctx: Context, now_ms: float) -> None:
        assert self.book is not None
        epoch_ms = self.book.rule.epoch_ms
        at_ms = (self.book.epoch_of(now_ms) + GIVE_AT) * epoch_ms
        if at_ms <= now_ms:
            at_ms += epoch_ms
        ctx.set_timer(at_ms - now_ms, (_TAG, "lease"))

    def _lease_roll(self, ctx: Context, now_ms: float) -> None:
        assert self.book is not None
        done = self.book.roll(now_ms)
        if done is not None and done["offered"]:
            self._record(now_ms, "lease", {"node": ctx.node_id, **done})

    def _lease_admit(self, ctx: Context, now_ms: float) -> float | None:
        book = self.book
        assert book is not None
        self._lease_roll(ctx, now_ms)
        wait_ms = book.admit(now_ms)
        if wait_ms is None and book.wants_loan() and self.loan_asked != book.epoch:
            self.loan_asked = book.epoch
            self._lease_call(ctx, "take", book.epoch, book.loan_size())
        return wait_ms

    def _lease_tick(self, ctx: Context) -> None:
        """Give back what the next epoch will not need, judged by this one so far."""
        book = self.book
        assert book is not None
        now_ms = ctx.now_ms()
        self._lease_roll(ctx, now_ms)
        give = book.to_give(now_ms)
        if give is not None:
            self._lease_save(ctx)  # given from now on, whatever the group answers
            self._lease_call(ctx, "give", *give)
        self._lease_timer(ctx, now_ms)

    def _lease_call(self, ctx: Context, op: str, epoch: int, amount: float) -> None:
        book, group = self.book, self.group
        assert book is not None and group is not None
        self._seq += 1
        request = Propose(f"{ctx.node_id}:lease:{self.boots}:{self._seq}",
                          (op, book.rule.resource, epoch, amount))  # fmt: skip

        def done(ok: bool, result: object) -> None:
            now_ms = ctx.now_ms()
            self._cluster_mode(now_ms, "server" if ok else "fallback")
            if op == "take":
                if self.loan_asked == epoch:
                    self.loan_asked = -1 if ok else epoch  # a failed take is not retried
                got = float(result) if ok and isinstance(result, int | float) else 0.0
                if ok:
                    book.lent(epoch, got)

        group.call(ctx, _TOKENS, request, done, attempts_max=3 if op == "take" else 20)

    # --8<-- [end:sidecar-leases]

    def _run_queued(self, ctx: Context, req_id: str) -> None:
        w = self.waiting.pop(req_id, None)
        if w is not None:
            now_ms = ctx.now_ms()
            late = bool(w.msg.deadline_ms) and now_ms >= w.msg.deadline_ms
            if late and self.config.deadline:
                # Queued to start before its deadline, but the timer ran late (on a real
                # host whose cores were busy): the rule holds at the start, not the plan.
                if w.entry is not None and self.guard is not None:
                    self.guard.abandon(now_ms, w.entry)
                self._refuse(ctx, w.src, w.msg, "deadline")
                return
            self._run(ctx, w.src, w.msg, w.entry, late)

    def _run(
        self, ctx: Context, src: NodeId, msg: PayRequest, entry: Entry | None, late: bool
    ) -> None:
        now_ms = ctx.now_ms()
        if late and self.config.serves:
            self._record(now_ms, "served-late", {"req_id": msg.req_id})
        if msg.req_id in self.inbound:
            self._abandon(now_ms, msg.req_id)  # the caller's retry: one entry per request
        if self._tracks and len(self.inbound) < TRACKED_MAX:
            self.inbound[msg.req_id] = _In(src, entry, msg, now_ms)
        elif entry is not None and self.guard is not None:
            self.guard.abandon(now_ms, entry)  # untracked: its exit would never be seen
        self.inner.on_message(self._p(ctx), src, msg)

    def _refuse(self, ctx: Context, src: NodeId, msg: PayRequest, reason: str) -> None:
        ctx.work(REJECT_MS)
        ctx.count(f"refused_{reason.split(':')[0]}")
        ctx.send(src, GatewayRejected(msg.req_id, reason, ctx.node_id))

    def _pressure(self, ctx: Context, now_ms: float) -> None:
        """Feed the degrade switches: offered load on the critical path over capacity."""
        if self.board is None or self.guard is None or self.config.capacity_qps <= 0:
            return
        w = self.guard.stats.window(self.config.resource)
        offered = (w.passed(now_ms) + w.blocked(now_ms)) * 1000.0 / w.interval_ms
        for path, on in self.board.update(now_ms, offered / self.config.capacity_qps):
            self._record(now_ms, "switch", {"path": path, "on": on})

    # -- live changes from the control plane -----------------------------------------
    # --8<-- [start:sidecar-control]
    def _on_control(self, ctx: Context, src: NodeId, msg: ControlUpdate) -> None:
        if msg.version > self.control_version:
            ctx.disk.put(_CONTROL_KEY, msg)
            ctx.disk.sync()  # durable before the ack: an ack is a promise
            self._apply_control(ctx, msg)
            self._record(ctx.now_ms(), "applied", {"node": ctx.node_id, "version": msg.version})
        ctx.send(src, ControlAck(self.control_version, ctx.node_id))  # always: stop re-sending

    def _apply_control(self, ctx: Context, msg: ControlUpdate) -> None:
        self.control_version = msg.version
        resource = self.config.resource
        if msg.flow_qps >= 0:
            if self.guard is None:
                self.guard = Guard(GuardConfig())
            flow = self.guard.flow
            mine = [r for r in flow.rules if r.resource == resource]
            rules = [r for r in flow.rules if r.resource != resource]
            if mine:
                rules += [dataclasses.replace(r, count=msg.flow_qps) for r in mine]
            else:
                rules.append(FlowRule(resource, msg.flow_qps))
            flow.load(rules)
        if msg.forced and self.board is None:
            self.board = SwitchBoard(DegradePlan(()))
        for path, state in msg.forced:
            assert self.board is not None
            self.board.force(path, None if state == "plan" else state == "on")

    # --8<-- [end:sidecar-control]

    # -- what the inner node sends ----------------------------------------------------
    def _inner_send(self, ctx: Context, dst: NodeId, msg: Message) -> None:
        req_id = getattr(msg, "req_id", None)
        mine = self.inbound.get(req_id) if req_id is not None else None
        if mine is not None and dst == mine.src:
            self._reply(ctx, dst, msg, mine)
        elif isinstance(msg, PayRequest) and (self.config.attempts > 1 or self.throttle):
            ctx.count("tries_out")
            self._call(ctx, dst, msg)
        else:
            if isinstance(msg, PayRequest):
                ctx.count("tries_out")  # every try sent downstream, retries included
            ctx.send(dst, msg)

    def _reply(self, ctx: Context, dst: NodeId, msg: Message, mine: _In) -> None:
        req_id = mine.msg.req_id
        # Every "paid" answer, a retry's too: a naive service runs its after-pay steps
        # again on a retry (the dependencies are idempotent by payment id).
        paid = isinstance(msg, PayReply) and msg.status == "paid"
        if paid and self.config.best_effort:
            sent = self._best_effort(ctx, mine.msg)
            if self.config.best_effort_sync and sent:
                # The naive coupling: the payment's answer waits for best-effort work.
                self.held[req_id] = _Held(dst, msg, req_id, set(sent))
                for be in sent:
                    self.effort[be] = (self.effort[be][0], self.effort[be][1], req_id)
                return
        self._exit(ctx, req_id, msg)
        ctx.send(dst, msg)

    def _exit(self, ctx: Context, req_id: str, msg: Message) -> None:
        mine = self.inbound.pop(req_id, None)
        if mine is None or mine.entry is None or self.guard is None:
            return
        error = isinstance(msg, GatewayRejected | StoreRejected) or (
            isinstance(msg, PayReply) and msg.status == "failed"
        )
        self.guard.exit(ctx.now_ms(), mine.entry, error=error)

    # -- best effort ------------------------------------------------------------------
    # --8<-- [start:sidecar-best-effort]
    def _best_effort(self, ctx: Context, req: PayRequest) -> list[str]:
        """Start the best-effort calls for a payment; returns the ids of those sent."""
        now_ms = ctx.now_ms()
        sent: list[str] = []
        for call in self.config.best_effort:
            if self.board is not None and not self.board.is_on(call.path):
                self._record(now_ms, "best-effort", {"path": call.path, "outcome": "shed",
                                                     "why": "switch"})  # fmt: skip
                continue
            breaker = self.breakers.get(call.path)
            if breaker is not None and not breaker.try_pass(now_ms):
                self._record(now_ms, "best-effort", {"path": call.path, "outcome": "shed",
                                                     "why": "breaker"})  # fmt: skip
                continue
            if len(self.effort) >= TRACKED_MAX:
                continue
            self._seq += 1
            be = f"{ctx.node_id}:be:{self._seq}"
            self.effort[be] = (call.path, now_ms, "")
            ctx.send(call.target, EffortRequest(be, call.path, req.payment_id,
                                                now_ms + call.timeout_ms))  # fmt: skip
            ctx.set_timer(call.timeout_ms, (_TAG, "effort", be))
            sent.append(be)
        return sent

    # --8<-- [end:sidecar-best-effort]

    def _effort_done(self, ctx: Context, be: str, status: str) -> None:
        got = self.effort.pop(be, None)
        if got is None:
            return  # answered after its timeout: already judged
        path, sent_ms, held = got
        now_ms = ctx.now_ms()
        ctx.cancel_timer((_TAG, "effort", be))
        ok = status == "done"
        breaker = self.breakers.get(path)
        if breaker is not None:
            before = breaker.state
            breaker.on_complete(now_ms, now_ms - sent_ms, error=not ok)
            if breaker.state != before:
                self._record(now_ms, "breaker", {"path": path, "from": before,
                                                 "to": breaker.state})  # fmt: skip
        self._record(now_ms, "best-effort", {"path": path, "outcome": "done" if ok else "failed",
                                             "why": status})  # fmt: skip
        h = self.held.get(held) if held else None
        if h is not None:
            h.waiting.discard(be)
            if not h.waiting:
                del self.held[held]
                self._exit(ctx, h.req_id, h.reply)
                ctx.send(h.dst, h.reply)

    # -- outbound calls with retries ------------------------------------------------------
    def _call(self, ctx: Context, dst: NodeId, msg: PayRequest) -> None:
        if len(self.outbound) >= TRACKED_MAX:
            ctx.send(dst, msg)
            return
        self.outbound[msg.req_id] = _Out(dst, msg, 1, msg.deadline_ms)
        ctx.send(dst, msg)
        ctx.set_timer(self.config.attempt_timeout_ms, (_TAG, "try", msg.req_id, 1))

    def _retry(self, ctx: Context, out: _Out) -> bool:
        """Try again if this layer's attempts, the deadline and the budget allow."""
        now_ms = ctx.now_ms()
        if out.attempts >= self.config.attempts:
            return False
        if self.config.deadline and out.deadline_ms and now_ms >= out.deadline_ms:
            return False
        if self.throttle is not None and not self.throttle.allow_retry():
            return False
        out.attempts += 1
        ctx.count("retries")
        ctx.count("tries_out")
        ctx.send(out.dst, out.msg)
        ctx.set_timer(self.config.attempt_timeout_ms, (_TAG, "try", out.msg.req_id, out.attempts))  # type: ignore[attr-defined]
        return True

    def _try_timeout(self, ctx: Context, req_id: str, attempt: int) -> None:
        out = self.outbound.get(req_id)
        if out is None or out.attempts != attempt:
            return
        if self.throttle is not None:
            self.throttle.on_failure()
        if not self._retry(ctx, out):
            del self.outbound[req_id]  # give up here: the caller's own timeout answers

    def _outbound_reply(self, ctx: Context, src: NodeId, msg: Message) -> None:
        req_id: str = msg.req_id  # type: ignore[attr-defined]
        out = self.outbound[req_id]
        refused = isinstance(msg, GatewayRejected | StoreRejected)
        if self.throttle is not None:
            if refused:
                self.throttle.on_failure()
            else:
                self.throttle.on_success()
        ctx.cancel_timer((_TAG, "try", req_id, out.attempts))
        if refused and self._retry(ctx, out):
            return
        del self.outbound[req_id]
        self.inner.on_message(self._p(ctx), src, msg)
