"""Messages of the gateway layer that are not payment requests."""

from __future__ import annotations

from reference.codec import message
from reference.gateway.router import RoutingRules

__all__ = ["GatewayRejected", "Ping", "Pong", "RulesUpdate"]


@message
class GatewayRejected:
    """The gateway refused before doing anything: no effect anywhere."""

    req_id: str
    reason: str  # "overloaded" | "no-route"
    node: str


@message
class RulesUpdate:
    """New cell routing rules, pushed to gateways and clients (chapter 3)."""

    rules: RoutingRules


@message
class Ping:
    """A health probe (the cell failover controller's heartbeat)."""

    seq: int


@message
class Pong:
    seq: int
    node: str
