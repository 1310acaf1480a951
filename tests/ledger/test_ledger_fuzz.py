"""No event, however malformed, makes the ledger raise: a poison pill in the
replicated log would stop every replica at once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reference.ledger import Account, CreateTransfers, Ledger, Transfer, apply

junk = st.one_of(
    st.integers(-3, 5),
    st.integers(min_value=2**60, max_value=2**130),
    st.floats(allow_nan=True),
    st.none(),
    st.booleans(),
    st.text(max_size=2),
)
transfers = st.builds(
    Transfer,
    id=junk,
    debit_account_id=junk,
    credit_account_id=junk,
    amount_cents=junk,
    ledger=junk,
    code=junk,
    flags=junk,
    pending_id=junk,
    timeout_ms=junk,
    user_data=junk,
    timestamp_ms=junk,
)
accounts = st.builds(
    Account,
    id=junk,
    ledger=junk,
    code=junk,
    flags=junk,
    user_data=junk,
    debits_pending_cents=junk,
    debits_posted_cents=junk,
    credits_pending_cents=junk,
    credits_posted_cents=junk,
    timestamp_ms=junk,
)


@given(st.lists(accounts, max_size=4), st.lists(transfers, max_size=6))
def test_malformed_events_are_refused_never_raised(
    account_batch: list[Account], transfer_batch: list[Transfer]
) -> None:
    ledger = Ledger(audit=True)
    ledger.create_accounts([Account(1, 1, 1), Account(2, 1, 1)], 0)
    assert len(ledger.create_accounts(account_batch, 1)) == len(account_batch)
    result = apply(ledger, CreateTransfers(tuple(transfer_batch), 2))
    assert len(result) == len(transfer_batch)
    ledger.check_invariants()
