"""Moved: this path only re-exports, so older imports keep working.

The ledger model (accounts with deposits, transfers and reads: the sequential
specification `checks.lin` searches with) lives in
`checks/lin/models/accounts.py`, so the path says it models accounts, not the
ledger component. New code imports from there.
"""

from __future__ import annotations

from checks.lin.models.accounts import LedgerModel

__all__ = ["LedgerModel"]
