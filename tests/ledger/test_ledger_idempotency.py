"""Client-chosen ids: a retry is harmless, a conflicting reuse is reported."""

from __future__ import annotations

from ledger_helpers import BANK, T0_MS, WALLET, transfer

from reference.ledger import (
    Account,
    AccountFlags,
    CreateTransferResult,
    Ledger,
    Transfer,
    TransferFlags,
)

R = CreateTransferResult
PENDING = TransferFlags.PENDING
POST = TransferFlags.POST_PENDING_TRANSFER


def test_retries_report_exists_and_move_money_once(ledger: Ledger) -> None:
    pay = transfer(10, WALLET, BANK, 250, user_data=42)
    assert ledger.create_transfers([pay], T0_MS) == (R.OK,)
    for attempt in range(5):
        assert ledger.create_transfers([pay], T0_MS + attempt) == (R.EXISTS,)
    (wallet,) = ledger.lookup_accounts([WALLET])
    assert wallet.debits_posted_cents == 250
    # Within one batch too.
    assert ledger.create_transfers([pay, pay], T0_MS + 9) == (R.EXISTS, R.EXISTS)


def test_a_duplicate_inside_the_first_batch(ledger: Ledger) -> None:
    pay = transfer(10, WALLET, BANK, 250)
    assert ledger.create_transfers([pay, pay], T0_MS) == (R.OK, R.EXISTS)


def test_a_transient_failure_is_final_for_that_id(ledger: Ledger) -> None:
    """An id that failed for lack of funds never succeeds later: one id, one outcome."""
    pay = transfer(10, WALLET, BANK, 5_000)
    assert ledger.create_transfers([pay], T0_MS) == (R.EXCEEDS_CREDITS,)
    ledger.create_transfers([transfer(11, BANK, WALLET, 10_000)], T0_MS)  # top up
    assert ledger.create_transfers([pay], T0_MS + 1) == (R.ID_ALREADY_FAILED,)
    assert ledger.lookup_transfers([10]) == ()


def test_a_failure_that_depends_only_on_the_event_is_not_remembered(ledger: Ledger) -> None:
    assert ledger.create_transfers([transfer(10, WALLET, BANK, 0)], T0_MS) == (
        R.AMOUNT_MUST_NOT_BE_ZERO,
    )
    assert ledger.create_transfers([transfer(10, WALLET, BANK, 1)], T0_MS) == (R.OK,)


def test_a_retry_naming_a_missing_account_does_not_mark_an_applied_id_failed(
    ledger: Ledger,
) -> None:
    assert ledger.create_transfers([transfer(10, WALLET, BANK, 1)], T0_MS) == (R.OK,)
    assert ledger.create_transfers([transfer(10, 99, BANK, 1)], T0_MS) == (
        R.DEBIT_ACCOUNT_NOT_FOUND,
    )
    assert ledger.create_transfers([transfer(10, WALLET, BANK, 1)], T0_MS) == (R.EXISTS,)


def test_exists_with_different_timeout() -> None:
    ledger = Ledger(audit=True)
    ledger.create_accounts([Account(1, 1, 1), Account(2, 1, 1)], 0)
    pending = transfer(10, 1, 2, 5, flags=PENDING, timeout_ms=100)
    assert ledger.create_transfers([pending], 0) == (R.OK,)
    assert ledger.create_transfers([transfer(10, 1, 2, 5, flags=PENDING, timeout_ms=200)], 0) == (
        R.EXISTS_WITH_DIFFERENT_TIMEOUT,
    )


def test_post_retries(ledger: Ledger) -> None:
    ledger.create_transfers(
        [
            transfer(10, WALLET, BANK, 100, flags=PENDING),
            transfer(11, WALLET, BANK, 100, flags=PENDING),
        ],
        T0_MS,
    )
    full = Transfer(20, 0, 0, 0, 0, 0, flags=POST, pending_id=10)
    assert ledger.create_transfers([full], T0_MS) == (R.OK,)
    assert ledger.create_transfers([full], T0_MS) == (R.EXISTS,)
    # Naming the amount explicitly is the same post.
    explicit = Transfer(20, WALLET, BANK, 100, 1, 1, flags=POST, pending_id=10)
    assert ledger.create_transfers([explicit], T0_MS) == (R.EXISTS,)
    less = Transfer(20, 0, 0, 90, 0, 0, flags=POST, pending_id=10)
    assert ledger.create_transfers([less], T0_MS) == (R.EXISTS_WITH_DIFFERENT_AMOUNT,)
    other = Transfer(20, 0, 0, 0, 0, 0, flags=POST, pending_id=11)
    assert ledger.create_transfers([other], T0_MS) == (R.EXISTS_WITH_DIFFERENT_PENDING_ID,)
    (wallet,) = ledger.lookup_accounts([WALLET])
    assert (wallet.debits_pending_cents, wallet.debits_posted_cents) == (100, 100)


def test_history_records_every_change() -> None:
    ledger = Ledger(audit=True)
    ledger.create_accounts([Account(1, 1, 1, flags=AccountFlags.HISTORY), Account(2, 1, 1)], 0)
    ledger.create_transfers([transfer(1, 2, 1, 10), transfer(2, 2, 1, 5, flags=PENDING)], 3)
    ledger.create_transfers([Transfer(3, 0, 0, 0, 0, 0, flags=POST, pending_id=2)], 4)
    assert [
        (h.transfer_id, h.credits_pending_cents, h.credits_posted_cents, h.timestamp_ms)
        for h in ledger.history(1)
    ] == [(1, 0, 10, 3), (2, 5, 10, 3), (3, 0, 15, 4)]
    assert ledger.history(2) == ()
