"""Fixtures of the ledger tests (helpers live in ledger_helpers.py)."""

from __future__ import annotations

import pytest
from ledger_helpers import funded_ledger

from reference.ledger import Ledger


@pytest.fixture
def ledger() -> Ledger:
    """See `ledger_helpers.funded_ledger`."""
    return funded_ledger()
