"""The invariant checks catch real violations (a checker is trusted only then)."""

from __future__ import annotations

import pytest
from ledger_helpers import BANK, T0_MS, WALLET, transfer

from reference.ledger import Ledger, LedgerInvariantError, PendingStatus, TransferFlags
from reference.ledger import domain as sm


def test_a_one_sided_entry_breaks_the_cheap_check(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plant a bug: a transfer that debits but forgets to credit."""
    ledger.audit = False  # the running totals alone must catch it
    real_put = Ledger._put_account

    def forgetful(self: Ledger, account: sm.Account) -> None:
        if account.id == BANK and account.credits_posted_cents:
            return  # the credit half is lost
        real_put(self, account)

    monkeypatch.setattr(Ledger, "_put_account", forgetful)
    with pytest.raises(LedgerInvariantError, match="posted debits"):
        ledger.create_transfers([transfer(10, WALLET, BANK, 5)], T0_MS)


def test_audit_catches_balances_that_disagree_with_the_transfers(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plant a bug that keeps debits == credits but moves the wrong amount."""
    real_move = Ledger._move

    def skimming(self: Ledger, transfer_id: int, dr: int, cr: int, **cents: int) -> None:
        cents["posted_cents"] = max(0, cents["posted_cents"] - 1)  # a cent off each
        real_move(self, transfer_id, dr, cr, **cents)

    monkeypatch.setattr(Ledger, "_move", skimming)
    with pytest.raises(LedgerInvariantError, match="its transfers say"):
        ledger.create_transfers([transfer(10, WALLET, BANK, 5)], T0_MS)


def test_an_overdraft_is_caught_even_if_the_limit_check_is_skipped(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sm, "limits_broken", lambda amount_cents, dr, cr: None)
    with pytest.raises(LedgerInvariantError, match="broke its limits"):
        ledger.create_transfers([transfer(10, WALLET, BANK, 5_000)], T0_MS)


def test_an_id_applied_twice_is_caught(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Ledger, "_seen_before", lambda self, t, p: None)
    with pytest.raises(LedgerInvariantError, match="applied twice"):
        ledger.create_transfers([transfer(1, BANK, WALLET, 1_000)], T0_MS)


def test_audit_catches_an_overdue_pending_transfer(ledger: Ledger) -> None:
    ledger.create_transfers(
        [transfer(10, WALLET, BANK, 5, flags=TransferFlags.PENDING, timeout_ms=5)], T0_MS
    )
    ledger._expiry.clear()  # plant: forget the deadline
    with pytest.raises(LedgerInvariantError, match="overdue"):
        ledger.expire_pending(T0_MS + 10)
    assert ledger.pending_status(10) == PendingStatus.PENDING
