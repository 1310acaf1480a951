"""Pending transfers: reserve, then post (all or less), void, or expire."""

from __future__ import annotations

from ledger_helpers import BANK, T0_MS, WALLET, transfer

from reference.ledger import (
    CreateTransferResult,
    ExpirePending,
    Ledger,
    PendingStatus,
    Transfer,
    TransferFlags,
    apply,
)

R = CreateTransferResult
PENDING = TransferFlags.PENDING
POST = TransferFlags.POST_PENDING_TRANSFER
VOID = TransferFlags.VOID_PENDING_TRANSFER


def balances(ledger: Ledger, account_id: int) -> tuple[int, int, int, int]:
    (a,) = ledger.lookup_accounts([account_id])
    return (
        a.debits_pending_cents,
        a.debits_posted_cents,
        a.credits_pending_cents,
        a.credits_posted_cents,
    )


def post(id: int, pending_id: int, amount_cents: int = 0) -> Transfer:
    return Transfer(id, 0, 0, amount_cents, 0, 0, flags=POST, pending_id=pending_id)


def void(id: int, pending_id: int) -> Transfer:
    return Transfer(id, 0, 0, 0, 0, 0, flags=VOID, pending_id=pending_id)


def test_pending_reserves_then_partial_post_releases_the_rest(ledger: Ledger) -> None:
    assert ledger.create_transfers([transfer(10, WALLET, BANK, 300, flags=PENDING)], T0_MS) == (
        R.OK,
    )
    assert balances(ledger, WALLET) == (300, 0, 0, 1_000)
    # The reservation counts against the wallet's limit.
    assert ledger.create_transfers([transfer(11, WALLET, BANK, 701)], T0_MS) == (R.EXCEEDS_CREDITS,)
    assert ledger.create_transfers([post(12, 10, 120)], T0_MS + 5) == (R.OK,)
    assert balances(ledger, WALLET) == (0, 120, 0, 1_000)
    assert balances(ledger, BANK) == (0, 1_000, 0, 120)
    assert ledger.pending_status(10) == PendingStatus.POSTED
    (stored,) = ledger.lookup_transfers([12])
    assert (stored.debit_account_id, stored.credit_account_id, stored.amount_cents) == (
        WALLET,
        BANK,
        120,
    )
    assert stored.timestamp_ms == T0_MS + 5
    # Once posted, never again: neither posted nor voided.
    assert ledger.create_transfers([post(13, 10)], T0_MS + 6) == (
        R.PENDING_TRANSFER_ALREADY_POSTED,
    )
    assert ledger.create_transfers([void(14, 10)], T0_MS + 6) == (
        R.PENDING_TRANSFER_ALREADY_POSTED,
    )


def test_post_with_zero_amount_posts_everything(ledger: Ledger) -> None:
    ledger.create_transfers([transfer(10, WALLET, BANK, 300, flags=PENDING)], T0_MS)
    assert ledger.create_transfers([post(11, 10)], T0_MS) == (R.OK,)
    assert balances(ledger, WALLET) == (0, 300, 0, 1_000)


def test_void_releases_the_reservation(ledger: Ledger) -> None:
    ledger.create_transfers([transfer(10, WALLET, BANK, 300, flags=PENDING)], T0_MS)
    assert ledger.create_transfers([void(11, 10)], T0_MS) == (R.OK,)
    assert balances(ledger, WALLET) == (0, 0, 0, 1_000)
    assert ledger.pending_status(10) == PendingStatus.VOIDED
    assert ledger.create_transfers([post(12, 10)], T0_MS) == (R.PENDING_TRANSFER_ALREADY_VOIDED,)


def test_pending_expires_at_its_timeout_in_logical_time(ledger: Ledger) -> None:
    ledger.create_transfers([transfer(10, WALLET, BANK, 300, flags=PENDING, timeout_ms=500)], T0_MS)
    # One millisecond before the deadline it still holds, and can be posted...
    assert ledger.expire_pending(T0_MS + 499) == ()
    assert balances(ledger, WALLET) == (300, 0, 0, 1_000)
    # ...at the deadline it is gone, and the money is free again.
    assert apply(ledger, ExpirePending(T0_MS + 500)) == (10,)
    assert balances(ledger, WALLET) == (0, 0, 0, 1_000)
    assert ledger.pending_status(10) == PendingStatus.EXPIRED
    assert ledger.create_transfers([post(11, 10)], T0_MS + 501) == (R.PENDING_TRANSFER_EXPIRED,)


def test_a_batch_expires_what_is_due_before_it_runs(ledger: Ledger) -> None:
    ledger.create_transfers([transfer(10, WALLET, BANK, 300, flags=PENDING, timeout_ms=500)], T0_MS)
    # No pulse in between: the batch itself carries the time past the deadline.
    assert ledger.create_transfers([post(11, 10)], T0_MS + 500) == (R.PENDING_TRANSFER_EXPIRED,)


def test_expiry_order_is_by_deadline_then_id(ledger: Ledger) -> None:
    ledger.create_transfers(
        [
            transfer(12, WALLET, BANK, 10, flags=PENDING, timeout_ms=50),
            transfer(11, WALLET, BANK, 10, flags=PENDING, timeout_ms=50),
            transfer(10, WALLET, BANK, 10, flags=PENDING, timeout_ms=70),
        ],
        T0_MS,
    )
    assert ledger.expire_pending(T0_MS + 100) == (11, 12, 10)


def test_the_logical_clock_never_goes_back(ledger: Ledger) -> None:
    """A new leader with a slower clock cannot un-expire or re-date anything."""
    ledger.create_transfers(
        [transfer(10, WALLET, BANK, 300, flags=PENDING, timeout_ms=100)], T0_MS + 1_000
    )
    assert ledger.create_transfers([transfer(11, BANK, WALLET, 1)], T0_MS) == (R.OK,)
    (stored,) = ledger.lookup_transfers([11])
    assert stored.timestamp_ms == T0_MS + 1_000
    assert ledger.clock_ms == T0_MS + 1_000
