"""Linked chains: all of the chain, or none of it."""

from __future__ import annotations

from ledger_helpers import BANK, CREDIT_LINE, T0_MS, WALLET, transfer

from reference.ledger import (
    Account,
    AccountFlags,
    CreateAccountResult,
    CreateTransferResult,
    Ledger,
    Transfer,
    TransferFlags,
)

R = CreateTransferResult
LINKED = TransferFlags.LINKED
PENDING = TransferFlags.PENDING
POST = TransferFlags.POST_PENDING_TRANSFER


def test_a_failing_link_rolls_back_the_whole_chain(ledger: Ledger) -> None:
    before = ledger.snapshot()
    results = ledger.create_transfers(
        [
            transfer(10, WALLET, BANK, 100, flags=LINKED),
            transfer(11, BANK, CREDIT_LINE, 5, flags=LINKED),  # credit line refuses
            transfer(12, WALLET, BANK, 100),
            transfer(13, WALLET, BANK, 7),  # the next chain: unaffected
        ],
        T0_MS,
    )
    assert results == (R.LINKED_EVENT_FAILED, R.EXCEEDS_DEBITS, R.LINKED_EVENT_FAILED, R.OK)
    after = ledger.snapshot()
    assert ledger.lookup_transfers([10, 11, 12]) == ()
    assert [a.debits_posted_cents for a in after.accounts] == [
        a.debits_posted_cents + (7 if a.id == WALLET else 0) for a in before.accounts
    ]


def test_a_chain_sees_its_own_earlier_events(ledger: Ledger) -> None:
    results = ledger.create_transfers(
        [
            transfer(10, WALLET, BANK, 100, flags=LINKED | PENDING),
            Transfer(11, 0, 0, 60, 0, 0, flags=POST, pending_id=10),
        ],
        T0_MS,
    )
    assert results == (R.OK, R.OK)
    (wallet,) = ledger.lookup_accounts([WALLET])
    assert (wallet.debits_pending_cents, wallet.debits_posted_cents) == (0, 60)


def test_a_rolled_back_pending_transfer_leaves_no_status_and_never_expires(
    ledger: Ledger,
) -> None:
    results = ledger.create_transfers(
        [
            transfer(10, WALLET, BANK, 100, flags=LINKED | PENDING, timeout_ms=10),
            transfer(11, WALLET, BANK, 10_000),
        ],
        T0_MS,
    )
    assert results == (R.LINKED_EVENT_FAILED, R.EXCEEDS_CREDITS)
    assert ledger.pending_status(10) is None
    # Recreated with a longer timeout: the rolled-back heap entry must not
    # expire the new one early.
    ledger.create_transfers(
        [transfer(10, WALLET, BANK, 100, flags=PENDING, timeout_ms=50)], T0_MS + 5
    )
    assert ledger.expire_pending(T0_MS + 20) == ()
    assert ledger.expire_pending(T0_MS + 55) == (10,)


def test_a_chain_left_open_at_the_end_of_the_batch_is_refused(ledger: Ledger) -> None:
    results = ledger.create_transfers(
        [
            transfer(10, WALLET, BANK, 1),
            transfer(11, WALLET, BANK, 1, flags=LINKED),
            transfer(12, WALLET, BANK, 1, flags=LINKED),
        ],
        T0_MS,
    )
    assert results == (R.OK, R.LINKED_EVENT_FAILED, R.LINKED_EVENT_CHAIN_OPEN)
    assert ledger.lookup_transfers([10, 11, 12])[0].id == 10
    assert len(ledger.lookup_transfers([10, 11, 12])) == 1


def test_a_retried_chain_is_not_applied_twice(ledger: Ledger) -> None:
    chain = [transfer(10, WALLET, BANK, 100, flags=LINKED), transfer(11, WALLET, BANK, 50)]
    assert ledger.create_transfers(chain, T0_MS) == (R.OK, R.OK)
    snap = ledger.snapshot()
    # As in TigerBeetle, `exists` is not `ok`: the chain reports its first
    # member as existing and the rest as failed links, and changes nothing.
    assert ledger.create_transfers(chain, T0_MS) == (R.EXISTS, R.LINKED_EVENT_FAILED)
    assert ledger.snapshot().accounts == snap.accounts


def test_linked_accounts_roll_back_together() -> None:
    ledger = Ledger(audit=True)
    results = ledger.create_accounts(
        [
            Account(1, 1, 1, flags=AccountFlags.LINKED | AccountFlags.HISTORY),
            Account(2, 1, 0),  # code 0: refused, and takes account 1 with it
        ],
        0,
    )
    assert results == (
        CreateAccountResult.LINKED_EVENT_FAILED,
        CreateAccountResult.CODE_MUST_NOT_BE_ZERO,
    )
    assert ledger.accounts() == ()
    assert ledger.history(1) == ()
    assert ledger.snapshot().history == ()
