"""Moved: this path only re-exports, so older imports keep working.

The contract a Paxos group replicates (`StateMachine`) and the dedup table
around it (`ReplicatedState`) live in `reference/paxos/replicated_state.py`;
the tests' key-value store (`KVStore`) in `reference/paxos/kvstore.py`.
New code imports from there.
"""

from __future__ import annotations

from reference.paxos.kvstore import KVStore
from reference.paxos.replicated_state import (
    DEDUP_CHUNK_REQUESTS,
    ReplicatedState,
    StateMachine,
)

__all__ = ["DEDUP_CHUNK_REQUESTS", "KVStore", "ReplicatedState", "StateMachine"]
