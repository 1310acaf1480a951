"""Multi-Paxos for the ledger: replicas, an arbiter, leases, and a bug zoo.

Build a group by hand: `Replica(node_id, cfg, machine_factory)` for each full
replica and `Arbiter(node_id, cfg)` for the arbiter, all sharing one
`PaxosConfig` (chapter 4's `chapters/ch4_paxos/group.py` shows how). Clients
send `Propose` and `Read`, following the leader with `leader.LeaderFollower`.
"""

from __future__ import annotations

from reference.paxos.arbiter import Arbiter
from reference.paxos.config import PaxosConfig
from reference.paxos.kvstore import KVStore
from reference.paxos.messages import (
    Membership,
    Propose,
    ProposeResult,
    Read,
    ReadResult,
)
from reference.paxos.mutations import MUTATIONS
from reference.paxos.replica import Replica
from reference.paxos.replicated_state import ReplicatedState, StateMachine

__all__ = [
    "MUTATIONS",
    "Arbiter",
    "KVStore",
    "Membership",
    "PaxosConfig",
    "Propose",
    "ProposeResult",
    "Read",
    "ReadResult",
    "Replica",
    "ReplicatedState",
    "StateMachine",
]
