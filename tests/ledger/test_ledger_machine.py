"""The Paxos adapter: the ledger under `reference.paxos.ReplicatedState`."""

from __future__ import annotations

import pytest

from reference.codec import decode_value, encode_value
from reference.ledger import (
    Account,
    CreateAccounts,
    CreateTransfers,
    LookupAccounts,
    Rejected,
    Transfer,
)
from reference.ledger.machine import LedgerMachine

paxos = pytest.importorskip("reference.paxos.replicated_state")


def test_replicated_state_applies_ledger_batches_and_dedups_retries() -> None:
    state = paxos.ReplicatedState(LedgerMachine(audit=True), dedup_max=16)
    accounts = CreateAccounts((Account(1, 1, 1), Account(2, 1, 1)), 5)
    pay = CreateTransfers((Transfer(10, 1, 2, 300, 1, 1),), 6)
    out = state.apply_batch(1, (("r1", accounts), ("r2", pay)))
    assert [r for _, r in out] == [("ok", "ok"), ("ok",)]
    # The same request chosen again (a retry after a leader change): the
    # first result, nothing applied twice.
    again = state.apply_batch(2, (("r2", pay),))
    assert again == [("r2", ("ok",))]
    # The same transfer under a new request id: the ledger's own idempotence.
    assert state.apply_batch(3, (("r3", pay),)) == [("r3", ("exists",))]
    (payer,) = state.machine.read(LookupAccounts((1,)))
    assert payer.debits_posted_cents == 300
    assert isinstance(state.machine.read(pay), Rejected)  # writes never go through read

    copy = paxos.ReplicatedState(LedgerMachine(audit=True), dedup_max=16)
    copy.restore(decode_value(encode_value(state.snapshot())))
    assert encode_value(copy.snapshot()) == encode_value(state.snapshot())
