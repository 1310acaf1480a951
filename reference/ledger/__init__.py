"""The double-entry ledger that chapter 4's Paxos groups replicate.

TigerBeetle's data model in integer cents: accounts with pending and posted
debits and credits, transfers with client-chosen idempotent ids, pending
transfers that are posted, voided or expire, and linked chains that succeed
or fail together. `domain.Ledger` holds the state and applies the rules
(`rules`); `commands.apply` is the log interface, and `machine.LedgerMachine`
the replicated ledger a Paxos group runs.
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
from reference.ledger.domain import Ledger
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
from reference.ledger.rules import LedgerInvariantError

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
