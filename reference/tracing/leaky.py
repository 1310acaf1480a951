"""Planted leaks: a gateway, a ledger front, a producer or a consumer that loses the tag.

It keeps the trace id and makes a new span, as a real bug would (a thread
pool that copies the trace but not the baggage): the store then sees a
production request and writes production rows. `checks.isolation` must
catch it; a checker that does not is not trusted (tests/ch7).
"""

from __future__ import annotations

from dataclasses import replace

from reference.gateway.node import PaymentGateway
from reference.ledger.front import LedgerFront
from reference.mq.consumer import MessageConsumer
from reference.mq.messages import StoredMessage
from reference.mq.producer import TransactionalProducer
from reference.node import Context
from reference.payment.messages import PayRequest
from reference.tracing.context import PRODUCTION_VALUE, TraceContext

__all__ = [
    "TagDroppingConsumer",
    "TagDroppingFront",
    "TagDroppingGateway",
    "TagDroppingProducer",
]


def _untagged(t: TraceContext) -> TraceContext:
    return TraceContext(t.trace_id, t.span_id, t.parent_span_id, PRODUCTION_VALUE)


class TagDroppingGateway(PaymentGateway):
    """`PaymentGateway` whose propagation drops the baggage (the tag)."""

    def propagate(self, ctx: Context, trace: TraceContext) -> TraceContext:
        child = super().propagate(ctx, trace)
        return TraceContext(child.trace_id, child.span_id, child.parent_span_id, PRODUCTION_VALUE)


class TagDroppingFront(LedgerFront):
    """`LedgerFront` that loses the tag before the data layer: a tagged payment
    is proposed on the production accounts (chapter 4's ledger hop's leak)."""

    def shadow(self, req: PayRequest) -> PayRequest:
        if req.trace is None:
            return req
        t = req.trace
        return replace(req, trace=TraceContext(t.trace_id, t.span_id, t.parent_span_id,
                                               PRODUCTION_VALUE))  # fmt: skip


class TagDroppingProducer(TransactionalProducer):
    """`TransactionalProducer` that loses the tag before the broker (chapter 5's
    queue hop): a tagged payment's event goes to the production topic, where
    production consumer groups read it, and its transfer moves production money."""

    def propagate(self, ctx: Context, trace: TraceContext, payment_id: str) -> TraceContext:
        return _untagged(super().propagate(ctx, trace, payment_id))


class TagDroppingConsumer(MessageConsumer):
    """`MessageConsumer` whose handler loses the message's tag (a thread pool that
    copies the trace id, not the baggage): a shadow group's effects of a tagged
    message land on production accounts."""

    def message_trace(self, ctx: Context, m: StoredMessage) -> TraceContext:
        return _untagged(super().message_trace(ctx, m))
