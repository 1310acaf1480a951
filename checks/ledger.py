"""Moved: this path only re-exports, so older imports keep working.

The ledger checker (every transfer held against the balances reads saw) lives
in the package `checks/transfers/`: it judges transfers against reads, and a
`checks/ledger*` name read as part of the ledger component. New code imports
from there.
"""

from __future__ import annotations

from checks.transfers import STATES_MAX, LedgerError, Transfer, check_ledger

__all__ = ["STATES_MAX", "LedgerError", "Transfer", "check_ledger"]
