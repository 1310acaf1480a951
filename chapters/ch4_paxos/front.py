"""Moved: the ledger front is a component, `reference.ledger.front`.

Kept as a name for chapter 5's stage, which imports it from here; delete this
module once chapter 5 imports `reference.ledger.front` (issue 12).
"""

from reference.ledger.front import FrontConfig, LedgerFront

__all__ = ["FrontConfig", "LedgerFront"]
