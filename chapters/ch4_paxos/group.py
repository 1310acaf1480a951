"""One ledger shard as a Paxos group across three cities.

Each chapter-3 cell's data becomes one group. Its members are placed one per
city, the cell's home city first: the first replica campaigns first, so at
boot the leader sits next to the cell's gateway, and when that city is lost
the next replica (in the city of the cell's standby) campaigns first, so the
leader moves where chapter 3's failover sends the cell's users.

Two shapes (the stage's variants):

- "3-replicas": three full replicas; a commit needs two of them, in two
  cities, so any one city can be lost with every acknowledged payment.
- "arbiter": two full replicas and an arbiter in the third city (OceanBase's
  arbitration service). A commit needs both replicas until one is silent for
  the arbitration timeout; then, with the arbiter's vote, the group degrades
  to the survivor, which commits alone (see reference/paxos/replica.py for
  what a degraded group can and cannot survive).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from reference.ledger.directory import Directory
from reference.ledger.service import LedgerReplica
from reference.node import NodeId
from reference.paxos.arbiter import Arbiter
from reference.paxos.config import PaxosConfig
from reference.paxos.messages import Membership

__all__ = ["GroupPlan", "make_member", "paxos_config"]

# Cross-city one-way latency is 15 ms: a heartbeat round trip is ~30 ms, so a
# heartbeat every 30 ms renews a 100 ms lease with room to spare, and a
# follower that hears nothing for 150 ms (lease + skew bound + margin) campaigns.
ELECTION_TIMEOUT_MS = 150.0
HEARTBEAT_MS = 30.0
LEASE_MS = 100.0
MAX_CLOCK_SKEW_MS = 10.0
ARBITRATION_TIMEOUT_MS = 300.0


@dataclass(frozen=True)
class GroupPlan:
    """Who is in one group: the cell it serves, its data replicas, its arbiter."""

    cell: str
    replicas: tuple[NodeId, ...]  # home city first
    arbiter: NodeId | None = None

    def members(self) -> tuple[NodeId, ...]:
        return self.replicas if self.arbiter is None else (*self.replicas, self.arbiter)


def paxos_config(
    plan: GroupPlan, *, batching: bool = True, mutations: frozenset[str] = frozenset()
) -> PaxosConfig:
    return PaxosConfig(
        membership=Membership(1, plan.replicas, plan.arbiter),
        election_timeout_ms=ELECTION_TIMEOUT_MS,
        election_jitter_ms=20.0,  # breaks repeated split votes after a partition heals
        heartbeat_interval_ms=HEARTBEAT_MS,
        lease_ms=LEASE_MS,
        max_clock_skew_ms=MAX_CLOCK_SKEW_MS,
        arbitration_timeout_ms=ARBITRATION_TIMEOUT_MS,
        batch_max_commands=16 if batching else 1,
        mutations=mutations,
    )


def make_member(
    node_id: NodeId, plan: GroupPlan, cfg: PaxosConfig, directory: Directory
) -> LedgerReplica | Arbiter:
    """The node for `node_id`, one of `plan.members()` (a fresh one at every restart).

    Every data replica starts from the same genesis ledger (the group's
    accounts and their opening transfers) before slot 1, as if it were slot 0
    of the log.
    """
    if node_id == plan.arbiter:
        return Arbiter(node_id, cfg)
    assert node_id in plan.replicas, (node_id, plan)
    genesis = functools.partial(directory.genesis, plan.cell)
    return LedgerReplica(node_id, cfg, machine_factory=genesis)
