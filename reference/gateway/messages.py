"""Messages of the gateway layer that are not payment requests."""

from __future__ import annotations

from reference.codec import Message, message
from reference.gateway.router import RoutingRules
from reference.payment.messages import PayRequest

__all__ = [
    "Forwarded",
    "GatewayRejected",
    "Ping",
    "Pong",
    "RangeReleased",
    "RulesUpdate",
    "RulesUpdateAck",
]


@message
class GatewayRejected(Message):
    """The gateway refused before doing anything: no effect anywhere."""

    req_id: str
    reason: str  # "overloaded" | "no-route" | "misrouted" | "handover"
    node: str


@message
class Forwarded(Message):
    """Gateway -> gateway: a payment for a user of another cell, and how far it came.

    `hops` counts the gateway-to-gateway forwards so far. Two gateways on
    different rule versions can each believe the other owns a user; without
    a count the request bounces between them for as long as the rules differ.
    """

    request: PayRequest
    hops: int


@message
class RulesUpdate(Message):
    """New cell routing rules, pushed to gateways and clients (chapter 3)."""

    rules: RoutingRules


@message
class RulesUpdateAck(Message):
    """Subscriber -> CZone: I route by `version` (or newer); stop re-sending."""

    version: int
    node: str


@message
class Ping(Message):
    """A health probe (the cell failover controller's heartbeat)."""

    seq: int


@message
class Pong(Message):
    seq: int
    node: str


@message
class RangeReleased(Message):
    """Old owner -> new owner's gateway: my payments of these buckets are all done.

    Sent once the gateway that lost `buckets` in rules `version` holds none of
    their payments in flight: from then on the new owner may serve them (the
    handover of a live cell's range; a dead cell's is taken without it)."""

    version: int
    buckets: tuple[int, ...]
    cell: str
    node: str
