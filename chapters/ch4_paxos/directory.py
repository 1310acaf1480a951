"""Moved: the ledger directory is a component, `reference.ledger.directory`.

Kept as a name for chapter 5's stage, which imports it from here; delete this
module once chapter 5 imports `reference.ledger.directory` (issue 12).
"""

from reference.ledger.directory import LEDGER_CNY, Directory, transfer_id

__all__ = ["LEDGER_CNY", "Directory", "transfer_id"]
