"""One test per result code: the smallest event that earns it."""

from __future__ import annotations

import pytest
from ledger_helpers import BANK, CREDIT_LINE, OTHER_LEDGER, T0_MS, WALLET, transfer

from reference.ledger import (
    Account,
    AccountFlags,
    CreateAccountResult,
    CreateTransferResult,
    Ledger,
    Transfer,
    TransferFlags,
)
from reference.ledger.records import AMOUNT_MAX_CENTS, BALANCE_MAX_CENTS

R = CreateTransferResult
A = CreateAccountResult
LINKED = TransferFlags.LINKED
PENDING = TransferFlags.PENDING
POST = TransferFlags.POST_PENDING_TRANSFER
VOID = TransferFlags.VOID_PENDING_TRANSFER

# (event, expected) against the funded ledger of conftest.py; a pending
# transfer 50 (wallet -> bank, 100 cents, no timeout) exists as well.
TRANSFER_CASES: list[tuple[str, Transfer, CreateTransferResult]] = [
    ("ok", transfer(10, WALLET, BANK, 10), R.OK),
    ("timestamp", Transfer(10, WALLET, BANK, 10, 1, 1, timestamp_ms=5), R.TIMESTAMP_MUST_BE_ZERO),
    ("reserved_flag", transfer(10, WALLET, BANK, 10, flags=1 << 9), R.RESERVED_FLAG),
    ("negative", transfer(10, WALLET, BANK, -5), R.FIELD_OUT_OF_RANGE),
    ("huge", transfer(10, WALLET, BANK, AMOUNT_MAX_CENTS + 1), R.FIELD_OUT_OF_RANGE),
    ("id_zero", transfer(0, WALLET, BANK, 10), R.ID_MUST_NOT_BE_ZERO),
    ("dr_zero", transfer(10, 0, BANK, 10), R.DEBIT_ACCOUNT_ID_MUST_NOT_BE_ZERO),
    ("cr_zero", transfer(10, WALLET, 0, 10), R.CREDIT_ACCOUNT_ID_MUST_NOT_BE_ZERO),
    ("same", transfer(10, WALLET, WALLET, 10), R.ACCOUNTS_MUST_BE_DIFFERENT),
    ("pending_id", transfer(10, WALLET, BANK, 10, pending_id=50), R.PENDING_ID_MUST_BE_ZERO),
    (
        "timeout",
        transfer(10, WALLET, BANK, 10, timeout_ms=5),
        R.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER,
    ),
    ("ledger_zero", transfer(10, WALLET, BANK, 10, ledger=0), R.LEDGER_MUST_NOT_BE_ZERO),
    ("code_zero", transfer(10, WALLET, BANK, 10, code=0), R.CODE_MUST_NOT_BE_ZERO),
    ("amount_zero", transfer(10, WALLET, BANK, 0), R.AMOUNT_MUST_NOT_BE_ZERO),
    ("dr_missing", transfer(10, 99, BANK, 10), R.DEBIT_ACCOUNT_NOT_FOUND),
    ("cr_missing", transfer(10, WALLET, 99, 10), R.CREDIT_ACCOUNT_NOT_FOUND),
    ("ledgers", transfer(10, WALLET, OTHER_LEDGER, 10), R.ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER),
    (
        "transfer_ledger",
        transfer(10, WALLET, BANK, 10, ledger=2),
        R.TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS,
    ),
    ("exists", transfer(1, BANK, WALLET, 1_000), R.EXISTS),
    ("ex_flags", transfer(1, BANK, WALLET, 1_000, flags=PENDING), R.EXISTS_WITH_DIFFERENT_FLAGS),
    ("ex_dr", transfer(1, CREDIT_LINE, WALLET, 1_000), R.EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID),
    ("ex_cr", transfer(1, BANK, CREDIT_LINE, 1_000), R.EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID),
    ("ex_amount", transfer(1, BANK, WALLET, 999), R.EXISTS_WITH_DIFFERENT_AMOUNT),
    ("ex_data", transfer(1, BANK, WALLET, 1_000, user_data=7), R.EXISTS_WITH_DIFFERENT_USER_DATA),
    ("ex_code", transfer(1, BANK, WALLET, 1_000, code=2), R.EXISTS_WITH_DIFFERENT_CODE),
    ("overdraft", transfer(10, WALLET, BANK, 901), R.EXCEEDS_CREDITS),  # 100 are pending
    ("credit_limit", transfer(10, BANK, CREDIT_LINE, 1), R.EXCEEDS_DEBITS),
    ("overflow_cr", transfer(10, CREDIT_LINE, WALLET, BALANCE_MAX_CENTS), R.OVERFLOWS_CREDITS),
    # Posting and voiding the pending transfer 50:
    ("post", Transfer(10, 0, 0, 0, 0, 0, flags=POST, pending_id=50), R.OK),
    ("post_less", Transfer(10, 0, 0, 40, 0, 0, flags=POST, pending_id=50), R.OK),
    ("void", Transfer(10, 0, 0, 0, 0, 0, flags=VOID, pending_id=50), R.OK),
    (
        "post_and_void",
        Transfer(10, 0, 0, 0, 0, 0, flags=POST | VOID, pending_id=50),
        R.FLAGS_ARE_MUTUALLY_EXCLUSIVE,
    ),
    (
        "post_pending",
        Transfer(10, 0, 0, 0, 0, 0, flags=POST | PENDING, pending_id=50),
        R.FLAGS_ARE_MUTUALLY_EXCLUSIVE,
    ),
    ("no_pending_id", Transfer(10, 0, 0, 0, 0, 0, flags=POST), R.PENDING_ID_MUST_NOT_BE_ZERO),
    (
        "self_pending",
        Transfer(10, 0, 0, 0, 0, 0, flags=POST, pending_id=10),
        R.PENDING_ID_MUST_BE_DIFFERENT,
    ),
    (
        "post_timeout",
        Transfer(10, 0, 0, 0, 0, 0, flags=POST, pending_id=50, timeout_ms=5),
        R.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER,
    ),
    (
        "not_found",
        Transfer(10, 0, 0, 0, 0, 0, flags=POST, pending_id=77),
        R.PENDING_TRANSFER_NOT_FOUND,
    ),
    (
        "not_pending",
        Transfer(10, 0, 0, 0, 0, 0, flags=POST, pending_id=1),
        R.PENDING_TRANSFER_NOT_PENDING,
    ),
    (
        "other_dr",
        Transfer(10, BANK, 0, 0, 0, 0, flags=POST, pending_id=50),
        R.PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID,
    ),
    (
        "other_cr",
        Transfer(10, 0, WALLET, 0, 0, 0, flags=POST, pending_id=50),
        R.PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID,
    ),
    (
        "other_ledger",
        Transfer(10, 0, 0, 0, 2, 0, flags=POST, pending_id=50),
        R.PENDING_TRANSFER_HAS_DIFFERENT_LEDGER,
    ),
    (
        "other_code",
        Transfer(10, 0, 0, 0, 0, 9, flags=POST, pending_id=50),
        R.PENDING_TRANSFER_HAS_DIFFERENT_CODE,
    ),
    (
        "post_more",
        Transfer(10, 0, 0, 101, 0, 0, flags=POST, pending_id=50),
        R.EXCEEDS_PENDING_TRANSFER_AMOUNT,
    ),
    (
        "void_less",
        Transfer(10, 0, 0, 40, 0, 0, flags=VOID, pending_id=50),
        R.PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT,
    ),
]


@pytest.mark.parametrize(
    ("event", "expected"), [c[1:] for c in TRANSFER_CASES], ids=[c[0] for c in TRANSFER_CASES]
)
def test_transfer_result(ledger: Ledger, event: Transfer, expected: CreateTransferResult) -> None:
    pending = transfer(50, WALLET, BANK, 100, flags=PENDING)
    assert ledger.create_transfers([pending], T0_MS) == (R.OK,)
    before = ledger.snapshot()
    assert ledger.create_transfers([event], T0_MS + 1) == (expected,)
    if expected != R.OK:
        # A refused event changes nothing but the clock (and, for a transient
        # failure, remembers the id).
        after = ledger.snapshot()
        assert after.accounts == before.accounts
        assert after.transfers == before.transfers


def test_every_transfer_result_code_is_reachable() -> None:
    """Every code is earned by some test in this directory (no dead codes)."""
    covered = {c[2] for c in TRANSFER_CASES} | {
        R.LINKED_EVENT_FAILED,  # test_linked.py
        R.LINKED_EVENT_CHAIN_OPEN,  # test_linked.py
        R.ID_ALREADY_FAILED,  # test_idempotency.py
        R.EXISTS_WITH_DIFFERENT_PENDING_ID,  # test_idempotency.py
        R.EXISTS_WITH_DIFFERENT_TIMEOUT,  # test_idempotency.py
        R.PENDING_TRANSFER_ALREADY_POSTED,  # test_pending.py
        R.PENDING_TRANSFER_ALREADY_VOIDED,  # test_pending.py
        R.PENDING_TRANSFER_EXPIRED,  # test_pending.py
        R.OVERFLOWS_DEBITS,  # below
        R.FENCED,  # test_ledger_fence.py: a fenced id's reason, never a create's answer
    }
    assert covered == set(R)


def test_overflows_debits() -> None:
    ledger = Ledger(audit=True)
    ledger.create_accounts([Account(1, 1, 1), Account(2, 1, 1), Account(3, 1, 1)], 0)
    assert ledger.create_transfers([transfer(1, 1, 2, BALANCE_MAX_CENTS)], 0) == (R.OK,)
    assert ledger.create_transfers([transfer(2, 1, 3, 1)], 0) == (R.OVERFLOWS_DEBITS,)


ACCOUNT_CASES: list[tuple[str, Account, CreateAccountResult]] = [
    ("ok", Account(10, 1, 1), A.OK),
    ("timestamp", Account(10, 1, 1, timestamp_ms=3), A.TIMESTAMP_MUST_BE_ZERO),
    ("reserved_flag", Account(10, 1, 1, flags=1 << 8), A.RESERVED_FLAG),
    ("negative", Account(-10, 1, 1), A.FIELD_OUT_OF_RANGE),
    ("id_zero", Account(0, 1, 1), A.ID_MUST_NOT_BE_ZERO),
    (
        "both_limits",
        Account(
            10,
            1,
            1,
            flags=AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
            | AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS,
        ),
        A.FLAGS_ARE_MUTUALLY_EXCLUSIVE,
    ),
    ("dp", Account(10, 1, 1, debits_pending_cents=1), A.DEBITS_PENDING_MUST_BE_ZERO),
    ("dpo", Account(10, 1, 1, debits_posted_cents=1), A.DEBITS_POSTED_MUST_BE_ZERO),
    ("cp", Account(10, 1, 1, credits_pending_cents=1), A.CREDITS_PENDING_MUST_BE_ZERO),
    ("cpo", Account(10, 1, 1, credits_posted_cents=1), A.CREDITS_POSTED_MUST_BE_ZERO),
    ("ledger_zero", Account(10, 0, 1), A.LEDGER_MUST_NOT_BE_ZERO),
    ("code_zero", Account(10, 1, 0), A.CODE_MUST_NOT_BE_ZERO),
    ("exists", Account(BANK, 1, 1), A.EXISTS),
    (
        "ex_flags",
        Account(BANK, 1, 1, flags=AccountFlags.HISTORY),
        A.EXISTS_WITH_DIFFERENT_FLAGS,
    ),
    ("ex_data", Account(BANK, 1, 1, user_data=1), A.EXISTS_WITH_DIFFERENT_USER_DATA),
    ("ex_ledger", Account(BANK, 2, 1), A.EXISTS_WITH_DIFFERENT_LEDGER),
    ("ex_code", Account(BANK, 1, 2), A.EXISTS_WITH_DIFFERENT_CODE),
    ("linked_open", Account(10, 1, 1, flags=AccountFlags.LINKED), A.LINKED_EVENT_CHAIN_OPEN),
]


@pytest.mark.parametrize(
    ("event", "expected"), [c[1:] for c in ACCOUNT_CASES], ids=[c[0] for c in ACCOUNT_CASES]
)
def test_account_result(ledger: Ledger, event: Account, expected: CreateAccountResult) -> None:
    before = ledger.accounts()
    assert ledger.create_accounts([event], T0_MS + 1) == (expected,)
    if expected != A.OK:
        assert ledger.accounts() == before
    else:
        (created,) = ledger.lookup_accounts([event.id])
        assert created.timestamp_ms == T0_MS + 1


def test_every_account_result_code_is_reachable() -> None:
    covered = {c[2] for c in ACCOUNT_CASES} | {A.LINKED_EVENT_FAILED}  # test_linked.py
    assert covered == set(A)
