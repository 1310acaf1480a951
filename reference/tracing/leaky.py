"""A planted leak: a gateway that loses the load-test tag on its way to the store.

It keeps the trace id and makes a new span, as a real bug would (a thread
pool that copies the trace but not the baggage): the store then sees a
production request and writes production rows. `checks.isolation` must
catch it; a checker that does not is not trusted (tests/ch7).
"""

from __future__ import annotations

from reference.gateway.node import PaymentGateway
from reference.node import Context
from reference.tracing.context import PRODUCTION_VALUE, TraceContext

__all__ = ["TagDroppingGateway"]


class TagDroppingGateway(PaymentGateway):
    """`PaymentGateway` whose propagation drops the baggage (the tag)."""

    def propagate(self, ctx: Context, trace: TraceContext) -> TraceContext:
        child = super().propagate(ctx, trace)
        return TraceContext(child.trace_id, child.span_id, child.parent_span_id, PRODUCTION_VALUE)
