"""The trace context a request carries: trace id, span id, parent, and the tag."""

from __future__ import annotations

from typing import Any

from reference.codec import Message, message
from reference.node import Context

__all__ = [
    "LOAD_TEST_TAG",
    "LOAD_TEST_VALUE",
    "PRODUCTION_VALUE",
    "SPAN_EVENT",
    "TraceContext",
    "emit_span",
    "new_trace",
]

# SOFATracer's names: the baggage key and its two values.
LOAD_TEST_TAG = "mark"
LOAD_TEST_VALUE = "T"  # load-test traffic
PRODUCTION_VALUE = "F"
SPAN_EVENT = "span"  # the telemetry trace kind a traced hop emits


# --8<-- [start:trace-context]
@message(name="tracing.TraceContext")
class TraceContext(Message):
    """What travels with a request from hop to hop (SOFA-TraceId, SOFA-RpcId, baggage).

    `trace_id` is one per payment (every retry and every hop shares it),
    `span_id` one per hop, `parent_span_id` the hop that sent this one.
    `mark` is the load-test tag: "T" load test, "F" production.
    """

    trace_id: str
    span_id: str
    parent_span_id: str
    mark: str

    @property
    def load_test(self) -> bool:
        return self.mark == LOAD_TEST_VALUE

    def child(self, span_id: str) -> TraceContext:
        """The context of the next hop: same trace, same tag, a new span."""
        return TraceContext(self.trace_id, span_id, self.span_id, self.mark)


# --8<-- [end:trace-context]


def new_trace(trace_id: str, span_id: str, *, load_test: bool) -> TraceContext:
    """The root context, made by whoever starts a payment (a client, a load generator)."""
    assert trace_id and span_id, "a trace needs ids"
    return TraceContext(trace_id, span_id, "", LOAD_TEST_VALUE if load_test else PRODUCTION_VALUE)


def emit_span(
    ctx: Context,
    trace: TraceContext | None,
    op: str,
    *,
    payment: str = "",
    writes: tuple[str, ...] = (),
    shadow_rows_read: int = 0,
    outcome: str = "",
    topic: str = "",
    group: str = "",
) -> None:
    """Record one hop of a request as a `span` trace event.

    An untraced request still gets a span (empty ids, mark ""), so a hop
    that lost its context shows up as exactly that: a checker must see the
    calls that carry no tag to tell whether one should have.

    A queue hop (chapter 5's broker) says which `topic` the message was in
    and which consumer `group` read it; those fields are only present on
    queue hops' spans.
    """
    fields: dict[str, Any] = {
        "trace_id": trace.trace_id if trace else "",
        "span_id": trace.span_id if trace else "",
        "parent": trace.parent_span_id if trace else "",
        "mark": trace.mark if trace else "",
        "op": op,
        "payment": payment,
        "writes": writes,
        "shadow_rows_read": shadow_rows_read,
        "outcome": outcome,
    }
    if topic:
        fields["topic"] = topic
    if group:
        fields["group"] = group
    ctx.trace(SPAN_EVENT, **fields)
