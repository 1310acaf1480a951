"""A client: issues payments with deadlines and bounded retries, records history.

Clients are the observers of a run. Every operation is recorded Jepsen-style
through the `record` callback handed over at construction: an `invoke` when
it starts, then `ok` (it took effect), `fail` (it certainly did not) or `info`
(the deadline passed without a definite answer: it may take effect later, or
never). The record callback is the only way out of the node, so nothing in
`reference/` depends on the checkers.

Open loop: payments arrive on the plan's schedule whatever the system does,
the way users arrive at midnight on November 11; a slow system does not slow
the arrivals, it grows its queue. Each operation runs on its own process id
(Jepsen's rule: one operation at a time per process); a process whose
operation ended in `info` is retired, as its operation may still be running.

Retries are explicit and bounded: at most `attempts_max` attempts, each with
its own timeout, all inside the operation's deadline, all with the same
payment id, so a retry can never pay twice.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from reference.clients.messages import LookupPayments, PaymentsFound
from reference.clients.plan import ClientPlan, Payment
from reference.codec import Message
from reference.gateway.messages import GatewayRejected, RulesUpdate, RulesUpdateAck
from reference.gateway.router import CellRouter
from reference.node import Context, Node, NodeId
from reference.payment.messages import (
    Balances,
    Payments,
    PayReply,
    PayRequest,
    ReadBalances,
    ReadPayments,
    RefundReply,
    RefundRequest,
)
from reference.sqlstore.messages import StoreRejected
from reference.tracing.context import new_trace

__all__ = ["ClientConfig", "PaymentClient", "Record"]

Record = Callable[[dict[str, Any]], None]
Respond = Callable[[dict[str, Any]], None]
Route = Callable[[str, str, random.Random, CellRouter | None], NodeId]
"""(buyer account, payment id, rng, the client's cell router) -> the node to ask."""

SENT_KEPT_MAX = 100_000  # attempts remembered for measuring late replies
RECONCILE_MAX = 5_000  # unknown payments asked about again in the final phase
INFLIGHT_MAX = 4_000  # outstanding operations per client; beyond it, arrivals are shed
FINAL_READ_ATTEMPTS = 20
LOOKUP_BATCH = 500  # payment ids per lookup operation
LOOKUP_ROUNDS_MAX = 5  # rounds of lookups for ids still unanswered, then the reads go ahead
# How a load-test payment is recorded: not "transfer", so production's checkers
# (bank, ledger) never count money that only moved between shadow accounts.
LOAD_TEST_TRANSFER = "load-test:transfer"
_TICK = "tick"
_TICK_MS = 20.0


@dataclass(frozen=True)
class ClientConfig:
    process_base: int  # process ids of this client: process_base, process_base + 1, ...
    record: Record  # the history callback
    route: Route  # where a payment goes
    read_target: NodeId  # where full reads go (a store, or a gateway that fans out)
    plan: ClientPlan
    deadline_ms: float = 1_000.0  # per operation, all attempts included
    attempt_timeout_ms: float = 400.0
    attempts_max: int = 3
    backoff_ms: float = 20.0  # before a retry after an explicit rejection
    respond: Respond | None = None  # every reply's latency, late ones included (metrics)
    rules: CellRouter | None = None  # chapter 3: routing rules, updated by RulesUpdate
    traced: bool = False  # chapter 7: every payment carries a trace context and its tag

    def __post_init__(self) -> None:
        assert 1 <= self.attempts_max <= 10, self.attempts_max
        assert 0 < self.attempt_timeout_ms <= self.deadline_ms


@dataclass
class _Op:
    seq: int
    process: int
    kind: str  # what is sent: pay | refund | read | read-payments | lookup
    # What is recorded: transfer (a refund is a transfer back) | read |
    # read-payments | lookup-transfer.
    f: str
    value: Any  # the invoke value
    payment: Payment | None
    payment_id: str
    invoke_ms: float
    deadline_ms: float
    attempts: int = 0
    timed_out: bool = False  # some attempt got no answer: the outcome may be unknown
    final: bool = False
    slot: int | None = None  # a closed loop's slot: start the slot's next payment when done
    attempt_timeout_ms: float = 0.0
    reconcile: bool = False  # a final-phase retry of a payment that ended unknown
    lookups: tuple[tuple[str, str], ...] = ()  # a lookup's (payment id, buyer) pairs


class PaymentClient(Node):
    """See the module docstring."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self.plan = config.plan
        self.ops: dict[int, _Op] = {}  # by seq
        self.by_req: dict[str, int] = {}  # req_id -> op seq
        self.free: list[int] = []  # idle process ids
        self.next_process = config.process_base
        self.seq = 0
        self.paid: list[tuple[str, Payment]] = []  # for refunds
        self.sent_ms: dict[str, float] = {}  # req_id -> when sent, for reply latencies
        self.next_read_ms = 0.0
        self.final_done: set[str] = set()  # final reads answered: "read", "read-payments"
        self.final_attempts = 0
        self.closed_started: set[int] = set()
        self.unknown: list[tuple[str, Any, Payment | None, str]] = []  # info payments
        self.reconciled = False
        # Payments with an unknown outcome and no later "ok": payment id -> buyer.
        self.unsettled: dict[str, str] = {}
        self.lookup_rounds = 0
        self.arrivals_armed = 0  # arrival timers set and not yet fired
        self.rules = config.rules

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer(0.0, _TICK)

    def begin_final_phase(self) -> None:
        """Forget the last final phase: a live session judged, ran traffic again, and
        judges again, so reconcile, look up and take the final reads afresh."""
        self.plan.reconciled = False
        self.reconciled = False
        self.final_done.clear()
        self.final_attempts = 0
        self.lookup_rounds = 0

    # -- the plan ------------------------------------------------------------------
    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        if tag == _TICK:
            self._tick(ctx)
            ctx.set_timer(_TICK_MS, _TICK)
        elif isinstance(tag, tuple) and tag[0] == "arrive":
            self.arrivals_armed -= 1
            self._pay(ctx, tag[1])
        elif isinstance(tag, tuple) and tag[0] == "attempt":
            self._attempt_timeout(ctx, tag[1], tag[2])
        elif isinstance(tag, tuple) and tag[0] == "retry":
            op = self.ops.get(tag[1])
            if op is not None:
                self._send(ctx, op)
        else:
            super().on_timer(ctx, tag)

    def _tick(self, ctx: Context) -> None:
        now_ms = ctx.now_ms()
        plan = self.plan
        horizon_ms = now_ms + _TICK_MS
        while plan.arrivals and plan.arrivals[0].time_ms < horizon_ms:
            p = plan.arrivals.popleft()
            self.seq += 1
            self.arrivals_armed += 1
            ctx.set_timer(max(0.0, p.time_ms - now_ms), ("arrive", p))
        for i, loop in enumerate(plan.closed):
            if i not in self.closed_started and loop.start_ms <= now_ms < loop.end_ms:
                self.closed_started.add(i)
                for slot in range(loop.concurrency):
                    self._pay(ctx, loop.make(ctx.random, now_ms, slot), slot=slot)
        if plan.read_interval_ms and now_ms < plan.traffic_until_ms and now_ms >= self.next_read_ms:
            self.next_read_ms = now_ms + plan.read_interval_ms
            self._read(ctx, "read", final=False)
        reconcile_due = plan.reconcile_at_ms is not None and now_ms >= plan.reconcile_at_ms
        if reconcile_due and not self.reconciled:
            self._reconcile(ctx)
        if self.reconciled and self._done_paying() and self._settled(ctx):
            plan.reconciled = True
        if plan.final_read_at_ms is not None and now_ms >= plan.final_read_at_ms:
            gate = plan.final_read_gate
            if gate is None or gate():
                self._final_reads(ctx)

    def _done_paying(self) -> bool:
        """No payment left to start or to hear back about.

        On the simulator every payment has its answer long before the final
        read is due; on a real backend the harness's own loop can stall (a
        Docker cut applied container by container) and arrivals fire late, in
        a burst. The final read must still follow every one of them, or the
        ledger checker cannot tell what the read should hold.
        """
        return (
            not self.plan.arrivals
            and self.arrivals_armed == 0
            and not any(op.f == "transfer" for op in self.ops.values())
        )

    # --8<-- [start:final-lookups]
    def _settled(self, ctx: Context) -> bool:
        """True once every payment that ended unknown has been looked up.

        Reconciliation asks again, but a retry can end unknown too, or be
        refused on its way (an overloaded or misrouted hop says nothing of
        the first attempt). A lookup by id asks the ledger itself, which
        answers "applied" or fences the id ("absent": it can never apply),
        and its answer goes into the history, before the final reads, so
        the checker resolves every such payment from the history alone.
        """
        if not self.plan.final_lookups:
            return True
        if any(op.kind == "lookup" for op in self.ops.values()):
            return False  # a round in flight
        if not self.unsettled or self.lookup_rounds >= LOOKUP_ROUNDS_MAX:
            return True  # past the last round the checker searches what is left
        self.lookup_rounds += 1
        pending = sorted(self.unsettled.items())
        for i in range(0, len(pending), LOOKUP_BATCH):
            batch = tuple(pending[i : i + LOOKUP_BATCH])
            op = self._begin(ctx, "lookup", [pid for pid, _ in batch], None, "")
            if op is not None:
                op.lookups = batch
                self._patient(op)
                self._send(ctx, op)
        return False

    # --8<-- [end:final-lookups]

    # -- starting operations ---------------------------------------------------------
    def _process(self) -> int:
        if self.free:
            return self.free.pop()
        self.next_process += 1
        return self.next_process - 1

    def _begin(
        self, ctx: Context, kind: str, value: Any, payment: Payment | None, payment_id: str
    ) -> _Op | None:
        now_ms = ctx.now_ms()
        if len(self.ops) >= INFLIGHT_MAX:
            ctx.count("client_shed")
            return None
        self.seq += 1
        f = {"pay": "transfer", "refund": "transfer", "lookup": "lookup-transfer"}.get(kind, kind)
        if payment is not None and payment.load_test:
            f = LOAD_TEST_TRANSFER
        op = _Op(
            self.seq, self._process(), kind, f, value, payment, payment_id, now_ms,
            now_ms + self.config.deadline_ms,
        )  # fmt: skip
        self.ops[op.seq] = op
        self.config.record(
            {"type": "invoke", "process": op.process, "f": f, "value": value, "time_ms": now_ms}
        )
        return op

    def _pay(self, ctx: Context, p: Payment, *, slot: int | None = None) -> None:
        refund = self._maybe_refund(ctx)
        if refund is not None:
            pid, paid = refund
            value = {
                "id": f"{pid}-refund", "from": paid.merchant, "to": paid.buyer,
                "amount_cents": paid.amount_cents,
            }  # fmt: skip
            op = self._begin(ctx, "refund", value, paid, pid)
        else:
            pid = f"{ctx.node_id}-{self.seq + 1}"
            value = {"id": pid, "from": p.buyer, "to": p.merchant, "amount_cents": p.amount_cents}
            op = self._begin(ctx, "pay", value, p, pid)
        if op is not None:
            op.slot = slot
            self._send(ctx, op)

    def _maybe_refund(self, ctx: Context) -> tuple[str, Payment] | None:
        if self.plan.refund_ratio and self.paid and ctx.random.random() < self.plan.refund_ratio:
            return self.paid.pop(ctx.random.randrange(len(self.paid)))
        return None

    # --8<-- [start:reconcile]
    def _reconcile(self, ctx: Context) -> None:
        """Ask again about every payment that ended without an answer.

        Same payment id, so asking cannot pay twice: the store answers the
        first outcome, or makes the payment now if it never arrived. Unknown
        outcomes become known, and the checkers have far fewer cases to try.
        """
        self.reconciled = True
        for kind, value, payment, pid in self.unknown[:RECONCILE_MAX]:
            op = self._begin(ctx, kind, value, payment, pid)
            if op is not None:
                op.reconcile = True
                self._patient(op)
                self._send(ctx, op)
        self.unknown.clear()

    # --8<-- [end:reconcile]

    def _read(self, ctx: Context, kind: str, *, final: bool) -> None:
        op = self._begin(ctx, kind, None, None, "")
        if op is not None:
            op.final = final
            if final:
                self._patient(op)
            self._send(ctx, op)

    def _patient(self, op: _Op) -> None:
        """Final-phase operations may queue behind a backlog: give them time."""
        op.deadline_ms = op.invoke_ms + self.plan.final_read_deadline_ms
        op.attempt_timeout_ms = self.plan.final_read_deadline_ms / self.config.attempts_max

    def _final_reads(self, ctx: Context) -> None:
        """The reads the checkers judge, retried until answered (boundedly)."""
        busy = any(op.final for op in self.ops.values())
        if busy or self.final_attempts >= FINAL_READ_ATTEMPTS:
            return
        wanted = ["read", "read-payments"] if self.plan.final_payments_read else ["read"]
        todo = [kind for kind in wanted if kind not in self.final_done]
        if todo:
            self.final_attempts += 1
        for kind in todo:
            self._read(ctx, kind, final=True)

    # -- attempts ----------------------------------------------------------------------
    # --8<-- [start:client-attempt]
    def _send(self, ctx: Context, op: _Op) -> None:
        now_ms = ctx.now_ms()
        timeout_ms = min(
            op.attempt_timeout_ms or self.config.attempt_timeout_ms, op.deadline_ms - now_ms
        )
        if timeout_ms <= 0 or op.attempts >= self.config.attempts_max:
            self._complete(ctx, op, "info" if op.timed_out else "fail", {"error": "deadline"})
            return
        op.attempts += 1
        req_id = f"{ctx.node_id}:{op.seq}:{op.attempts}"
        self.by_req[req_id] = op.seq
        self.sent_ms[req_id] = now_ms
        if len(self.sent_ms) > SENT_KEPT_MAX:
            del self.sent_ms[next(iter(self.sent_ms))]  # the oldest: never answered
        deadline_ms = now_ms + timeout_ms
        if op.kind in ("read", "read-payments"):
            msg: Message = (
                ReadBalances(req_id, None, deadline_ms)
                if op.kind == "read"
                else ReadPayments(req_id, deadline_ms)
            )
            dst = self.config.read_target
        elif op.kind == "lookup":
            msg = LookupPayments(req_id, op.lookups, deadline_ms)
            dst = self.config.read_target
        else:
            assert op.payment is not None
            p = op.payment
            if op.kind == "refund":
                msg = RefundRequest(req_id, op.payment_id, deadline_ms)
            else:
                trace = (
                    new_trace(op.payment_id, req_id, load_test=p.load_test)
                    if self.config.traced
                    else None
                )
                msg = PayRequest(
                    req_id, op.payment_id, p.buyer, p.merchant, p.amount_cents, deadline_ms, trace
                )
            dst = self.config.route(p.buyer, op.payment_id, ctx.random, self.rules)
        ctx.send(dst, msg)
        ctx.set_timer(timeout_ms, ("attempt", op.seq, op.attempts))

    def _attempt_timeout(self, ctx: Context, seq: int, attempt: int) -> None:
        op = self.ops.get(seq)
        if op is None or op.attempts != attempt:
            return
        # No answer: it may have happened. Try again with the same payment id.
        op.timed_out = True
        self._send(ctx, op)

    # --8<-- [end:client-attempt]

    # -- replies ---------------------------------------------------------------------------
    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        if isinstance(msg, RulesUpdate):
            version = msg.rules.version
            if self.rules is not None:
                self.rules.update(msg.rules)
                version = self.rules.rules.version
            # Acknowledge, or the CZone keeps re-sending (a lost push must not stick).
            ctx.send(src, RulesUpdateAck(version, ctx.node_id))
            return
        req_id = getattr(msg, "req_id", None)
        if req_id is None:
            super().on_message(ctx, src, msg)
            return
        now_ms = ctx.now_ms()
        node = getattr(msg, "node", src)
        sent_ms = self.sent_ms.pop(req_id, None)
        if self.config.respond is not None and sent_ms is not None:
            # Late replies too: how long the system took, whether or not we still waited.
            self.config.respond({"time_ms": now_ms, "latency_ms": now_ms - sent_ms, "node": node})
        seq = self.by_req.pop(req_id, None)
        op = self.ops.get(seq) if seq is not None else None
        if op is None:
            ctx.count("late_replies")
            return
        self._on_reply(ctx, op, msg, node, req_id)

    def _on_reply(self, ctx: Context, op: _Op, msg: Message, node: str, req_id: str) -> None:
        if isinstance(msg, StoreRejected | GatewayRejected):
            if req_id != f"{ctx.node_id}:{op.seq}:{op.attempts}":
                return  # an older attempt's refusal; the current one is still out
            # This attempt did nothing. Retry after a pause, while time remains.
            ctx.cancel_timer(("attempt", op.seq, op.attempts))
            if op.attempts < self.config.attempts_max:
                ctx.set_timer(self.config.backoff_ms, ("retry", op.seq))
            else:
                kind = "info" if op.timed_out else "fail"
                self._complete(ctx, op, kind, {"error": msg.reason, "node": node})
            return
        extra: dict[str, Any] = {"node": node}
        if isinstance(msg, PayReply):
            if msg.status == "paid":
                assert op.payment is not None
                if not op.payment.load_test:  # refunds are production's only
                    self.paid.append((op.payment_id, op.payment))
                self._complete(ctx, op, "ok", extra)
            else:  # declined, or failed (rolled back): certainly no effect
                extra["error"] = msg.status if msg.status == "declined" else msg.reason
                self._complete(ctx, op, "fail", extra)
        elif isinstance(msg, RefundReply):
            if msg.status == "refunded":
                self._complete(ctx, op, "ok", extra)
            else:
                self._complete(ctx, op, "fail", {**extra, "error": f"refund-{msg.status}"})
        elif isinstance(msg, Balances):
            self._complete(ctx, op, "ok", extra, value=dict(msg.balances))
        elif isinstance(msg, Payments):
            self._complete(ctx, op, "ok", extra, value=list(msg.applied))
        elif isinstance(msg, PaymentsFound) and op.kind == "lookup":
            found = dict(msg.outcomes)
            for pid in found:
                self.unsettled.pop(pid, None)  # answered for good
            self._complete(ctx, op, "ok", extra, value=found)
        else:
            super().on_message(ctx, node, msg)

    def _complete(
        self, ctx: Context, op: _Op, kind: str, extra: dict[str, Any], value: Any = None
    ) -> None:
        now_ms = ctx.now_ms()
        del self.ops[op.seq]
        ctx.cancel_timer(("attempt", op.seq, op.attempts))
        ctx.cancel_timer(("retry", op.seq))
        for attempt in range(1, op.attempts + 1):
            self.by_req.pop(f"{ctx.node_id}:{op.seq}:{attempt}", None)
        extra = {**extra, "latency_ms": now_ms - op.invoke_ms, "attempts": op.attempts}
        if op.final:
            extra["final"] = True
            if kind == "ok":
                self.final_done.add(op.kind)
        self.config.record(
            {
                "type": kind,
                "process": op.process,
                "f": op.f,
                "value": op.value if value is None else value,
                "time_ms": now_ms,
                "extra": extra,
            }
        )
        if kind != "info":
            self.free.append(op.process)  # an info process may still be running: retire it
        elif op.kind in ("pay", "refund") and not op.reconcile:
            self.unknown.append((op.kind, op.value, op.payment, op.payment_id))
        if op.kind == "pay" and kind == "info":
            assert op.payment is not None
            # A load-test payment is not looked up: its transfer is shadow data, and
            # a lookup is a production read (the capstone's isolation check fails it).
            if not op.payment.load_test:
                self.unsettled[op.payment_id] = op.payment.buyer
        elif op.kind == "pay" and kind == "ok":
            self.unsettled.pop(op.payment_id, None)
        if op.slot is not None:
            loop = next((c for c in self.plan.closed if c.start_ms <= now_ms < c.end_ms), None)
            if loop is not None:
                self._pay(ctx, loop.make(ctx.random, now_ms, op.slot), slot=op.slot)
