"""Where an account lives: by user-id hash (chapter 2) or by uid bucket (chapter 3).

The shard router hashes the user id, so users spread evenly and a user's
accounts always land together. A hash is stable but not movable: changing
the number of shards moves almost every user, which is one reason the cell
router of chapter 3 routes through a table instead.

The cell router takes `uid % 100` (the bucket) and looks it up in the
routing rules, which are *data*: a version number, the owner of each of the
100 buckets, and the cells whose data has moved (failover). Moving users is
editing the table; no code changes, no rehash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from reference.codec import Message, message
from reference.node import NodeId
from reference.payment.accounts import parse_account

__all__ = [
    "BUCKETS",
    "CellRouter",
    "OneStore",
    "RoutingRules",
    "ShardRouter",
    "StoreRouting",
    "even_buckets",
]

BUCKETS = 100


class StoreRouting(Protocol):
    """A routing policy a gateway is given: the store node that serves an account."""

    def store_of(self, account: str) -> NodeId: ...


@dataclass(frozen=True)
class OneStore:
    """Every account to one node: chapter 4's gateways hand each payment to their cell's
    ledger front, which reaches every Paxos group (no cross-store transfer is left)."""

    store: NodeId

    def store_of(self, account: str) -> NodeId:
        return self.store


# --8<-- [start:shard-router]
class ShardRouter:
    """Account -> shard node, by a stable hash of the user (or merchant) id."""

    def __init__(self, shards: Sequence[NodeId]) -> None:
        assert len(shards) >= 1 and len(set(shards)) == len(shards), shards
        self.shards = tuple(shards)

    def shard_index(self, account: str) -> int:
        kind, ident = parse_account(account)
        # blake2b, not hash(): the same on every process and every run.
        digest = hashlib.blake2b(f"{kind}:{ident}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") % len(self.shards)

    def shard_of(self, account: str) -> NodeId:
        return self.shards[self.shard_index(account)]


# --8<-- [end:shard-router]


@message
class RoutingRules(Message):
    """The cell routing table, as data (it travels in RulesUpdate messages)."""

    version: int
    buckets: tuple[str, ...]  # bucket (uid % 100) -> the cell that serves it
    moved: dict[str, str]  # cell -> the cell now holding its data (after failover)

    def home_of(self, cell: str) -> str:
        """Where `cell`'s data lives now, following failovers of failovers.

        After sh-1 -> sz-1 and then sz-1 -> hz-1, sh-1's data is on hz-1: the
        chain is followed to its end. The walk is bounded by the number of
        moves, and a cycle (every cell on it failed over to the next, so all
        are dead) stops at the cell where it closes instead of spinning.
        """
        seen = {cell}
        for _ in range(len(self.moved)):
            nxt = self.moved.get(cell)
            if nxt is None or nxt in seen:
                break
            seen.add(nxt)
            cell = nxt
        return cell


def even_buckets(cells: Sequence[str], version: int = 1) -> RoutingRules:
    """Contiguous, nearly equal uid ranges: cell i gets buckets [lo_i, hi_i)."""
    assert 1 <= len(cells) <= BUCKETS, cells
    owners = tuple(cells[b * len(cells) // BUCKETS] for b in range(BUCKETS))
    return RoutingRules(version, owners, {})


# --8<-- [start:cell-router]
@dataclass
class CellRouter:
    """uid -> cell by the routing rules; a cell -> its gateway and store nodes."""

    rules: RoutingRules
    gateways: dict[str, NodeId]  # cell -> its gateway node
    stores: dict[str, NodeId]  # cell -> its store node
    forwarded: int = field(default=0)

    def bucket(self, uid: int) -> int:
        return uid % BUCKETS

    def cell_of_user(self, uid: int) -> str:
        return self.rules.buckets[self.bucket(uid)]

    def cell_of_account(self, account: str) -> str:
        """Users by bucket; a merchant sub-account `m7@c2` lives where c2's data is."""
        kind, ident = parse_account(account)
        if kind == "user":
            return self.cell_of_user(ident)
        _, _, home = account.partition("@")
        assert home, f"{account}: merchant accounts are per cell in a cell deployment"
        return self.rules.home_of(home)

    def store_of(self, account: str) -> NodeId:
        return self.stores[self.cell_of_account(account)]

    def gateway_of_user(self, uid: int) -> NodeId:
        return self.gateways[self.cell_of_user(uid)]

    def update(self, rules: RoutingRules) -> bool:
        """Adopt `rules` if newer; True if adopted."""
        if rules.version <= self.rules.version:
            return False
        assert len(rules.buckets) == BUCKETS
        self.rules = rules
        return True


# --8<-- [end:cell-router]
