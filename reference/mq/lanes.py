"""The load-test lane through the broker (chapter 7's full-link test, on chapter 5's queues).

A message carries its trace context as a property (`trace` on `SendHalf`,
`SendMessage`, `SendTimer`, and on every `StoredMessage` copy the broker
makes of it: committed, retry, dead-letter, check-max, timer). Its tag
decides two things, in the clients (the MQ client and the ledger client are
the data layer here, as Takin's agent rewrites a topic and swaps a JDBC
connection in the application's own process):

- the *topic*: a tagged message goes to the shadow topic (`pt_payments`),
  which only shadow consumer groups (`pt_settlement`, ...) subscribe to;
- the *accounts* its effects touch: a tagged payment's transfer, and a
  tagged event's settlement or loyalty points, land on the shadow twins of
  the accounts the payload names (`pt_u17`, `pt_m3@pay`).

The payload itself always names the production accounts: a hop that loses
the tag writes production data, which is the leak the isolation checker
must catch (`reference.tracing.leaky`).
"""

from __future__ import annotations

from reference.mq.messages import Payload
from reference.tracing.context import TraceContext
from reference.tracing.shadow import shadow_account, shadow_name

__all__ = ["data_view", "lane_topic", "tagged"]


def tagged(trace: TraceContext | None) -> bool:
    return trace is not None and trace.load_test


# --8<-- [start:lanes]
def lane_topic(topic: str, trace: TraceContext | None) -> str:
    """The topic a message with this trace goes to: the shadow topic if tagged."""
    return shadow_name(topic) if tagged(trace) else topic


def data_view(body: Payload, trace: TraceContext | None) -> Payload:
    """The payload as the data layer sees it: a tagged one names shadow accounts."""
    if not tagged(trace):
        return body
    return Payload(
        body.payment_id, shadow_account(body.buyer), shadow_account(body.merchant),
        body.amount_cents,
    )  # fmt: skip


# --8<-- [end:lanes]
