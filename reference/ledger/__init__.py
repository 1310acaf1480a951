"""The double-entry ledger: the state machine that chapter 4's Paxos groups replicate.

TigerBeetle's data model in integer cents: accounts with pending and posted
debits and credits, transfers with client-chosen idempotent ids, pending
transfers that are posted, voided or expire, and linked chains that succeed
or fail together. See `state_machine.Ledger` for the rules and
`commands.apply` for the log interface.
"""

from reference.ledger.commands import (
    CreateAccounts,
    CreateTransfers,
    ExpirePending,
    FenceTransfers,
    LookupAccounts,
    LookupTransfers,
    Rejected,
    apply,
)
from reference.ledger.records import (
    Account,
    AccountBalance,
    AccountFlags,
    PendingStatus,
    Transfer,
    TransferFlags,
)
from reference.ledger.results import (
    CreateAccountResult,
    CreateTransferResult,
    FenceTransferResult,
)
from reference.ledger.state_machine import Ledger, LedgerInvariantError

__all__ = [
    "Account",
    "AccountBalance",
    "AccountFlags",
    "CreateAccountResult",
    "CreateAccounts",
    "CreateTransferResult",
    "CreateTransfers",
    "ExpirePending",
    "FenceTransferResult",
    "FenceTransfers",
    "Ledger",
    "LedgerInvariantError",
    "LookupAccounts",
    "LookupTransfers",
    "PendingStatus",
    "Rejected",
    "Transfer",
    "TransferFlags",
    "apply",
]
