"""Moved: this path only re-exports, so older imports keep working.

The domain ledger (`Ledger`: accounts, transfers, the rules that move money)
lives in `reference/ledger/domain.py`, and the pure rules it applies in
`reference/ledger/rules.py`. The replicated ledger a Paxos group runs is
`reference/ledger/machine.py`. New code imports from there.
"""

from __future__ import annotations

from reference.ledger.domain import BATCH_EVENTS_MAX, SNAPSHOT_VERSION, Ledger
from reference.ledger.rules import LedgerInvariantError

__all__ = ["BATCH_EVENTS_MAX", "SNAPSHOT_VERSION", "Ledger", "LedgerInvariantError"]
