"""Shared test helpers: a small funded ledger that the unit tests start from."""

from __future__ import annotations

from reference.ledger import Account, AccountFlags, CreateTransferResult, Ledger, Transfer

WALLET = 1  # a user's wallet: may not spend more than it holds
BANK = 2  # the outside world: no limits
CREDIT_LINE = 3  # credits may not exceed debits
OTHER_LEDGER = 4  # another currency
T0_MS = 1_000


def transfer(id: int, dr: int, cr: int, amount_cents: int, **fields: int) -> Transfer:
    """A transfer in ledger 1 with code 1, unless `fields` say otherwise."""
    fields.setdefault("ledger", 1)
    fields.setdefault("code", 1)
    return Transfer(id, dr, cr, amount_cents, **fields)


def funded_ledger() -> Ledger:
    """Wallet holds 1000 cents (funded from the bank); every account in ledger 1
    except OTHER_LEDGER. Transfer id 1 is taken by the funding transfer."""
    ledger = Ledger(audit=True)
    ledger.create_accounts(
        [
            Account(WALLET, 1, 1, flags=AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS),
            Account(BANK, 1, 1),
            Account(CREDIT_LINE, 1, 1, flags=AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS),
            Account(OTHER_LEDGER, 2, 1),
        ],
        T0_MS,
    )
    assert ledger.create_transfers([transfer(1, BANK, WALLET, 1_000)], T0_MS) == (
        CreateTransferResult.OK,
    )
    return ledger
