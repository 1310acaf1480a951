"""The domain ledger's rules, as pure functions: what a command may do, and what it makes.

`domain.Ledger` holds the state and applies commands; the decisions that need
only the records in hand live here, each a few lines a reader can check
against TigerBeetle's: whether a field is in range, whether two accounts fit
a transfer, whether a move would break a balance limit, what a repeated
command finds (`exists`, or which field differs), and the new record values
a move or a stamp makes. They run for every transfer, so they are written
for speed (plain-int flag tests, positional record builders) without giving
up a check.
"""

from __future__ import annotations

import enum

from reference.ledger.records import (
    AMOUNT_MAX_CENTS,
    BALANCE_MAX_CENTS,
    CODE_MAX,
    FLAGS_MAX,
    ID_MAX,
    LEDGER_MAX,
    TIMEOUT_MS_MAX,
    TIMESTAMP_MS_MAX,
    USER_DATA_MAX,
    Account,
    AccountFlags,
    Transfer,
)
from reference.ledger.results import (
    CreateAccountResult,
    CreateTransferResult,
)

__all__ = [
    "LedgerInvariantError",
    "account_exists",
    "account_fields_in_range",
    "account_within_limits",
    "accounts_fit",
    "credited",
    "debited",
    "in_range",
    "is_due",
    "is_linked",
    "limits_broken",
    "must_hold",
    "plain_flags",
    "post_or_void_exists",
    "stamped_account",
    "stamped_transfer",
    "transfer_exists",
    "transfer_fields_in_range",
]

_ATR = CreateAccountResult
_TR = CreateTransferResult
_DEBITS_LIMITED = int(AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)
_CREDITS_LIMITED = int(AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS)


class LedgerInvariantError(AssertionError):
    """The ledger's state broke one of its invariants: a bug, never bad input."""


def must_hold(condition: bool, what: str, *args: object) -> None:
    # Not a bare `assert`: the invariants must hold under `python -O` too,
    # since a ledger that keeps running after breaking one loses money. The
    # message is `what.format(*args)`, built only on failure: checks run for
    # every transfer, and an f-string would be built every time.
    if not condition:
        raise LedgerInvariantError(what.format(*args) if args else what)


def is_linked(flags: object, linked: int) -> bool:
    # Flags out of range (a negative or non-int value) link nothing: the event
    # then fails on its own with `field_out_of_range`.
    return isinstance(flags, int) and 0 <= flags <= FLAGS_MAX and bool(flags & linked)


def is_due(p: Transfer, now_ms: int) -> bool:
    return p.timeout_ms > 0 and p.timestamp_ms + p.timeout_ms <= now_ms


def account_within_limits(a: Account) -> bool:
    dp, dpo = a.debits_pending_cents, a.debits_posted_cents
    cp, cpo = a.credits_pending_cents, a.credits_posted_cents
    if not (
        0 <= dp <= BALANCE_MAX_CENTS
        and 0 <= dpo <= BALANCE_MAX_CENTS
        and 0 <= cp <= BALANCE_MAX_CENTS
        and 0 <= cpo <= BALANCE_MAX_CENTS
    ):
        return False
    if a.flags & _DEBITS_LIMITED and dp + dpo > cpo:
        return False
    return not (a.flags & _CREDITS_LIMITED and cp + cpo > dpo)


def in_range(value: object, high: int) -> bool:
    # `type(...) is int`: a bool is an int to Python, and a float amount is
    # exactly what a ledger must never store.
    return type(value) is int and 0 <= value <= high


def account_fields_in_range(a: Account) -> bool:
    return (
        in_range(a.id, ID_MAX)
        and in_range(a.ledger, LEDGER_MAX)
        and in_range(a.code, CODE_MAX)
        and in_range(plain_flags(a.flags), FLAGS_MAX)
        and in_range(a.user_data, USER_DATA_MAX)
        and all(
            in_range(cents, BALANCE_MAX_CENTS)
            for cents in (
                a.debits_pending_cents,
                a.debits_posted_cents,
                a.credits_pending_cents,
                a.credits_posted_cents,
            )
        )
        and in_range(a.timestamp_ms, TIMESTAMP_MS_MAX)
    )


# `in_range` spelled out for each field: this runs for every transfer, and
# eleven calls of the helper cost more than the comparisons themselves.
def transfer_fields_in_range(t: Transfer) -> bool:
    flags: object = t.flags
    if type(flags) is not int:  # (a decoded transfer's flags are: no call then)
        flags = plain_flags(flags)
    return (
        type(t.id) is int and 0 <= t.id <= ID_MAX
        and type(t.debit_account_id) is int and 0 <= t.debit_account_id <= ID_MAX
        and type(t.credit_account_id) is int and 0 <= t.credit_account_id <= ID_MAX
        and type(t.pending_id) is int and 0 <= t.pending_id <= ID_MAX
        and type(t.amount_cents) is int and 0 <= t.amount_cents <= AMOUNT_MAX_CENTS
        and type(t.ledger) is int and 0 <= t.ledger <= LEDGER_MAX
        and type(t.code) is int and 0 <= t.code <= CODE_MAX
        and type(flags) is int and 0 <= flags <= FLAGS_MAX
        and type(t.timeout_ms) is int and 0 <= t.timeout_ms <= TIMEOUT_MS_MAX
        and type(t.user_data) is int and 0 <= t.user_data <= USER_DATA_MAX
        and type(t.timestamp_ms) is int and 0 <= t.timestamp_ms <= TIMESTAMP_MS_MAX
    )  # fmt: skip


def plain_flags(flags: object) -> object:
    # Flags may be an IntFlag member (a record built in this process): its value.
    return int(flags) if type(flags) is not int and isinstance(flags, enum.IntFlag) else flags


def accounts_fit(
    t: Transfer, dr: Account | None, cr: Account | None
) -> CreateTransferResult | None:
    if dr is None:
        return _TR.DEBIT_ACCOUNT_NOT_FOUND
    if cr is None:
        return _TR.CREDIT_ACCOUNT_NOT_FOUND
    if dr.ledger != cr.ledger:
        return _TR.ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER
    if t.ledger != dr.ledger:
        return _TR.TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS
    return None


def limits_broken(amount_cents: int, dr: Account, cr: Account) -> CreateTransferResult | None:
    """Would moving `amount_cents` from `dr` to `cr` break a bound or a flag?"""
    dr_debits = dr.debits_pending_cents + dr.debits_posted_cents
    cr_credits = cr.credits_pending_cents + cr.credits_posted_cents
    if dr_debits + amount_cents > BALANCE_MAX_CENTS:
        return _TR.OVERFLOWS_DEBITS
    if cr_credits + amount_cents > BALANCE_MAX_CENTS:
        return _TR.OVERFLOWS_CREDITS
    # Pending debits count against the limit (they may still be posted),
    # pending credits do not count for it (they may still be voided).
    if dr.flags & _DEBITS_LIMITED and dr_debits + amount_cents > dr.credits_posted_cents:
        return _TR.EXCEEDS_CREDITS
    if cr.flags & _CREDITS_LIMITED and cr_credits + amount_cents > cr.debits_posted_cents:
        return _TR.EXCEEDS_DEBITS
    return None


def account_exists(a: Account, e: Account) -> CreateAccountResult:
    if a.flags != e.flags:
        return _ATR.EXISTS_WITH_DIFFERENT_FLAGS
    if a.user_data != e.user_data:
        return _ATR.EXISTS_WITH_DIFFERENT_USER_DATA
    if a.ledger != e.ledger:
        return _ATR.EXISTS_WITH_DIFFERENT_LEDGER
    if a.code != e.code:
        return _ATR.EXISTS_WITH_DIFFERENT_CODE
    return _ATR.EXISTS


def transfer_exists(t: Transfer, e: Transfer) -> CreateTransferResult:
    if t.flags != e.flags:
        return _TR.EXISTS_WITH_DIFFERENT_FLAGS
    if t.debit_account_id != e.debit_account_id:
        return _TR.EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID
    if t.credit_account_id != e.credit_account_id:
        return _TR.EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID
    if t.amount_cents != e.amount_cents:
        return _TR.EXISTS_WITH_DIFFERENT_AMOUNT
    if t.user_data != e.user_data:
        return _TR.EXISTS_WITH_DIFFERENT_USER_DATA
    if t.timeout_ms != e.timeout_ms:
        return _TR.EXISTS_WITH_DIFFERENT_TIMEOUT
    if t.code != e.code:
        return _TR.EXISTS_WITH_DIFFERENT_CODE
    # Same accounts, and both transfers matched the accounts' ledger.
    must_hold(t.ledger == e.ledger, f"transfer {t.id} exists in another ledger")
    return _TR.EXISTS


def post_or_void_exists(t: Transfer, e: Transfer, p: Transfer) -> CreateTransferResult:
    """Like `transfer_exists`, for a post or void (0 amount: the full pending one)."""
    if t.flags != e.flags:
        return _TR.EXISTS_WITH_DIFFERENT_FLAGS
    if t.pending_id != e.pending_id:
        return _TR.EXISTS_WITH_DIFFERENT_PENDING_ID
    amount_cents = t.amount_cents if t.amount_cents > 0 else p.amount_cents
    if amount_cents != e.amount_cents:
        return _TR.EXISTS_WITH_DIFFERENT_AMOUNT
    if t.user_data != e.user_data:
        return _TR.EXISTS_WITH_DIFFERENT_USER_DATA
    # The accounts, ledger and code were already checked against the pending
    # transfer, and `e` copied them from that same pending transfer.
    must_hold(
        t.debit_account_id in (0, e.debit_account_id)
        and t.credit_account_id in (0, e.credit_account_id)
        and t.ledger in (0, e.ledger)
        and t.code in (0, e.code),
        f"post {t.id} disagrees with its own pending transfer",
    )
    return _TR.EXISTS


# -- new record values -----------------------------------------------------------
# Records are frozen, so a change is a new value. These build it positionally:
# `dataclasses.replace` costs about four times as much, and they run for every
# transfer. Positional arguments depend on the field order, pinned here so
# that reordering a record's fields fails at import instead of mixing them up.
must_hold(
    Account.__match_args__
    == (
        "id", "ledger", "code", "flags", "user_data",
        "debits_pending_cents", "debits_posted_cents",
        "credits_pending_cents", "credits_posted_cents",
        "timestamp_ms",
    ),
    "Account's fields moved: update the builders below",
)  # fmt: skip
must_hold(
    Transfer.__match_args__
    == (
        "id", "debit_account_id", "credit_account_id", "amount_cents", "ledger", "code",
        "flags", "pending_id", "timeout_ms", "user_data",
        "timestamp_ms",
    ),
    "Transfer's fields moved: update the builders below",
)  # fmt: skip


def debited(a: Account, pending_cents: int, posted_cents: int) -> Account:
    """`a` with the amounts added to its debits."""
    return Account(
        a.id, a.ledger, a.code, a.flags, a.user_data,
        a.debits_pending_cents + pending_cents, a.debits_posted_cents + posted_cents,
        a.credits_pending_cents, a.credits_posted_cents,
        a.timestamp_ms,
    )  # fmt: skip


def credited(a: Account, pending_cents: int, posted_cents: int) -> Account:
    """`a` with the amounts added to its credits."""
    return Account(
        a.id, a.ledger, a.code, a.flags, a.user_data,
        a.debits_pending_cents, a.debits_posted_cents,
        a.credits_pending_cents + pending_cents, a.credits_posted_cents + posted_cents,
        a.timestamp_ms,
    )  # fmt: skip


def stamped_account(a: Account, timestamp_ms: int) -> Account:
    """`a` as the ledger stores it: created at `timestamp_ms`."""
    return Account(
        a.id, a.ledger, a.code, a.flags, a.user_data,
        a.debits_pending_cents, a.debits_posted_cents,
        a.credits_pending_cents, a.credits_posted_cents,
        timestamp_ms,
    )  # fmt: skip


def stamped_transfer(t: Transfer, timestamp_ms: int) -> Transfer:
    """`t` as the ledger stores it: applied at `timestamp_ms`."""
    return Transfer(
        t.id, t.debit_account_id, t.credit_account_id, t.amount_cents, t.ledger, t.code,
        t.flags, t.pending_id, t.timeout_ms, t.user_data,
        timestamp_ms,
    )  # fmt: skip
