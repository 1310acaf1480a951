"""The domain ledger: double-entry accounts and idempotent transfers.

This is the deterministic heart that the Paxos log replicates. Every replica
applies the same batches in the same order and must end in the same state
with the same results, so nothing here may depend on anything but the
commands: no wall clock (a batch carries its own `timestamp_ms`, chosen once
by the leader and replicated with it), no randomness, no floats, no
iteration over a dict or set where the order could leak into the results.

Money moves in exactly one place, `_move`, which adds the same amount to one
account's debits and another's credits; running totals are kept there, and
after every batch the ledger asserts that all debits equal all credits. An
optional audit (`audit=True`, used by the tests and the simulator) rebuilds
every balance from the stored transfers after each batch and checks it
against the accounts, field by field.

The decisions that need only the records in hand (ranges, limits, what a
repeated command finds, the new record values) are pure functions in
`rules`; this module holds the state and applies commands in order. Every
transfer runs through both, so the hot path is written for speed without
giving up a check: flags are tested against plain ints, new record values
are built positionally, and an invariant's message is only formatted when
it fails. Snapshots keep the transfers in sealed segments,
each encoded once (see `snapshot`), so taking and encoding one does not
re-encode the whole history every time.
"""

from __future__ import annotations

import heapq
import itertools
import operator
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from reference.codec import encode_value
from reference.ledger.records import (
    ACCOUNT_FLAGS_KNOWN,
    SEGMENT_TRANSFERS,
    TRANSFER_FLAGS_KNOWN,
    Account,
    AccountBalance,
    AccountFlags,
    LedgerSnapshot,
    PendingStatus,
    Transfer,
    TransferFlags,
    decode_segment,
)
from reference.ledger.results import (
    TRANSIENT_TRANSFER_RESULTS,
    CreateAccountResult,
    CreateTransferResult,
    FenceTransferResult,
)
from reference.ledger.rules import (
    LedgerInvariantError,
    account_exists,
    account_fields_in_range,
    account_within_limits,
    accounts_fit,
    credited,
    debited,
    is_due,
    is_linked,
    limits_broken,
    must_hold,
    post_or_void_exists,
    stamped_account,
    stamped_transfer,
    transfer_exists,
    transfer_fields_in_range,
)
from reference.memos import remember

__all__ = ["BATCH_EVENTS_MAX", "Ledger", "LedgerInvariantError"]

BATCH_EVENTS_MAX = 8190  # TigerBeetle's batch size: one bound on work per command
SNAPSHOT_VERSION = 2  # 2: transfers in sealed, encoded segments plus an open tail

_ATR = CreateAccountResult
_TR = CreateTransferResult
# The flags as plain ints. A decoded record's `flags` is a plain int, and
# `flags & TransferFlags.PENDING` would hand the work to the enum (its
# `__rand__` builds a new flag value): on the hot path that alone cost more
# than all the checks it serves.
_ACCOUNT_LINKED = int(AccountFlags.LINKED)
_DEBITS_LIMITED = int(AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)
_CREDITS_LIMITED = int(AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS)
_BOTH_LIMITS = _DEBITS_LIMITED | _CREDITS_LIMITED
_HISTORY = int(AccountFlags.HISTORY)
_LINKED = int(TransferFlags.LINKED)
_PENDING = int(TransferFlags.PENDING)
_POST = int(TransferFlags.POST_PENDING_TRANSFER)
_VOID = int(TransferFlags.VOID_PENDING_TRANSFER)
_NO_ACCOUNT = Account(0, 0, 0)  # what a missing account holds: every balance 0
_Event = TypeVar("_Event", Account, Transfer)
_Result = TypeVar("_Result", CreateAccountResult, CreateTransferResult)


class Ledger:
    """Accounts, transfers, and the rules that move money between them.

    Public API (each batch call returns one result per event, in order):
    `create_accounts(accounts, timestamp_ms)`, `create_transfers(transfers,
    timestamp_ms)`, `expire_pending(timestamp_ms)`, `fence_transfers(ids)`,
    `lookup_accounts(ids)`, `lookup_transfers(ids)`, `accounts()`, `balances()`,
    `history(account_id)`, `snapshot()` / `restore(value)`. `reference.ledger.commands.apply` maps
    log commands onto these.
    """

    def __init__(self, *, audit: bool = False) -> None:
        self.audit = audit  # full invariant check after every batch (tests, simulation)
        self._accounts: dict[int, Account] = {}
        self._transfers: dict[int, Transfer] = {}  # in apply order
        # For snapshots: the oldest transfers, SEGMENT_TRANSFERS to a segment,
        # each encoded once when sealed. The rest are the open tail (`_tail`).
        self._segments: list[bytes] = []
        self._pending_status: dict[int, PendingStatus] = {}  # pending transfer id -> status
        self._failed: dict[int, CreateTransferResult] = {}  # id -> its transient failure
        self._history: dict[int, list[AccountBalance]] = {}  # accounts flagged HISTORY
        self._expiry: list[tuple[int, int]] = []  # heap of (expires_at_ms, pending id)
        self._clock_ms = 0  # the logical clock: the largest batch timestamp seen
        # Running sums over all accounts of the four balance fields.
        self._debits_pending_cents = 0
        self._debits_posted_cents = 0
        self._credits_pending_cents = 0
        self._credits_posted_cents = 0
        self._undo: list[tuple[str, int, Any]] | None = None  # open while a chain runs

    # -- queries --------------------------------------------------------------
    @property
    def clock_ms(self) -> int:
        return self._clock_ms

    # The scans below are `map`/`filter` over the dicts' own methods rather than
    # generator expressions: a full read asks for every account of the group,
    # and each compaction's snapshot lists them all (two million steps in a
    # minute of chapter 4). Run in C, a scan of 700 accounts costs 52 us
    # instead of 73, and the sorted list 39 instead of 53.
    def lookup_accounts(self, ids: Sequence[int]) -> tuple[Account, ...]:
        """The accounts that exist among `ids`, in the order asked."""
        accounts = self._accounts
        return tuple(map(accounts.__getitem__, filter(accounts.__contains__, ids)))

    def lookup_transfers(self, ids: Sequence[int]) -> tuple[Transfer, ...]:
        """The transfers that exist among `ids`, in the order asked."""
        transfers = self._transfers
        return tuple(map(transfers.__getitem__, filter(transfers.__contains__, ids)))

    def pending_status(self, pending_id: int) -> PendingStatus | None:
        return self._pending_status.get(pending_id)

    def next_expiry_ms(self) -> int | None:
        """When the next pending transfer may expire (None: none has a timeout).

        May be early (an entry left by a rolled-back chain or an already
        resolved transfer): a pulse at that time then expires nothing.
        """
        return self._expiry[0][0] if self._expiry else None

    def accounts(self) -> tuple[Account, ...]:
        """Every account, by id."""
        return tuple(map(self._accounts.__getitem__, sorted(self._accounts)))

    def balances(self) -> dict[int, int]:
        """Account id -> posted balance in cents, `credits_posted - debits_posted`.

        Credit-normal, as a payment platform books a user's wallet: money the
        platform owes the user is a credit. Sorted by id, so two replicas
        render the same dict the same way.
        """
        return {
            i: self._accounts[i].credits_posted_cents - self._accounts[i].debits_posted_cents
            for i in sorted(self._accounts)
        }

    def history(self, account_id: int) -> tuple[AccountBalance, ...]:
        """Balances after each change, for an account flagged `HISTORY`."""
        return tuple(self._history.get(account_id, ()))

    def totals(self) -> tuple[int, int, int, int]:
        """(debits_pending, debits_posted, credits_pending, credits_posted) in cents."""
        return (
            self._debits_pending_cents,
            self._debits_posted_cents,
            self._credits_pending_cents,
            self._credits_posted_cents,
        )

    # -- batches --------------------------------------------------------------
    def create_accounts(
        self, accounts: Sequence[Account], timestamp_ms: int
    ) -> tuple[CreateAccountResult, ...]:
        self._tick(timestamp_ms, len(accounts))
        results = self._run_chains(accounts, _ACCOUNT_LINKED, self._create_account, _ATR.OK, _ATR)
        self._after_batch()
        return results

    def create_transfers(
        self, transfers: Sequence[Transfer], timestamp_ms: int
    ) -> tuple[CreateTransferResult, ...]:
        self._tick(timestamp_ms, len(transfers))
        results = self._run_chains(transfers, _LINKED, self._create_transfer, _TR.OK, _TR)
        if self._tail_count() >= SEGMENT_TRANSFERS:  # one batch in about a thousand
            self._seal_segments()
        self._after_batch()
        return results

    def expire_pending(self, timestamp_ms: int) -> tuple[int, ...]:
        """Advance the clock and expire every pending transfer now due; their ids."""
        expired = self._tick(timestamp_ms, 0)
        self._after_batch()
        return expired

    # --8<-- [start:ledger-fence]
    def fence_transfers(self, ids: Sequence[int]) -> tuple[FenceTransferResult, ...]:
        """Settle transfer ids whose outcome a client never learned, for good.

        `applied` for an id the ledger holds; `failed` for an id that failed
        before; any other id is recorded as failed now (`fenced`), so that a
        create arriving later (a retry still queued somewhere, a proposal a
        new leader recovers from the log) fails with `id_already_failed`.
        Run through the log, the answer is exact and stays true: what is
        applied stays applied, and what is fenced can never be applied.
        """
        must_hold(len(ids) <= BATCH_EVENTS_MAX, f"batch of {len(ids)} ids > {BATCH_EVENTS_MAX}")
        out: list[FenceTransferResult] = []
        for transfer_id in ids:
            if transfer_id in self._transfers:
                out.append(FenceTransferResult.APPLIED)
            elif transfer_id in self._failed:
                fenced = self._failed[transfer_id] == _TR.FENCED
                out.append(FenceTransferResult.FENCED if fenced else FenceTransferResult.FAILED)
            else:
                self._failed[transfer_id] = _TR.FENCED
                out.append(FenceTransferResult.FENCED)
        self._after_batch()
        return tuple(out)

    # --8<-- [end:ledger-fence]

    def _tick(self, timestamp_ms: int, events: int) -> tuple[int, ...]:
        # `must_hold`, inlined: this runs for every batch, and with one
        # transfer a batch, for every transfer.
        if not (isinstance(timestamp_ms, int) and timestamp_ms >= 0):
            raise LedgerInvariantError(f"timestamp {timestamp_ms!r}")
        if events > BATCH_EVENTS_MAX:
            raise LedgerInvariantError(f"batch of {events} events > {BATCH_EVENTS_MAX}")
        # A new leader's clock may be behind the old one's: the logical clock
        # never goes back, so it takes the larger of the two. Every replica
        # sees the same timestamps in the same order, hence the same clock.
        if timestamp_ms > self._clock_ms:
            self._clock_ms = timestamp_ms
        # Expire before the batch: a pending transfer whose time has come is
        # gone before anything in the batch can post it, on every replica alike.
        # (`_expire_due` is only called when one is due: most batches, none is.)
        expiry = self._expiry
        return self._expire_due() if expiry and expiry[0][0] <= self._clock_ms else ()

    def _run_chains(
        self,
        events: Sequence[_Event],
        linked: int,
        create_one: Callable[[Any], _Result],
        ok: _Result,
        codes: Any,
    ) -> tuple[_Result, ...]:
        """Apply a batch, chain by chain: a linked chain succeeds or fails whole.

        An event flagged `linked` chains to the next one; the chain ends at the
        first event without the flag. If any event of a chain fails, every
        change the chain made so far is undone, the failing event reports its
        own result and every other event of the chain `linked_event_failed`.
        A chain still open at the end of the batch is refused whole.
        """
        count = len(events)
        results: list[_Result] = [ok] * count
        start = 0
        while start < count:
            end = start
            while end < count and is_linked(events[end].flags, linked):
                end += 1
            if end == count:  # the last event says "linked": nothing follows it
                results[start:] = [codes.LINKED_EVENT_FAILED] * (end - start)
                results[-1] = codes.LINKED_EVENT_CHAIN_OPEN
                break
            self._undo = []
            for index in range(start, end + 1):
                result = create_one(events[index])
                if result != ok:
                    self._rollback()
                    results[start : end + 1] = [codes.LINKED_EVENT_FAILED] * (end + 1 - start)
                    results[index] = result
                    break
            self._undo = None  # commit: the chain's changes stand
            start = end + 1
        return tuple(results)

    def _rollback(self) -> None:
        undo = self._undo
        must_hold(undo is not None, "rollback outside a chain")
        assert undo is not None
        self._undo = None  # the chain is over: putting the old values back logs nothing
        for table, key, old in reversed(undo):
            if table == "account":
                self._set_account(key, old)
            elif table == "transfer":
                self._remove_transfer(key)
            elif table == "status":
                if old is None:
                    del self._pending_status[key]
                else:
                    self._pending_status[key] = old
            elif table == "history":
                self._history[key].pop()
            elif table == "history_account":
                del self._history[key]
            else:  # pragma: no cover - the tables are this module's own
                raise LedgerInvariantError(f"unknown undo table {table!r}")
        undo.clear()

    # -- accounts -------------------------------------------------------------
    def _create_account(self, a: Account) -> CreateAccountResult:
        if not account_fields_in_range(a):
            return _ATR.FIELD_OUT_OF_RANGE
        if a.timestamp_ms != 0:
            return _ATR.TIMESTAMP_MUST_BE_ZERO
        if a.flags & ~ACCOUNT_FLAGS_KNOWN:
            return _ATR.RESERVED_FLAG
        if a.id == 0:
            return _ATR.ID_MUST_NOT_BE_ZERO
        if a.flags & _BOTH_LIMITS == _BOTH_LIMITS:
            return _ATR.FLAGS_ARE_MUTUALLY_EXCLUSIVE
        if a.debits_pending_cents != 0:
            return _ATR.DEBITS_PENDING_MUST_BE_ZERO
        if a.debits_posted_cents != 0:
            return _ATR.DEBITS_POSTED_MUST_BE_ZERO
        if a.credits_pending_cents != 0:
            return _ATR.CREDITS_PENDING_MUST_BE_ZERO
        if a.credits_posted_cents != 0:
            return _ATR.CREDITS_POSTED_MUST_BE_ZERO
        if a.ledger == 0:
            return _ATR.LEDGER_MUST_NOT_BE_ZERO
        if a.code == 0:
            return _ATR.CODE_MUST_NOT_BE_ZERO
        existing = self._accounts.get(a.id)
        if existing is not None:
            return account_exists(a, existing)
        self._put_account(stamped_account(a, self._clock_ms))
        if a.flags & _HISTORY:
            self._history[a.id] = []
            self._log_undo("history_account", a.id, None)
        return _ATR.OK

    # -- transfers ------------------------------------------------------------
    # --8<-- [start:ledger-transfer]
    def _create_transfer(self, t: Transfer) -> CreateTransferResult:
        """Validate one transfer and apply it, or say precisely why not.

        Checks run in TigerBeetle's order of precedence: first what the event
        says on its own, then what it says about the accounts, then whether
        the id was seen before, and only then the limits. "Seen before" comes
        after the field checks on purpose: a retry of the very same event
        passes them all and reports `exists` (or the same failure again), so a
        client may retry blindly; the same id with other fields is reported as
        the conflict it is.
        """
        if not transfer_fields_in_range(t):
            return _TR.FIELD_OUT_OF_RANGE
        if t.timestamp_ms != 0:
            return _TR.TIMESTAMP_MUST_BE_ZERO
        if t.flags & ~TRANSFER_FLAGS_KNOWN:
            return _TR.RESERVED_FLAG
        if t.id == 0:
            return _TR.ID_MUST_NOT_BE_ZERO
        if t.flags & (_POST | _VOID):
            return self._post_or_void_pending_transfer(t)
        if t.debit_account_id == 0:
            return _TR.DEBIT_ACCOUNT_ID_MUST_NOT_BE_ZERO
        if t.credit_account_id == 0:
            return _TR.CREDIT_ACCOUNT_ID_MUST_NOT_BE_ZERO
        if t.debit_account_id == t.credit_account_id:
            return _TR.ACCOUNTS_MUST_BE_DIFFERENT
        if t.pending_id != 0:
            return _TR.PENDING_ID_MUST_BE_ZERO
        if t.timeout_ms != 0 and not t.flags & _PENDING:
            return _TR.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER
        if t.ledger == 0:
            return _TR.LEDGER_MUST_NOT_BE_ZERO
        if t.code == 0:
            return _TR.CODE_MUST_NOT_BE_ZERO
        if t.amount_cents == 0:
            return _TR.AMOUNT_MUST_NOT_BE_ZERO
        dr = self._accounts.get(t.debit_account_id)
        cr = self._accounts.get(t.credit_account_id)
        result = accounts_fit(t, dr, cr)
        if result is None:
            result = self._seen_before(t, None)
        if result is None:
            assert dr is not None and cr is not None
            result = limits_broken(t.amount_cents, dr, cr)
        if result is not None:
            return self._fail(t.id, result)
        assert dr is not None and cr is not None  # accounts_fit found both

        pending = bool(t.flags & _PENDING)
        self._insert_transfer(stamped_transfer(t, self._clock_ms))
        if pending:
            self._set_status(t.id, PendingStatus.PENDING)
            if t.timeout_ms > 0:
                # Stale entries (a chain rolled back) are skipped when popped.
                heapq.heappush(self._expiry, (self._clock_ms + t.timeout_ms, t.id))
            self._move(t.id, dr.id, cr.id, pending_cents=t.amount_cents, posted_cents=0)
        else:
            self._move(t.id, dr.id, cr.id, pending_cents=0, posted_cents=t.amount_cents)
        return _TR.OK

    def _seen_before(self, t: Transfer, p: Transfer | None) -> CreateTransferResult | None:
        """`exists...` or `id_already_failed` if this id had an outcome already."""
        if t.id in self._failed:
            return _TR.ID_ALREADY_FAILED
        e = self._transfers.get(t.id)
        if e is None:
            return None
        return transfer_exists(t, e) if p is None else post_or_void_exists(t, e, p)

    def _fail(self, transfer_id: int, result: CreateTransferResult) -> CreateTransferResult:
        # Kept even if a linked chain rolls back: the outcome was reported. Not
        # for an id already applied (a retry naming some other, missing account).
        if result in TRANSIENT_TRANSFER_RESULTS and transfer_id not in self._transfers:
            self._failed.setdefault(transfer_id, result)
        return result

    # --8<-- [end:ledger-transfer]

    def _post_or_void_pending_transfer(self, t: Transfer) -> CreateTransferResult:
        """Resolve the pending transfer `t.pending_id`: post it, or void it.

        Posting moves the amount (all of it, or less) from pending to posted
        on both accounts; voiding releases the reservation. Either way the
        full pending amount leaves the pending balances, and the pending
        transfer can never be resolved again.
        """
        post, void = _POST, _VOID
        if (t.flags & post and t.flags & void) or t.flags & _PENDING:
            return _TR.FLAGS_ARE_MUTUALLY_EXCLUSIVE
        if t.pending_id == 0:
            return _TR.PENDING_ID_MUST_NOT_BE_ZERO
        if t.pending_id == t.id:
            return _TR.PENDING_ID_MUST_BE_DIFFERENT
        if t.timeout_ms != 0:
            return _TR.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER
        p = self._transfers.get(t.pending_id)
        if p is None:
            return self._fail(t.id, _TR.PENDING_TRANSFER_NOT_FOUND)
        if not p.flags & _PENDING:
            return _TR.PENDING_TRANSFER_NOT_PENDING
        if t.debit_account_id not in (0, p.debit_account_id):
            return _TR.PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID
        if t.credit_account_id not in (0, p.credit_account_id):
            return _TR.PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID
        if t.ledger not in (0, p.ledger):
            return _TR.PENDING_TRANSFER_HAS_DIFFERENT_LEDGER
        if t.code not in (0, p.code):
            return _TR.PENDING_TRANSFER_HAS_DIFFERENT_CODE
        amount_cents = t.amount_cents if t.amount_cents > 0 else p.amount_cents
        if amount_cents > p.amount_cents:
            return _TR.EXCEEDS_PENDING_TRANSFER_AMOUNT
        if t.flags & void and amount_cents < p.amount_cents:
            return _TR.PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT
        seen = self._seen_before(t, p)
        if seen is not None:
            return seen
        status = self._pending_status[p.id]
        if status == PendingStatus.POSTED:
            return _TR.PENDING_TRANSFER_ALREADY_POSTED
        if status == PendingStatus.VOIDED:
            return _TR.PENDING_TRANSFER_ALREADY_VOIDED
        if status == PendingStatus.EXPIRED:
            return _TR.PENDING_TRANSFER_EXPIRED
        # Expiry ran at the start of this batch, so nothing pending is overdue.
        must_hold(not is_due(p, self._clock_ms), "pending transfer {} overdue", p.id)

        # Stored with the pending transfer's fields filled in, so a lookup
        # shows what really moved.
        self._insert_transfer(
            Transfer(
                id=t.id,
                debit_account_id=p.debit_account_id,
                credit_account_id=p.credit_account_id,
                amount_cents=amount_cents,
                ledger=p.ledger,
                code=p.code,
                flags=t.flags,
                pending_id=t.pending_id,
                timeout_ms=t.timeout_ms,
                user_data=t.user_data,
                timestamp_ms=self._clock_ms,
            )
        )
        posted_cents = amount_cents if t.flags & post else 0
        self._set_status(p.id, PendingStatus.POSTED if t.flags & post else PendingStatus.VOIDED)
        self._move(
            t.id,
            p.debit_account_id,
            p.credit_account_id,
            pending_cents=-p.amount_cents,
            posted_cents=posted_cents,
        )
        return _TR.OK

    def _expire_due(self) -> tuple[int, ...]:
        """Release every pending transfer whose timeout has passed, oldest first."""
        expired: list[int] = []
        while self._expiry and self._expiry[0][0] <= self._clock_ms:
            expires_at_ms, pending_id = heapq.heappop(self._expiry)
            p = self._transfers.get(pending_id)
            if (
                p is None  # created in a linked chain that rolled back
                or self._pending_status.get(pending_id) != PendingStatus.PENDING
                or p.timestamp_ms + p.timeout_ms != expires_at_ms
            ):
                continue
            self._set_status(pending_id, PendingStatus.EXPIRED)
            self._move(
                pending_id,
                p.debit_account_id,
                p.credit_account_id,
                pending_cents=-p.amount_cents,
                posted_cents=0,
            )
            expired.append(pending_id)
        return tuple(expired)

    # -- the only writers -----------------------------------------------------
    def _move(
        self, transfer_id: int, dr_id: int, cr_id: int, *, pending_cents: int, posted_cents: int
    ) -> None:
        """Add the same amounts to one account's debits and another's credits.

        The one place money moves: double entry holds by construction here,
        and the invariant check after the batch proves nothing else moved it.
        """
        if dr_id == cr_id:  # `must_hold`, inlined: this runs for every transfer
            raise LedgerInvariantError(f"transfer {transfer_id} debits and credits one account")
        accounts = self._accounts
        self._put_account(debited(accounts[dr_id], pending_cents, posted_cents))
        self._put_account(credited(accounts[cr_id], pending_cents, posted_cents))
        if not self._history:  # no account keeps a history: the common case
            return
        for account_id in (dr_id, cr_id):
            if account_id in self._history:
                a = self._accounts[account_id]
                self._history[account_id].append(
                    AccountBalance(
                        transfer_id=transfer_id,
                        debits_pending_cents=a.debits_pending_cents,
                        debits_posted_cents=a.debits_posted_cents,
                        credits_pending_cents=a.credits_pending_cents,
                        credits_posted_cents=a.credits_posted_cents,
                        timestamp_ms=self._clock_ms,
                    )
                )
                self._log_undo("history", account_id, None)

    def _put_account(self, account: Account) -> None:
        """Store an account's new value (a move or a creation); keep the totals.

        `_set_account` does the same for a rollback or a restore; this is its
        hot-path copy (twice per transfer): one dict lookup, no calls beyond
        the limit check, the same checks in the same order.
        """
        account_id = account.id
        accounts = self._accounts
        old = accounts.get(account_id, _NO_ACCOUNT)
        if self._undo is not None:  # `_log_undo`, inlined
            self._undo.append(("account", account_id, None if old is _NO_ACCOUNT else old))
        if not account_within_limits(account):  # `must_hold`, inlined
            raise LedgerInvariantError(f"account {account_id} broke its limits")
        accounts[account_id] = account
        # The totals move by the difference of the values written, never by
        # the amount moved: a one-sided entry then shows in the cheap check.
        self._debits_pending_cents += account.debits_pending_cents - old.debits_pending_cents
        self._debits_posted_cents += account.debits_posted_cents - old.debits_posted_cents
        self._credits_pending_cents += account.credits_pending_cents - old.credits_pending_cents
        self._credits_posted_cents += account.credits_posted_cents - old.credits_posted_cents

    def _set_account(self, account_id: int, account: Account | None) -> None:
        """Replace (or, undoing a creation, remove) an account; keep the totals."""
        if account is not None:
            self._put_account(account)
            return
        old = self._accounts.pop(account_id)
        self._debits_pending_cents -= old.debits_pending_cents
        self._debits_posted_cents -= old.debits_posted_cents
        self._credits_pending_cents -= old.credits_pending_cents
        self._credits_posted_cents -= old.credits_posted_cents

    def _insert_transfer(self, t: Transfer) -> None:
        # The heart of idempotence: an id is applied once, ever. (`must_hold`,
        # inlined: this runs for every transfer.)
        transfer_id = t.id
        if transfer_id in self._transfers:
            raise LedgerInvariantError(f"transfer {transfer_id} applied twice")
        if transfer_id in self._failed:
            raise LedgerInvariantError(f"transfer {transfer_id} applied after it failed")
        self._transfers[transfer_id] = t
        if self._undo is not None:  # `_log_undo`, inlined
            self._undo.append(("transfer", transfer_id, None))

    def _remove_transfer(self, transfer_id: int) -> None:
        """Undo `_insert_transfer` (a linked chain rolling back, newest first)."""
        # Segments are sealed between batches only, so what a chain inserted
        # is still in the open tail, and the newest insert is the newest entry.
        newest = next(reversed(self._transfers))
        must_hold(
            newest == transfer_id, "undoing transfer {}, the newest is {}", transfer_id, newest
        )
        must_hold(self._tail_count() > 0, "undoing transfer {}, which is sealed", transfer_id)
        del self._transfers[transfer_id]

    def _tail_count(self) -> int:
        return len(self._transfers) - len(self._segments) * SEGMENT_TRANSFERS

    def _tail(self) -> list[Transfer]:
        """The open tail: the transfers applied since the last seal, oldest first.

        They are the newest entries of `_transfers` (a dict keeps insertion
        order, and a rollback removes the newest), so they need no list of
        their own that could drift from it.
        """
        tail = list(itertools.islice(reversed(self._transfers.values()), self._tail_count()))
        tail.reverse()
        return tail

    def _seal_segments(self) -> None:
        """Seal every full segment of the open tail: encode it, once, for good.

        Called between batches only, never inside a linked chain, so what is
        sealed can no longer be rolled back. Which transfers share a segment
        depends only on the apply order (segment k holds transfers number
        k * SEGMENT_TRANSFERS onwards), so replicas that applied the same
        batches seal the same segments into the same bytes.
        """
        must_hold(self._undo is None, "sealing inside a linked chain")
        tail = self._tail()
        for start in range(0, len(tail) - SEGMENT_TRANSFERS + 1, SEGMENT_TRANSFERS):
            segment = tuple(tail[start : start + SEGMENT_TRANSFERS])
            blob = _encoded_segment(segment)
            _remember_segment(blob, segment)
            self._segments.append(blob)
        must_hold(0 <= self._tail_count() < SEGMENT_TRANSFERS, "a full segment left unsealed")

    def _set_status(self, pending_id: int, status: PendingStatus) -> None:
        self._log_undo("status", pending_id, self._pending_status.get(pending_id))
        self._pending_status[pending_id] = status

    def _log_undo(self, table: str, key: int, old: Any) -> None:
        if self._undo is not None:  # outside a chain there is nothing to undo
            self._undo.append((table, key, old))

    # --8<-- [start:ledger-invariant]
    def _after_batch(self) -> None:
        """The invariants, asserted after every batch; all of them in audit mode.

        Cheap, always: the running totals balance (all debits, pending and
        posted, equal all credits). In audit mode, the full proof: every
        balance of every account is recomputed from the stored transfers and
        their pending statuses, the running totals are recomputed from the
        accounts, and every account is within its flag limits.
        """
        must_hold(self._undo is None, "a linked chain was left open")
        must_hold(
            self._debits_pending_cents == self._credits_pending_cents,
            "pending debits {} != credits {}",
            self._debits_pending_cents,
            self._credits_pending_cents,
        )
        must_hold(
            self._debits_posted_cents == self._credits_posted_cents,
            "posted debits {} != credits {}",
            self._debits_posted_cents,
            self._credits_posted_cents,
        )
        if self.audit:
            self.check_invariants()

    def check_invariants(self) -> None:
        """Recompute everything from the transfers; raise `LedgerInvariantError`."""
        derived = {i: [0, 0, 0, 0] for i in self._accounts}  # dp, dpo, cp, cpo
        applied_ms = 0  # stored in apply order, so in the order of the logical clock
        for t in self._transfers.values():
            must_hold(
                applied_ms <= t.timestamp_ms <= self._clock_ms, "transfer {} out of order", t.id
            )
            applied_ms = t.timestamp_ms
            must_hold(t.debit_account_id in derived, "transfer {}: unknown debit account", t.id)
            must_hold(t.credit_account_id in derived, "transfer {}: unknown credit account", t.id)
            dr, cr = derived[t.debit_account_id], derived[t.credit_account_id]
            if t.flags & _PENDING:
                status = self._pending_status.get(t.id)
                must_hold(status is not None, "pending transfer {} has no status", t.id)
                if status == PendingStatus.PENDING:
                    dr[0] += t.amount_cents
                    cr[2] += t.amount_cents
            elif t.flags & _POST:
                must_hold(
                    self._pending_status.get(t.pending_id) == PendingStatus.POSTED,
                    "post {} of a pending transfer not marked posted",
                    t.id,
                )
                dr[1] += t.amount_cents
                cr[3] += t.amount_cents
            elif not t.flags & _VOID:
                dr[1] += t.amount_cents
                cr[3] += t.amount_cents
        sums = [0, 0, 0, 0]
        for account_id, account in self._accounts.items():
            actual = [
                account.debits_pending_cents,
                account.debits_posted_cents,
                account.credits_pending_cents,
                account.credits_posted_cents,
            ]
            must_hold(
                actual == derived[account_id],
                f"account {account_id}: balances {actual} but its transfers say "
                f"{derived[account_id]}",
            )
            must_hold(account_within_limits(account), f"account {account_id} broke its limits")
            sums = [s + x for s, x in zip(sums, actual, strict=True)]
        must_hold(sums == list(self.totals()), f"running totals {self.totals()} != sums {sums}")
        must_hold(sums[0] == sums[2] and sums[1] == sums[3], f"debits != credits: {sums}")
        must_hold(
            not (self._failed.keys() & self._transfers.keys()), "an id both failed and applied"
        )
        for pending_id, status in self._pending_status.items():
            p = self._transfers.get(pending_id)
            must_hold(p is not None and bool(p.flags & _PENDING), "stray status")
            assert p is not None
            if status == PendingStatus.PENDING:
                must_hold(not is_due(p, self._clock_ms), "pending transfer {} overdue", pending_id)
        # Snapshots see the oldest transfers as sealed segments, the rest as
        # the open tail, which is never a full segment between batches.
        must_hold(0 <= self._tail_count() < SEGMENT_TRANSFERS, "segments disagree with transfers")

    # --8<-- [end:ledger-invariant]

    # -- snapshots --------------------------------------------------------------
    def snapshot(self) -> LedgerSnapshot:
        """The whole state as one frozen, hashable codec value.

        Canonical: accounts, pending statuses, failed ids and histories sorted
        by id, transfers in apply order (the sealed segments, then the open
        tail). Replicas that applied the same batches in the same order make
        equal snapshots, byte for byte, which is what lets a test, or a
        replica, compare them.

        Its cost barely grows with the transfers applied: each sealed segment
        is already bytes, encoded once when it was sealed and shared by every
        snapshot since (encoding the snapshot only base64s it, in C), and the
        tail holds fewer than SEGMENT_TRANSFERS transfers. The other fields
        hold an entry per account, pending transfer, failed id and history row.
        """
        must_hold(self._undo is None, "snapshot inside a linked chain")
        return LedgerSnapshot(
            version=SNAPSHOT_VERSION,
            clock_ms=self._clock_ms,
            accounts=self.accounts(),
            segments=tuple(self._segments),
            tail=tuple(self._tail()),
            pending=tuple((i, str(self._pending_status[i])) for i in sorted(self._pending_status)),
            failed=tuple((i, str(self._failed[i])) for i in sorted(self._failed)),
            history=tuple((i, tuple(self._history[i])) for i in sorted(self._history)),
        )

    def restore(self, value: LedgerSnapshot) -> None:
        """Replace the whole state with a `snapshot()` value, then audit it.

        Raises `ValueError` if `value` is not a snapshot of this version, or a
        segment or transfer in it is malformed, and `LedgerInvariantError` if
        the state it holds breaks an invariant; either way nothing changes.
        """
        if not isinstance(value, LedgerSnapshot) or value.version != SNAPSHOT_VERSION:
            raise ValueError(f"not a ledger snapshot (version {SNAPSHOT_VERSION})")
        fresh = Ledger(audit=self.audit)
        fresh._clock_ms = value.clock_ms
        for account in value.accounts:
            fresh._set_account(account.id, account)
        for index, blob in enumerate(value.segments):
            _add_transfers(fresh._transfers, _checked_segment(blob, index))
        _restore_transfers(fresh._transfers, value.tail)
        fresh._segments = list(value.segments)
        for pending_id, status in value.pending:
            fresh._pending_status[pending_id] = PendingStatus(status)
            p = fresh._transfers.get(pending_id)  # missing: `check_invariants` says so
            if p is not None and status == PendingStatus.PENDING and p.timeout_ms > 0:
                fresh._expiry.append((p.timestamp_ms + p.timeout_ms, pending_id))
        heapq.heapify(fresh._expiry)
        fresh._failed = {i: CreateTransferResult(r) for i, r in value.failed}
        fresh._history = {i: list(h) for i, h in value.history}
        fresh.check_invariants()  # rare and decisive: always the full check
        self.__dict__.update(fresh.__dict__)


# Segments this process sealed or checked, by their bytes, most recently used
# last (see `_checked_segment`). Bounded: a segment's bytes are about 200 kB.
SEGMENTS_REMEMBERED = 128
_segments_known: dict[bytes, tuple[Transfer, ...]] = {}


def _remember_segment(blob: bytes, segment: tuple[Transfer, ...]) -> None:
    remember(_segments_known, blob, segment, SEGMENTS_REMEMBERED)


def _encoded_segment(segment: tuple[Transfer, ...]) -> bytes:
    """`encode_value(segment)`, or the bytes of an equal segment sealed before here.

    Each replica of a group seals the same segment, as transfers of its own
    that are equal, not the same objects: encoding each once per process,
    not once per replica, saves two encodings in three (in a minute of
    chapter 4, 127 encodings of 1,024 transfers, 0.24 s of CPU). Equal
    transfers encode to equal bytes, and the comparison is exact, so a
    replica that applied something else seals bytes of its own.
    """
    ends = (segment[0].id, segment[-1].id)
    known = _sealed_by_ends.get(ends)
    if known is not None and known[0] == segment:
        return known[1]
    blob = encode_value(segment)
    remember(_sealed_by_ends, ends, (segment, blob), SEGMENTS_REMEMBERED)
    return blob


# Segments this process sealed, by the ids of their first and last transfers.
_sealed_by_ends: dict[tuple[int, int], tuple[tuple[Transfer, ...], bytes]] = {}


def _checked_segment(blob: bytes, index: int) -> tuple[Transfer, ...]:
    """The transfers sealed in `blob`, segment `index` of a snapshot being restored.

    The blob is kept, not re-encoded, so later snapshots share it: it must be
    exactly what sealing makes, or two replicas in the same state could
    disagree byte for byte. So it is decoded and encoded again, unless this
    process sealed or checked the very same bytes before: a segment is
    immutable bytes that decode to immutable transfers, and the simulator
    restores the same segments on each replica of a group after each crash
    (in a minute of chapter 4 under faults, 14 restores decoded and encoded
    133 segments again: 2.3 s of the 90 s of simulation under cProfile).

    So are its transfers' fields checked, once, here: a segment remembered
    is one whose transfers passed that check (when decoded) or were applied
    by a ledger of this process (when sealed), and checking 136,000 of them
    again in a minute of chapter 4 was a third of its restores' time.
    """
    known = _segments_known.get(blob) if type(blob) is bytes else None
    if known is not None and len(known) == SEGMENT_TRANSFERS:
        _remember_segment(blob, known)
        return known
    segment = decode_segment(blob, index)
    if encode_value(segment) != blob:
        raise ValueError(f"snapshot segment {index} is not in canonical form")
    _check_fields(segment)
    _remember_segment(blob, segment)
    return segment


def _restore_transfers(into: dict[int, Transfer], transfers: Sequence[Transfer]) -> None:
    """Add a snapshot's transfers, in apply order; `ValueError` on a bad or repeated one."""
    _check_fields(transfers)
    _add_transfers(into, transfers)


def _check_fields(transfers: Sequence[Transfer]) -> None:
    """`ValueError` unless each of `transfers` is a `Transfer` with its fields in range."""
    for t in transfers:
        if type(t) is not Transfer or not transfer_fields_in_range(t):
            raise ValueError(f"snapshot holds a malformed transfer: {t!r:.120}")


def _add_transfers(into: dict[int, Transfer], transfers: Sequence[Transfer]) -> None:
    """Add checked transfers, in apply order; `ValueError` on a repeated id (looked for in C)."""
    ids = list(map(_TRANSFER_ID, transfers))
    if len(set(ids)) != len(ids) or not into.keys().isdisjoint(ids):
        seen = set(into)
        for i in ids:
            if i in seen:
                raise ValueError(f"snapshot holds transfer {i} twice")
            seen.add(i)
    into.update(zip(ids, transfers, strict=True))


_TRANSFER_ID = operator.attrgetter("id")
