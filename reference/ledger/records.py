"""The ledger's records: accounts, transfers and their flags (TigerBeetle's model).

Every amount is an integer number of cents: a float cannot hold 0.10 exactly,
and a ledger that rounds is a ledger that leaks. Every record is a frozen,
registered message, so a batch of them travels through the Paxos log and over
the wire unchanged, and a record once stored can never be edited in place:
the state machine replaces an account with a new value, which is also what
makes rolling back a linked chain a matter of putting the old values back.

Wire names carry a `ledger.` prefix because the codec registry is global and
other areas of the system have accounts and transfers of their own.
"""

from __future__ import annotations

import enum

from reference.codec import CodecError, Message, decode_value, message

__all__ = [
    "AMOUNT_MAX_CENTS",
    "BALANCE_MAX_CENTS",
    "CODE_MAX",
    "FLAGS_MAX",
    "ID_MAX",
    "LEDGER_MAX",
    "SEGMENT_TRANSFERS",
    "TIMEOUT_MS_MAX",
    "TIMESTAMP_MS_MAX",
    "USER_DATA_MAX",
    "Account",
    "AccountBalance",
    "AccountFlags",
    "LedgerSnapshot",
    "PendingStatus",
    "Transfer",
    "TransferFlags",
    "decode_segment",
]

# Bounds on every integer field. TigerBeetle's fields are fixed-width unsigned
# integers; Python's are unbounded, so the bounds are stated here instead and
# any field outside them is refused (`field_out_of_range`). Balances fit a
# signed 64-bit SQL column, so the chapters' SQL stores can mirror them.
ID_MAX = 2**128 - 2  # 0 and 2**128 - 1 are reserved, as in TigerBeetle
BALANCE_MAX_CENTS = 2**63 - 1
AMOUNT_MAX_CENTS = BALANCE_MAX_CENTS
LEDGER_MAX = 2**32 - 1
CODE_MAX = 2**16 - 1
USER_DATA_MAX = 2**64 - 1
TIMEOUT_MS_MAX = 2**32 - 1  # about 49 days of logical time
TIMESTAMP_MS_MAX = 2**63 - 1
FLAGS_MAX = 2**16 - 1


class AccountFlags(enum.IntFlag):
    """Bits of `Account.flags`."""

    NONE = 0
    LINKED = 1 << 0  # this event and the next succeed or fail together
    DEBITS_MUST_NOT_EXCEED_CREDITS = 1 << 1  # e.g. a user's wallet: no overdraft
    CREDITS_MUST_NOT_EXCEED_DEBITS = 1 << 2  # e.g. a credit line with a limit
    HISTORY = 1 << 3  # keep the balances after every transfer that touches it


ACCOUNT_FLAGS_KNOWN = int(
    AccountFlags.LINKED
    | AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
    | AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS
    | AccountFlags.HISTORY
)


class TransferFlags(enum.IntFlag):
    """Bits of `Transfer.flags`.

    "Pending", not "two-phase": TigerBeetle renamed these transfers because
    two-phase commit is a different thing, and in a book about payments and
    consensus the two must never be confused. A pending transfer reserves the
    amount; a later transfer posts it (all of it or less) or voids it, or the
    ledger expires it when its timeout passes.
    """

    NONE = 0
    LINKED = 1 << 0
    PENDING = 1 << 1
    POST_PENDING_TRANSFER = 1 << 2
    VOID_PENDING_TRANSFER = 1 << 3


TRANSFER_FLAGS_KNOWN = int(
    TransferFlags.LINKED
    | TransferFlags.PENDING
    | TransferFlags.POST_PENDING_TRANSFER
    | TransferFlags.VOID_PENDING_TRANSFER
)


class PendingStatus(enum.StrEnum):
    """What became of a pending transfer. Only `PENDING` holds money reserved."""

    PENDING = "pending"
    POSTED = "posted"
    VOIDED = "voided"
    EXPIRED = "expired"


@message(name="ledger.Account")
class Account(Message):
    """An account: an id, the ledger (currency) it lives in, and four balances.

    Double entry: a transfer of `x` cents adds `x` to the debits of one
    account and to the credits of another, so across all accounts the debits
    always equal the credits. Pending amounts are reserved but not yet final.
    A client creates an account with every balance and `timestamp_ms` at 0;
    the ledger owns those fields.
    """

    id: int
    ledger: int  # which currency/book: transfers never cross ledgers
    code: int  # what kind of account (user wallet, merchant, settlement, ...)
    flags: int = 0  # AccountFlags
    user_data: int = 0  # free for the client, e.g. a user id
    debits_pending_cents: int = 0
    debits_posted_cents: int = 0
    credits_pending_cents: int = 0
    credits_posted_cents: int = 0
    timestamp_ms: int = 0  # set by the ledger: logical time of creation


@message(name="ledger.Transfer")
class Transfer(Message):
    """Move `amount_cents` from `debit_account_id` to `credit_account_id`.

    The id is chosen by the client, once per payment, and is what makes a
    retry safe: the ledger applies an id at most once. To post or void a
    pending transfer, set the flag and `pending_id`; the account ids, ledger
    and code may then be 0 (they are taken from the pending transfer), and an
    amount of 0 on a post means "post the full pending amount".
    """

    id: int
    debit_account_id: int
    credit_account_id: int
    amount_cents: int
    ledger: int
    code: int
    flags: int = 0  # TransferFlags
    pending_id: int = 0  # the pending transfer that this one posts or voids
    timeout_ms: int = 0  # pending only: expire after this much logical time (0: never)
    user_data: int = 0  # free for the client, e.g. an order id
    timestamp_ms: int = 0  # set by the ledger: logical time it was applied


@message(name="ledger.AccountBalance")
class AccountBalance(Message):
    """An account's balances after one transfer (accounts flagged `HISTORY`)."""

    transfer_id: int  # the transfer (or the expired pending one) that changed them
    debits_pending_cents: int
    debits_posted_cents: int
    credits_pending_cents: int
    credits_posted_cents: int
    timestamp_ms: int


# How many transfers a sealed snapshot segment holds. Transfers never change
# once applied, so a snapshot carries them as segments each encoded once, when
# sealed: encoding a snapshot then copies bytes already made (base64, in C:
# ~0.6 ms per 1,000 transfers) instead of encoding every record again (~5 ms
# per 1,000: 150 ms at 30,000 transfers, a stall of the replica every time).
# Sealing 1,024 costs ~2 ms, once, and the open tail a snapshot still encodes
# record by record stays under 1,024 transfers. A count, not a time or a size
# in bytes: where a segment ends must depend on the apply order alone, so
# that every replica seals the same segments.
SEGMENT_TRANSFERS = 1024


@message(name="ledger.LedgerSnapshot")
class LedgerSnapshot(Message):
    """The whole ledger, for log compaction and catch-up (`Ledger.snapshot`).

    The transfers, in apply order, are split in two: `segments`, each the
    codec encoding (`encode_value`) of a tuple of exactly SEGMENT_TRANSFERS
    transfers, sealed once and never re-encoded, then `tail`, the fewer than
    SEGMENT_TRANSFERS applied since the last seal, as records. `transfers`
    decodes the segments and returns them all, for readers that want them.
    """

    version: int
    clock_ms: int
    accounts: tuple[Account, ...]
    segments: tuple[bytes, ...]  # sealed segments: encode_value(tuple of transfers)
    tail: tuple[Transfer, ...]  # applied since the last seal, in apply order
    pending: tuple[tuple[int, str], ...]  # (pending transfer id, PendingStatus)
    failed: tuple[tuple[int, str], ...]  # (transfer id, its transient failure)
    history: tuple[tuple[int, tuple[AccountBalance, ...]], ...]  # (account id, balances)

    @property
    def transfers(self) -> tuple[Transfer, ...]:
        """Every transfer, in apply order: the decoded segments, then the tail.

        Decodes every segment on each call (O(history)): for tests, tools
        and checkers, not for the replica's hot path.
        """
        sealed = (t for i, blob in enumerate(self.segments) for t in decode_segment(blob, i))
        return (*sealed, *self.tail)


def decode_segment(blob: bytes, index: int) -> tuple[Transfer, ...]:
    """The transfers in `LedgerSnapshot.segments[index]`, which is `blob`.

    Raises `ValueError` if `blob` is not the encoding of exactly
    SEGMENT_TRANSFERS transfers: a snapshot read from a disk or a peer may
    be damaged, and restoring from it must fail loudly.
    """
    if type(blob) is not bytes:
        raise ValueError(f"snapshot segment {index} is {type(blob).__name__}, not bytes")
    try:
        segment = decode_value(blob)
    except CodecError as exc:
        raise ValueError(f"snapshot segment {index} does not decode: {exc}") from None
    if (
        type(segment) is not tuple
        or len(segment) != SEGMENT_TRANSFERS
        or not all(type(t) is Transfer for t in segment)
    ):
        raise ValueError(f"snapshot segment {index} is not {SEGMENT_TRANSFERS} transfers")
    return segment
