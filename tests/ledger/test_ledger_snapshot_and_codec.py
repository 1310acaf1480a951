"""Snapshots, the codec, determinism, and the `apply` entry point."""

from __future__ import annotations

import dataclasses

import pytest

from reference.codec import decode, decode_value, encode, encode_value
from reference.ledger import (
    Account,
    AccountFlags,
    CreateAccounts,
    CreateTransferResult,
    CreateTransfers,
    ExpirePending,
    Ledger,
    LookupAccounts,
    LookupTransfers,
    Rejected,
    Transfer,
    TransferFlags,
    apply,
)
from reference.ledger.domain import BATCH_EVENTS_MAX
from reference.ledger.rules import LedgerInvariantError

R = CreateTransferResult
PENDING = TransferFlags.PENDING
LINKED = TransferFlags.LINKED

COMMANDS = [
    CreateAccounts(
        (
            Account(1, 1, 1, flags=AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS | 8),
            Account(2, 1, 1),
            Account(3, 1, 1, flags=AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS),
        ),
        timestamp_ms=10,
    ),
    CreateTransfers((Transfer(1, 2, 1, 500, 1, 1),), timestamp_ms=11),
    CreateTransfers(
        (
            Transfer(2, 1, 2, 100, 1, 1, flags=PENDING, timeout_ms=30),
            Transfer(3, 1, 2, 100, 1, 1, flags=PENDING),
            Transfer(4, 1, 2, 50, 1, 1, flags=LINKED),
            Transfer(5, 3, 2, 10, 1, 1),
            Transfer(6, 1, 2, 10_000, 1, 1),  # fails: remembered
        ),
        timestamp_ms=12,
    ),
    LookupAccounts((1, 99, 2)),
    LookupTransfers((4, 5, 6)),
]


def run(commands: list[object]) -> tuple[Ledger, list[object]]:
    ledger = Ledger(audit=True)
    return ledger, [apply(ledger, c) for c in commands]


def test_commands_and_results_round_trip_through_the_codec() -> None:
    ledger = Ledger(audit=True)
    for command in COMMANDS:
        assert decode(encode(command)) == command
        result = apply(ledger, command)
        assert decode_value(encode_value(result)) == result


def test_lookups_through_apply() -> None:
    _, results = run(COMMANDS)
    assert [a.id for a in results[3]] == [1, 2]
    assert [t.id for t in results[4]] == [4, 5]
    assert results[2] == (R.OK, R.OK, R.OK, R.OK, R.EXCEEDS_CREDITS)


def test_snapshot_restore_round_trip_equals_the_original() -> None:
    original, _ = run(COMMANDS)
    raw = encode_value(original.snapshot())
    copy = Ledger(audit=True)
    copy.restore(decode_value(raw))
    assert encode_value(copy.snapshot()) == raw
    assert copy.snapshot() == original.snapshot()
    # Frozen and hashable: the Paxos explorer dedups states on it.
    assert hash(copy.snapshot()) == hash(original.snapshot())
    assert copy.balances() == original.balances()
    # And both carry on identically, expiry and failed ids included.
    later = [
        ExpirePending(50),
        CreateTransfers((Transfer(6, 1, 2, 1, 1, 1), Transfer(7, 1, 2, 1, 1, 1)), 51),
    ]
    assert [apply(copy, c) for c in later] == [apply(original, c) for c in later]
    assert copy.snapshot() == original.snapshot()
    assert copy.history(1) == original.history(1) != ()


def test_restore_refuses_a_corrupt_snapshot() -> None:
    original, _ = run(COMMANDS)
    snap = original.snapshot()
    with pytest.raises(ValueError, match="not a ledger snapshot"):
        Ledger().restore(dataclasses.replace(snap, version=99))
    # A snapshot whose balances disagree with its transfers.
    bad_account = snap.accounts[0]
    tampered = dataclasses.replace(
        snap,
        accounts=(
            dataclasses.replace(
                bad_account, credits_posted_cents=bad_account.credits_posted_cents + 1
            ),
            *snap.accounts[1:],
        ),
    )
    with pytest.raises(LedgerInvariantError):
        Ledger().restore(tampered)


def test_same_commands_same_state_and_results() -> None:
    a, results_a = run(COMMANDS)
    b, results_b = run(COMMANDS)
    assert results_a == results_b
    assert encode_value(a.snapshot()) == encode_value(b.snapshot())


def test_apply_rejects_malformed_commands_without_touching_state() -> None:
    """A bad command reaches every replica through the log: answered, not raised."""
    ledger, _ = run(COMMANDS)
    before = encode_value(ledger.snapshot())
    bad = [
        ("transfer", 1, 2),
        CreateTransfers((Transfer(9, 1, 2, 1, 1, 1),), timestamp_ms=1.5),  # type: ignore[arg-type]
        CreateTransfers((Transfer(9, 1, 2, 1, 1, 1),) * (BATCH_EVENTS_MAX + 1), 20),
        CreateTransfers((Account(9, 1, 1),), 20),  # type: ignore[arg-type]
        CreateAccounts("nope", 20),  # type: ignore[arg-type]
        LookupAccounts((1, "2")),  # type: ignore[arg-type]
    ]
    for command in bad:
        result = apply(ledger, command)
        assert isinstance(result, Rejected), command
        assert decode_value(encode_value(result)) == result
    assert encode_value(ledger.snapshot()) == before


def test_values_of_the_wrong_type_are_refused_as_out_of_range() -> None:
    ledger, _ = run(COMMANDS)
    results = ledger.create_transfers(
        [
            Transfer(20, 1, 2, 1.5, 1, 1),  # type: ignore[arg-type]
            Transfer(True, 1, 2, 1, 1, 1),
            Transfer(21, 1, 2, 1, 1, 1, flags=-1),
            Transfer(22, 1, 2, 1, 1, 1, flags=1.0),  # type: ignore[arg-type]
        ],
        20,
    )
    assert results == (R.FIELD_OUT_OF_RANGE,) * 4


def test_the_ledger_itself_asserts_its_batch_bound() -> None:
    with pytest.raises(LedgerInvariantError):
        Ledger().create_accounts([Account(1, 1, 1)] * (BATCH_EVENTS_MAX + 1), 0)
