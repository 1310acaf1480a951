"""The payment service as a transactional producer: no payment without its event.

A payment is a ledger transfer (chapter 4's Paxos ledger) and an event on
the broker's `payments` topic, which settlement, loyalty and notification
consumers read. Three ways to tie them (`ProducerConfig.mode`):

- "transactional" (RocketMQ's transactional message): store a *half*
  message (durable, invisible), run the local transaction (the transfer),
  then send COMMIT or ROLLBACK one-way. If that last word is lost, or the
  producer dies before saying it, the broker asks a producer of the group
  (`CheckTransaction`) and the producer answers from the ledger.
- "naive-after": transfer, then send a plain message fire-and-forget. A
  producer that dies between the two (or a message lost on the way) leaves
  a payment without its event: the merchant is never settled.
- "naive-before": send a plain message, then transfer. A transfer that is
  then declined has been announced anyway: the merchant is settled for a
  payment that never happened.

The check-back must not race the local transaction (RocketMQ issue 2694: a
check answered ROLLBACK while the transaction later committed). Looking the
transfer up is not enough: "not found" may mean "still on its way". So the
producer answers a check with a *fence*: a transfer with the payment's own
transfer id that cannot succeed (an amount no wallet holds). The ledger
applies an id once, so exactly one of the two wins: if the payment's
transfer is there, the fence reports `exists_with_different_amount` and
the answer is COMMIT; if not, the fence fails (`exceeds_credits`), the id
is burnt (a late payment transfer gets `id_already_failed`), and the
answer is ROLLBACK.

The ledger may be one group (chapter 5) or every cell's group (the
capstone: `caller.ledger_groups`): a payment's transfer and its fence then
go to the group of the payer's cell, wherever the producer runs.

History (for checks.delivery): f="send" (the half or plain message stored),
f="commit" (ok: the local transaction committed, so the message must be
delivered; fail: it did not), f="rollback", f="publish" (naive-after's
fire-and-forget). Answers to checks are recorded as commit/rollback with
{"by": "check"}.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass

from reference.clients.node import Record
from reference.codec import Message
from reference.ledger import CreateTransfers, Transfer
from reference.ledger.results import CreateTransferResult
from reference.mq.caller import CALL_TIMER, Group, GroupCaller
from reference.mq.lanes import data_view, lane_topic
from reference.mq.messages import CheckTransaction, EndTransaction, Payload, SendHalf, SendMessage
from reference.mq.trace import FLUSH_MS, TRACE_TIMER, TraceBuffer, flush_to_broker
from reference.node import Context, Node, NodeId
from reference.paxos.messages import Propose, ProposeResult, ReadResult
from reference.payment.messages import PayReply, PayRequest
from reference.tracing.context import TraceContext, emit_span

__all__ = ["MODES", "ProducerConfig", "TransactionalProducer"]

MODES = ("transactional", "naive-after", "naive-before")
BROKER, LEDGER = "broker", "ledger"
INCARNATION = "incarnation"
OUTCOMES_MAX = 50_000  # finished payments remembered, for a client's late retry
_R = CreateTransferResult
_PAID = frozenset({_R.OK, _R.EXISTS})


@dataclass(frozen=True)
class ProducerConfig:
    group: str  # the producer group (the broker checks back with any of its members)
    topic: str
    mode: str
    broker: tuple[NodeId, ...]  # the broker group's replicas
    # The ledger group's replicas, or every cell's group with the route to each
    # payment's (`caller.ledger_groups`: the capstone's one pipeline).
    ledger: Group
    transfer: Callable[[Payload], Transfer]  # the payment's ledger transfer
    fence: Callable[[Payload], Transfer]  # same id, cannot succeed (see the docstring)
    record: Record
    work_ms: float = 0.05  # busy time per message handled
    traced: bool = False  # chapter 7: a `span` trace event for every hop of a payment
    trace_topic: bool = False  # send the message trace to the broker's trace topic
    trace_events: bool = True  # each trace step also a telemetry event (`TraceBuffer`)
    # Which payers' transfers are *payouts*: a merchant paying money out of its
    # settled account (to a supplier, a cashback), a plain ledger transfer with no
    # event, for no payment is behind it to settle (`_pay_out`). None: no payouts.
    payout: Callable[[str], bool] | None = None

    def __post_init__(self) -> None:
        assert self.mode in MODES, self.mode
        assert self.broker and self.ledger


@dataclass
class _Payment:
    body: Payload
    waiters: list[tuple[NodeId, str]]
    outcome: str = ""  # paid | declined | failed
    reason: str = ""  # why not paid, told to a late retry too
    trace: TraceContext | None = None  # the request's, one hop on (see `propagate`)
    topic: str = ""  # its event's topic: the shadow topic for a tagged payment


class TransactionalProducer(Node):
    """See the module docstring."""

    def __init__(self, node_id: NodeId, config: ProducerConfig) -> None:
        self.node_id = node_id
        self.config = config
        self.caller = GroupCaller({BROKER: config.broker, LEDGER: config.ledger})
        self.payments: dict[str, _Payment] = {}
        self.ops = 0  # history process ids: one per operation
        self.incarnation = 0
        self.traces = TraceBuffer(config.trace_topic, config.trace_events)

    def on_start(self, ctx: Context) -> None:
        # A restarted producer is a new history process (its cut-short operations stay open).
        self.incarnation = int(ctx.disk.get(INCARNATION, 0)) + 1
        ctx.disk.put(INCARNATION, self.incarnation)
        ctx.disk.sync()
        if self.traces.to_topic:
            ctx.set_timer(FLUSH_MS, TRACE_TIMER)

    # -- history --------------------------------------------------------------------
    def _op(self, ctx: Context, f: str, value: dict[str, str]) -> Callable[..., None]:
        """Record the invoke of one operation; returns its completion recorder."""
        self.ops += 1
        process = f"{self.node_id}#{self.incarnation}/{self.ops}"
        self.config.record(
            {"type": "invoke", "process": process, "f": f, "value": value, "time_ms": ctx.now_ms()}
        )

        def complete(kind: str, result: dict[str, str] | None = None) -> None:
            out = dict(value) if result is None else {**value, **result}
            self.config.record(
                {"type": kind, "process": process, "f": f, "value": out, "time_ms": ctx.now_ms()}
            )

        return complete

    def _record_now(self, ctx: Context, f: str, value: dict[str, str]) -> None:
        self._op(ctx, f, value)("ok")

    # -- dispatch ---------------------------------------------------------------------
    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        ctx.work(self.config.work_ms)
        if isinstance(msg, PayRequest):
            self._on_pay(ctx, src, msg)
        elif isinstance(msg, CheckTransaction):
            self._on_check(ctx, src, msg)
        elif isinstance(msg, ProposeResult | ReadResult):
            self.caller.on_result(ctx, src, msg)  # a one-way request's answer is ignored
        else:
            super().on_message(ctx, src, msg)

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        if isinstance(tag, tuple) and tag[0] == CALL_TIMER:
            self.caller.on_timer(ctx, tag)
        elif tag == TRACE_TIMER:
            ctx.set_timer(FLUSH_MS, TRACE_TIMER)
            flush_to_broker(ctx, self.caller, BROKER, self.traces)
        else:
            super().on_timer(ctx, tag)

    def _on_pay(self, ctx: Context, src: NodeId, req: PayRequest) -> None:
        p = self.payments.get(req.payment_id)
        if p is not None:
            if p.outcome:
                reply = PayReply(req.req_id, req.payment_id, p.outcome, p.reason, self.node_id)
                ctx.send(src, reply)
            else:
                p.waiters.append((src, req.req_id))
            return
        if len(self.payments) >= OUTCOMES_MAX:
            done = [k for k, v in self.payments.items() if v.outcome][: OUTCOMES_MAX // 10]
            for k in done:
                del self.payments[k]
        body = Payload(req.payment_id, req.buyer, req.merchant, req.amount_cents)
        trace = self.propagate(ctx, req.trace, req.payment_id) if req.trace else None
        p = _Payment(body, [(src, req.req_id)], trace=trace)
        p.topic = lane_topic(self.config.topic, trace)
        self.payments[req.payment_id] = p
        mode = self.config.mode
        if self.config.payout is not None and self.config.payout(req.buyer):
            self._pay_out(ctx, p)
        elif mode == "transactional":
            self._send_half(ctx, p)
        elif mode == "naive-after":
            self._transfer(ctx, p, then=self._publish_after)
        else:
            self._send_plain_first(ctx, p)

    def _pay_out(self, ctx: Context, p: _Payment) -> None:
        """A payout: its ledger transfer alone, answered paid or declined (no answer:
        nothing said). No event, and nothing in the history here: the client that
        asked records the transfer, as for any payment."""
        command = CreateTransfers((self.config.transfer(p.body),), 0)

        def answered(ok: bool, result: object) -> None:
            code = result[0] if ok and isinstance(result, tuple) and len(result) == 1 else None
            if code in _PAID:
                self._reply(ctx, p, "paid")
            elif code is not None:
                self._reply(ctx, p, "declined", "insufficient-funds")

        self.caller.call(ctx, LEDGER, Propose(f"pay:{p.body.payment_id}", command), answered)

    def _reply(self, ctx: Context, p: _Payment, outcome: str, reason: str = "") -> None:
        p.outcome, p.reason = outcome, reason
        for client, req_id in p.waiters:
            ctx.send(client, PayReply(req_id, p.body.payment_id, outcome, reason, self.node_id))
        p.waiters = []

    def propagate(self, ctx: Context, trace: TraceContext, payment_id: str) -> TraceContext:
        """The context this payment's hops carry on: same trace, same tag, our span.
        It travels with the event as a message property (SendHalf.trace)."""
        return trace.child(f"{self.node_id}/{payment_id}")

    def _span(
        self,
        ctx: Context,
        p: _Payment,
        op: str,
        *,
        topic: str = "",
        writes: tuple[str, ...] = (),
        outcome: str = "",
    ) -> None:
        if self.config.traced:
            pid = p.body.payment_id
            emit_span(ctx, p.trace, op, payment=pid, writes=writes, outcome=outcome, topic=topic)

    def _sent_value(self, p: _Payment) -> dict[str, str]:
        """A send's history value; a tagged one names its (shadow) topic."""
        value = {"id": p.body.payment_id, "key": p.body.buyer}
        if p.topic != self.config.topic:
            value["topic"] = p.topic
        return value

    # --8<-- [start:transactional]
    def _send_half(self, ctx: Context, p: _Payment) -> None:
        pid, c = p.body.payment_id, self.config
        sent = self._op(ctx, "send", self._sent_value(p))
        half = SendHalf(c.group, p.topic, pid, p.body.buyer, p.body, 0, p.trace)
        self.traces.step(ctx, pid, "sent", half=True)
        self._span(ctx, p, "mq.send-half", topic=p.topic)

        def stored(ok: bool, result: object) -> None:
            if not ok:
                sent("info")  # maybe stored: the check-back will fence and roll it back
                self._give_up(ctx, p)
                return
            sent("ok")
            self.traces.step(ctx, pid, "stored", half=True)
            self._transfer(ctx, p, then=self._end_transaction)

        self.caller.call(ctx, BROKER, Propose(f"half:{pid}", half), stored)

    def _give_up(self, ctx: Context, p: _Payment) -> None:
        """No broker to hold the half message: the payment fails, but "failed" tells
        the user it never happens, and another producer may be paying it (a retry
        through another cell's gateway, the capstone's pipeline). So the ledger
        decides first, by the fence: burnt, it is failed for good; held, another
        attempt paid it; no answer, the user hears nothing (its lookup decides)."""
        pid = p.body.payment_id
        command = CreateTransfers((self.config.fence(data_view(p.body, p.trace)),), 0)

        def fenced(ok: bool, result: object) -> None:
            code = result[0] if ok and isinstance(result, tuple) and len(result) == 1 else None
            if code is None:
                return
            if str(code).startswith("exists"):
                self._reply(ctx, p, "paid")
            else:
                self._reply(ctx, p, "failed", "broker-unavailable")

        self.caller.call(ctx, LEDGER, Propose(f"give-up:{pid}", command), fenced)

    def _end_transaction(self, ctx: Context, p: _Payment, status: str) -> None:
        if status == "unknown":
            return  # say nothing: the broker will ask, and the fence will decide
        end = EndTransaction(self.config.group, p.body.payment_id, status == "paid", False, 0)
        step = "committed" if end.commit else "rolled-back"
        self.traces.step(ctx, end.msg_id, step, by="producer")
        # One-way, as RocketMQ's endTransaction: if it is lost, the broker checks back.
        self.caller.call(ctx, BROKER, Propose(f"end:{p.body.payment_id}", end), None)

    # --8<-- [end:transactional]

    def _transfer(self, ctx: Context, p: _Payment, then: Callable[..., None]) -> None:
        """The local transaction: the payment's transfer in the ledger."""
        pid = p.body.payment_id
        committed = self._op(ctx, "commit", {"id": pid})
        data = data_view(p.body, p.trace)  # a tagged payment moves shadow money
        command = CreateTransfers((self.config.transfer(data),), 0)

        def answered(ok: bool, result: object) -> None:
            code = result[0] if ok and isinstance(result, tuple) and len(result) == 1 else None
            if code in _PAID:
                committed("ok")
                status = "paid"
                ctx.count("txns")  # a payment served (the report's load per node)
            elif code is not None:  # declined: certainly not applied
                committed("fail", {"reason": str(code)})
                self._record_now(ctx, "rollback", {"id": pid})
                status = "declined"
            else:
                committed("info")  # no answer: it may still apply
                status = "unknown"
            self._span(ctx, p, "mq.local-transaction", writes=(data.buyer, data.merchant),
                       outcome=status)  # fmt: skip
            then(ctx, p, status)
            if status != "unknown":
                self._reply(ctx, p, status, "" if status == "paid" else "insufficient-funds")

        self.caller.call(ctx, LEDGER, Propose(f"pay:{pid}", command), answered)

    # --8<-- [start:naive]
    def _publish_after(self, ctx: Context, p: _Payment, status: str) -> None:
        if status != "paid":
            return
        pid = p.body.payment_id
        # Fire and forget: the producer believes the event is out.
        self._record_now(ctx, "publish", self._sent_value(p))
        self.traces.step(ctx, pid, "sent", half=False)
        self._span(ctx, p, "mq.send", topic=p.topic)
        msg = SendMessage(p.topic, pid, p.body.buyer, p.body, 0, p.trace)
        self.caller.call(ctx, BROKER, Propose(f"msg:{pid}", msg), None)

    def _send_plain_first(self, ctx: Context, p: _Payment) -> None:
        pid = p.body.payment_id
        sent = self._op(ctx, "send", self._sent_value(p))
        msg = SendMessage(p.topic, pid, p.body.buyer, p.body, 0, p.trace)
        self.traces.step(ctx, pid, "sent", half=False)
        self._span(ctx, p, "mq.send", topic=p.topic)

        def stored(ok: bool, result: object) -> None:
            if not ok:
                sent("info")
                self._reply(ctx, p, "failed", "broker-unavailable")
                return
            sent("ok")
            self.traces.step(
                ctx, pid, "stored", half=False
            )  # visible to consumers now, whatever the transfer does
            self._transfer(ctx, p, then=lambda *_: None)

        self.caller.call(ctx, BROKER, Propose(f"msg:{pid}", msg), stored)

    # --8<-- [end:naive]

    # --8<-- [start:check]
    def _on_check(self, ctx: Context, broker: NodeId, check: CheckTransaction) -> None:
        """Answer the broker from the ledger: the fence decides, once and for all.
        The answer goes back to the replica that asked (it led when it asked)."""
        pid = check.msg_id
        # The half message's trace came back with the check: the fence is a hop of it.
        trace = check.trace.child(f"{self.node_id}/{pid}/check") if check.trace else None
        command = CreateTransfers((self.config.fence(data_view(check.body, trace)),), 0)

        def fenced(ok: bool, result: object) -> None:
            code = result[0] if ok and isinstance(result, tuple) and len(result) == 1 else None
            if code is None:
                return  # no answer: the broker asks again at its next pass
            commit = str(code).startswith("exists")  # the payment's own transfer holds the id
            self._record_now(ctx, "commit" if commit else "rollback", {"id": pid, "by": "check"})
            step = "committed" if commit else "rolled-back"
            self.traces.step(ctx, pid, step, by="check", check=check.check_times)
            if self.config.traced:
                emit_span(ctx, trace, "mq.check-back", payment=pid, outcome=step)
            end = EndTransaction(check.producer_group, pid, commit, True, 0)
            request = Propose(f"check-end:{pid}:{check.check_times}", end)
            self.caller.call(ctx, BROKER, request, None, to=broker)

        self.caller.call(ctx, LEDGER, Propose(f"fence:{pid}:{check.check_times}", command), fenced)

    # --8<-- [end:check]
