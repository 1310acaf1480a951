"""Messages of the cell layer: configuration zones and failover."""

from __future__ import annotations

from reference.codec import Message, message
from reference.gateway.router import RoutingRules

__all__ = [
    "Ballot",
    "ConfigAck",
    "ConfigUpdate",
    "DirectoryRead",
    "DirectoryReply",
    "MoveRange",
    "RulesAccept",
    "RulesAccepted",
    "RulesAck",
    "RulesNack",
    "RulesPrepare",
    "RulesPromise",
    "RulesRefused",
    "SetRules",
    "WatchCells",
    "WatchCellsAck",
]

Ballot = tuple[int, str]  # (round, proposer): totally ordered, unique per proposer


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


# -- the rules log: each version a Paxos slot (see `reference.cells.rules_log`) --------


@message
class RulesPrepare(Message):
    """Controller -> acceptors (the CZones): promise `ballot` for the slot `version`."""

    version: int
    ballot: Ballot


@message
class RulesPromise(Message):
    """Acceptor -> controller: promised; here is what I accepted for the slot, if anything."""

    version: int
    ballot: Ballot
    accepted_ballot: Ballot
    accepted: RoutingRules | None
    node: str


@message
class RulesAccept(Message):
    """Controller -> acceptors: accept these rules as version `version` under `ballot`.

    `fails`: the cells this version fails over (moved in `rules`, not in the version
    before), the ones each acceptor's own probes must also find silent."""

    version: int
    ballot: Ballot
    rules: RoutingRules
    fails: tuple[str, ...]


@message
class RulesAccepted(Message):
    version: int
    ballot: Ballot
    node: str


@message
class RulesNack(Message):
    """Acceptor -> controller: I promised a higher ballot for the slot."""

    version: int
    promised: Ballot
    node: str


@message
class RulesRefused(Message):
    """Acceptor -> controller: no vote for `ballot`'s value, ever: it fails over cells
    that this city's own probes still hear (`alive`, as they stand when the answer
    is sent). A witness's veto, not a higher ballot: see `rules_log`."""

    version: int
    ballot: Ballot
    alive: tuple[str, ...]
    node: str


@message
class WatchCells(Message):
    """Fenced controller -> acceptors: the cells whose failover you will be asked to
    vote on, and their gateways: probe them yourself, every `probe_every_ms`, and hold
    one silent for `suspect_after_ms` as dead. A list, not a claim about who is alive."""

    gateways: tuple[tuple[str, str], ...]  # (cell, gateway)
    probe_every_ms: float
    suspect_after_ms: float


@message
class WatchCellsAck(Message):
    node: str
