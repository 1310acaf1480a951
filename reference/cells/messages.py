"""Messages of the cell layer: configuration zones and failover."""

from __future__ import annotations

from reference.codec import Message, message
from reference.gateway.router import RoutingRules

__all__ = [
    "ConfigAck",
    "ConfigUpdate",
    "DirectoryRead",
    "DirectoryReply",
    "MoveRange",
    "RulesAck",
    "SetRules",
]


@message
class SetRules(Message):
    """Controller -> GZone: adopt these routing rules (a failover, a rebalance)."""

    rules: RoutingRules
    reason: str


@message
class RulesAck(Message):
    """GZone -> controller: the rules are durable and on their way out."""

    version: int


@message
class ConfigUpdate(Message):
    """GZone -> CZones: the global configuration changed (asynchronously copied)."""

    rules: RoutingRules
    merchants: tuple[int, ...]


@message
class ConfigAck(Message):
    """CZone -> GZone: I hold `version` (or newer); stop re-sending it."""

    version: int
    node: str


@message
class DirectoryRead(Message):
    """A read of the merchant directory from a CZone (the city's local copy)."""

    req_id: str


@message
class DirectoryReply(Message):
    req_id: str
    merchants: tuple[int, ...]
    version: int
    node: str


@message
class MoveRange(Message):
    """Operator -> failover controller: these buckets to `to_cell` (a rebalance, the
    elastic cell). The controller writes the rules, as for a failover; moving a
    range back names the cell it came from, and goes to wherever that cell's data
    is now (`RoutingRules.home_of`: its standby, if it was failed over meanwhile)."""

    buckets: tuple[int, ...]
    to_cell: str
    reason: str
