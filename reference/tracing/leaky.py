"""Planted leaks: a gateway, or a ledger front, that loses the load-test tag.

It keeps the trace id and makes a new span, as a real bug would (a thread
pool that copies the trace but not the baggage): the store then sees a
production request and writes production rows. `checks.isolation` must
catch it; a checker that does not is not trusted (tests/ch7).
"""

from __future__ import annotations

from dataclasses import replace

from reference.gateway.node import PaymentGateway
from reference.ledger.front import LedgerFront
from reference.node import Context
from reference.payment.messages import PayRequest
from reference.tracing.context import PRODUCTION_VALUE, TraceContext

__all__ = ["TagDroppingFront", "TagDroppingGateway"]


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
