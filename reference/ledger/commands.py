"""Ledger commands: what travels through the replicated log, and `apply`.

A command is a registered message, so the Paxos log can persist it with the
codec and ship it to every replica. Mutating commands carry the batch's
`timestamp_ms`: the leader reads its clock once, when it proposes, and the
value is replicated with the command, so every replica applies the same
time (the state machine never reads a clock of its own).

`apply(ledger, command)` is the single entry point a replica calls for each
committed command; it returns a codec value (a tuple of result codes or of
records, or `Rejected`) that can be sent back to the client as is.
"""

from __future__ import annotations

from typing import Any

from reference.codec import Message, message
from reference.ledger.domain import BATCH_EVENTS_MAX, Ledger
from reference.ledger.records import ID_MAX, TIMESTAMP_MS_MAX, Account, Transfer

__all__ = [
    "COMMAND_TYPES",
    "CreateAccounts",
    "CreateTransfers",
    "ExpirePending",
    "FenceTransfers",
    "LedgerCommand",
    "LookupAccounts",
    "LookupTransfers",
    "Rejected",
    "apply",
    "malformed",
    "query",
]


@message(name="ledger.CreateAccounts")
class CreateAccounts(Message):
    accounts: tuple[Account, ...]
    timestamp_ms: int


@message(name="ledger.CreateTransfers")
class CreateTransfers(Message):
    transfers: tuple[Transfer, ...]
    timestamp_ms: int


@message(name="ledger.ExpirePending")
class ExpirePending(Message):
    """Advance the logical clock and expire what is due (TigerBeetle's "pulse").

    Without it a pending transfer would only expire when the next batch
    arrives; the leader proposes one when the earliest timeout is due.
    """

    timestamp_ms: int


@message(name="ledger.FenceTransfers")
class FenceTransfers(Message):
    """Settle transfer ids for good: applied, or fenced so they never apply.

    A write, through the log (never a lease read): it records every id the
    ledger does not hold as failed, on every replica at the same point of
    the log. See `Ledger.fence_transfers`.
    """

    ids: tuple[int, ...]


@message(name="ledger.LookupAccounts")
class LookupAccounts(Message):
    """A read through the log: linearizable, at the cost of a round of Paxos."""

    ids: tuple[int, ...]


@message(name="ledger.LookupTransfers")
class LookupTransfers(Message):
    ids: tuple[int, ...]


@message(name="ledger.Rejected")
class Rejected(Message):
    """A command the ledger refused whole, before touching any state.

    It comes from a client, through the log, to every replica: raising
    would crash every replica alike (a poison pill), so a malformed
    command is answered, deterministically, instead.
    """

    reason: str


LedgerCommand = (
    CreateAccounts
    | CreateTransfers
    | ExpirePending
    | FenceTransfers
    | LookupAccounts
    | LookupTransfers
)
COMMAND_TYPES: tuple[type, ...] = (
    CreateAccounts,
    CreateTransfers,
    ExpirePending,
    FenceTransfers,
    LookupAccounts,
    LookupTransfers,
)

# The command classes `malformed` and `query` test for, as tuples built once:
# `isinstance(c, A | B)` builds the union on every call, three times a command.
_STAMPED = (CreateAccounts, CreateTransfers, ExpirePending)  # carry a timestamp_ms
_LOOKUPS = (LookupAccounts, LookupTransfers)
_BY_IDS = (LookupAccounts, LookupTransfers, FenceTransfers)  # carry ids


def apply(ledger: Ledger, command: Any) -> tuple[Any, ...] | Rejected:
    """Apply one committed command; its result is a codec value."""
    reason = malformed(command)
    if reason is not None:
        return Rejected(reason)
    if isinstance(command, CreateTransfers):
        return ledger.create_transfers(command.transfers, command.timestamp_ms)
    if isinstance(command, CreateAccounts):
        return ledger.create_accounts(command.accounts, command.timestamp_ms)
    if isinstance(command, ExpirePending):
        return ledger.expire_pending(command.timestamp_ms)
    if isinstance(command, FenceTransfers):
        return ledger.fence_transfers(command.ids)
    return query(ledger, command)


def query(ledger: Ledger, command: Any) -> tuple[Any, ...] | Rejected:
    """Answer a read-only command (also what a leader serves under its lease)."""
    if isinstance(command, _LOOKUPS):
        reason = malformed(command)
        if reason is not None:
            return Rejected(reason)
        if isinstance(command, LookupAccounts):
            return ledger.lookup_accounts(command.ids)
        return ledger.lookup_transfers(command.ids)
    return Rejected(f"not a ledger query: {type(command).__name__}")


def malformed(command: Any) -> str | None:
    """Why `command` cannot be applied at all, or None. Field values are the
    state machine's business (result codes); shapes and types are checked here."""
    if not isinstance(command, COMMAND_TYPES):
        return f"not a ledger command: {type(command).__name__}"
    if isinstance(command, _STAMPED) and not (
        type(command.timestamp_ms) is int and 0 <= command.timestamp_ms <= TIMESTAMP_MS_MAX
    ):
        return f"timestamp_ms must be an int in [0, {TIMESTAMP_MS_MAX}]"
    events: Any = ()
    kind: type = object
    if isinstance(command, CreateAccounts):
        events, kind = command.accounts, Account
    elif isinstance(command, CreateTransfers):
        events, kind = command.transfers, Transfer
    elif isinstance(command, _BY_IDS):
        events, kind = command.ids, int
    if not isinstance(events, (tuple, list)):  # (a tuple, not `tuple | list`: see _STAMPED)
        return "the batch must be a tuple"
    if len(events) > BATCH_EVENTS_MAX:
        return f"a batch holds at most {BATCH_EVENTS_MAX} events"
    if not set(map(type, events)) <= {kind}:  # (in C: a full read names every account)
        return f"every event of this batch must be a {kind.__name__}"
    if isinstance(command, FenceTransfers) and not all(1 <= i <= ID_MAX for i in events):
        return f"every id must be in [1, {ID_MAX}]"  # a fence must fit a transfer's id
    return None
