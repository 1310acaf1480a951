"""Hypothesis drives the ledger and a plain reference model side by side.

The model is written the simplest way that could be right: balances in
lists, a linked chain applied to a deep copy that is kept or thrown away
(the ledger itself uses an undo log), expiry by scanning everything. After
every step the results, the balances, the stored transfers and the
invariants must agree. Ids are drawn from a small range so that retries,
conflicting reuses and posts of unknown pending transfers happen often.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from reference.codec import decode_value, encode_value
from reference.ledger import (
    Account,
    AccountFlags,
    CreateTransferResult,
    Ledger,
    Transfer,
    TransferFlags,
)

R = CreateTransferResult
D_LIMIT = int(AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)
C_LIMIT = int(AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS)
LINKED = int(TransferFlags.LINKED)
PENDING = int(TransferFlags.PENDING)
POST = int(TransferFlags.POST_PENDING_TRANSFER)
VOID = int(TransferFlags.VOID_PENDING_TRANSFER)
ACCOUNT_IDS = range(1, 6)  # 6 is never created: "not found" paths
BANK = 5  # no limits: the source of funding transfers


@dataclass
class Model:
    balances: dict[int, list[int]] = field(default_factory=dict)  # dp, dpo, cp, cpo
    flags: dict[int, int] = field(default_factory=dict)
    transfers: dict[int, Transfer] = field(default_factory=dict)
    status: dict[int, str] = field(default_factory=dict)
    failed: set[int] = field(default_factory=set)
    clock_ms: int = 0

    def tick(self, timestamp_ms: int) -> list[int]:
        self.clock_ms = max(self.clock_ms, timestamp_ms)
        due = sorted(
            (p.timestamp_ms + p.timeout_ms, p.id)
            for p in self.transfers.values()
            if self.status.get(p.id) == "pending"
            and p.timeout_ms
            and p.timestamp_ms + p.timeout_ms <= self.clock_ms
        )
        for _, pid in due:
            p = self.transfers[pid]
            self.status[pid] = "expired"
            self.balances[p.debit_account_id][0] -= p.amount_cents
            self.balances[p.credit_account_id][2] -= p.amount_cents
        return [pid for _, pid in due]

    def batch(self, events: list[Transfer], timestamp_ms: int) -> list[R]:
        self.tick(timestamp_ms)
        results: list[R] = []
        chain: list[Transfer] = []
        for i, t in enumerate(events):
            chain.append(t)
            if t.flags & LINKED and i < len(events) - 1:
                continue
            if t.flags & LINKED:  # open at the end of the batch
                results += [R.LINKED_EVENT_FAILED] * (len(chain) - 1)
                results.append(R.LINKED_EVENT_CHAIN_OPEN)
                break
            trial = copy.deepcopy(self)
            outcome: list[R] = []
            for e in chain:  # stop at the first failure: the rest never runs
                outcome.append(trial.one(e))
                if outcome[-1] != R.OK:
                    break
            if outcome[-1] == R.OK:
                self.__dict__.update(trial.__dict__)
                results += outcome
            else:
                self.failed |= trial.failed  # a transient failure is remembered
                chain_results = [R.LINKED_EVENT_FAILED] * len(chain)
                chain_results[len(outcome) - 1] = outcome[-1]
                results += chain_results
            chain = []
        return results

    def one(self, t: Transfer) -> R:
        if t.flags & (POST | VOID):
            return self.resolve(t)
        dr, cr = t.debit_account_id, t.credit_account_id
        if dr == cr:
            return R.ACCOUNTS_MUST_BE_DIFFERENT
        if dr not in self.balances:
            return self.transient(t.id, R.DEBIT_ACCOUNT_NOT_FOUND)
        if cr not in self.balances:
            return self.transient(t.id, R.CREDIT_ACCOUNT_NOT_FOUND)
        if t.id in self.failed:
            return R.ID_ALREADY_FAILED
        if t.id in self.transfers:
            e = self.transfers[t.id]
            for name, code in (
                ("flags", R.EXISTS_WITH_DIFFERENT_FLAGS),
                ("debit_account_id", R.EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID),
                ("credit_account_id", R.EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID),
                ("amount_cents", R.EXISTS_WITH_DIFFERENT_AMOUNT),
                ("user_data", R.EXISTS_WITH_DIFFERENT_USER_DATA),
                ("timeout_ms", R.EXISTS_WITH_DIFFERENT_TIMEOUT),
            ):
                if getattr(t, name) != getattr(e, name):
                    return code
            return R.EXISTS
        d, c = self.balances[dr], self.balances[cr]
        if self.flags[dr] & D_LIMIT and d[0] + d[1] + t.amount_cents > d[3]:
            return self.transient(t.id, R.EXCEEDS_CREDITS)
        if self.flags[cr] & C_LIMIT and c[2] + c[3] + t.amount_cents > c[1]:
            return self.transient(t.id, R.EXCEEDS_DEBITS)
        column = 0 if t.flags & PENDING else 1
        d[column] += t.amount_cents
        c[column + 2] += t.amount_cents
        self.transfers[t.id] = replace(t, timestamp_ms=self.clock_ms)
        if t.flags & PENDING:
            self.status[t.id] = "pending"
        return R.OK

    def resolve(self, t: Transfer) -> R:
        if t.pending_id == t.id:
            return R.PENDING_ID_MUST_BE_DIFFERENT
        p = self.transfers.get(t.pending_id)
        if p is None:
            return self.transient(t.id, R.PENDING_TRANSFER_NOT_FOUND)
        if not p.flags & PENDING:
            return R.PENDING_TRANSFER_NOT_PENDING
        amount = t.amount_cents or p.amount_cents
        if amount > p.amount_cents:
            return R.EXCEEDS_PENDING_TRANSFER_AMOUNT
        if t.flags & VOID and amount != p.amount_cents:
            return R.PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT
        if t.id in self.failed:
            return R.ID_ALREADY_FAILED
        if t.id in self.transfers:
            e = self.transfers[t.id]
            if t.flags != e.flags:
                return R.EXISTS_WITH_DIFFERENT_FLAGS
            if t.pending_id != e.pending_id:
                return R.EXISTS_WITH_DIFFERENT_PENDING_ID
            if amount != e.amount_cents:
                return R.EXISTS_WITH_DIFFERENT_AMOUNT
            return R.EXISTS
        status = self.status[p.id]
        if status != "pending":
            return {
                "posted": R.PENDING_TRANSFER_ALREADY_POSTED,
                "voided": R.PENDING_TRANSFER_ALREADY_VOIDED,
                "expired": R.PENDING_TRANSFER_EXPIRED,
            }[status]
        d, c = self.balances[p.debit_account_id], self.balances[p.credit_account_id]
        d[0] -= p.amount_cents
        c[2] -= p.amount_cents
        if t.flags & POST:
            d[1] += amount
            c[3] += amount
        self.status[p.id] = "posted" if t.flags & POST else "voided"
        self.transfers[t.id] = replace(
            t,
            debit_account_id=p.debit_account_id,
            credit_account_id=p.credit_account_id,
            ledger=p.ledger,
            code=p.code,
            amount_cents=amount,
            timestamp_ms=self.clock_ms,
        )
        return R.OK

    def transient(self, transfer_id: int, result: R) -> R:
        if transfer_id not in self.transfers:
            self.failed.add(transfer_id)
        return result


transfer_ids = st.integers(1, 40)
FUNDING_IDS_FROM = 1_000  # funding transfers use fresh ids, so they always apply


@st.composite
def new_transfers(draw: st.DrawFn) -> Transfer:
    pending = draw(st.booleans())
    return Transfer(
        id=draw(transfer_ids),
        debit_account_id=draw(st.integers(1, 6)),
        credit_account_id=draw(st.integers(1, 6)),
        amount_cents=draw(st.integers(1, 120)),
        ledger=1,
        code=1,
        flags=PENDING if pending else 0,
        timeout_ms=draw(st.sampled_from([0, 0, 5, 20])) if pending else 0,
        user_data=draw(st.integers(0, 1)),
    )


@st.composite
def resolutions(draw: st.DrawFn) -> Transfer:
    return Transfer(
        id=draw(transfer_ids),
        debit_account_id=0,
        credit_account_id=0,
        amount_cents=draw(st.sampled_from([0, 0, 10, 60])),
        ledger=0,
        code=0,
        flags=draw(st.sampled_from([POST, VOID])),
        pending_id=draw(transfer_ids),
    )


events = st.one_of(new_transfers(), new_transfers(), resolutions())


@st.composite
def batches(draw: st.DrawFn) -> list[Transfer]:
    batch = draw(st.lists(events, min_size=1, max_size=5))
    links = draw(
        st.lists(
            st.sampled_from([False, False, False, True]), min_size=len(batch), max_size=len(batch)
        )
    )
    return [
        replace(t, flags=t.flags | LINKED) if link else t
        for t, link in zip(batch, links, strict=True)
    ]


class LedgerVsModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ledger = Ledger(audit=True)
        self.model = Model()
        self.now_ms = 0
        self.sent: list[list[Transfer]] = []
        self.next_funding_id = FUNDING_IDS_FROM

    @initialize(
        limits=st.lists(st.sampled_from([0, D_LIMIT, D_LIMIT, C_LIMIT]), min_size=4, max_size=4)
    )
    def open_accounts(self, limits: list[int]) -> None:
        for account_id, limit in zip(ACCOUNT_IDS, [*limits, 0], strict=True):
            self.create_account(account_id, limit)

    @rule(account_id=st.sampled_from(ACCOUNT_IDS[:-1]), amount_cents=st.integers(1, 300))
    def fund(self, account_id: int, amount_cents: int) -> None:
        t = Transfer(self.next_funding_id, BANK, account_id, amount_cents, 1, 1)
        self.next_funding_id += 1
        self.create_transfers([t], 1)

    @rule(
        account_id=st.sampled_from(ACCOUNT_IDS),
        limit=st.sampled_from([0, D_LIMIT, D_LIMIT, C_LIMIT]),
    )
    def create_account(self, account_id: int, limit: int) -> None:
        result = self.ledger.create_accounts([Account(account_id, 1, 1, flags=limit)], self.now_ms)
        self.model.tick(self.now_ms)
        if account_id in self.model.balances:
            expected = "exists" if self.model.flags[account_id] == limit else "exists_with_"
            assert result[0].startswith(expected)
        else:
            assert result == ("ok",)
            self.model.balances[account_id] = [0, 0, 0, 0]
            self.model.flags[account_id] = limit

    @rule(batch=batches(), advance_ms=st.integers(0, 12))
    def create_transfers(self, batch: list[Transfer], advance_ms: int) -> None:
        self.now_ms += advance_ms
        assert self.ledger.create_transfers(batch, self.now_ms) == tuple(
            self.model.batch(batch, self.now_ms)
        )
        self.sent.append(batch)

    @precondition(lambda self: self.model.status)
    @rule(data=st.data(), advance_ms=st.integers(0, 12))
    def resolve_a_pending_transfer(self, data: st.DataObject, advance_ms: int) -> None:
        """Post or void a pending transfer that exists (in whatever state)."""
        pending_id = data.draw(st.sampled_from(sorted(self.model.status)))
        event = replace(data.draw(resolutions()), pending_id=pending_id)
        self.create_transfers([event], advance_ms)

    @precondition(lambda self: self.sent)
    @rule(data=st.data())
    def retry_a_batch(self, data: st.DataObject) -> None:
        batch = data.draw(st.sampled_from(self.sent))
        self.create_transfers(batch, 0)

    @rule(advance_ms=st.integers(0, 30), clock_behind_ms=st.integers(0, 10))
    def pulse(self, advance_ms: int, clock_behind_ms: int) -> None:
        """Expire what is due; sometimes from a leader whose clock is behind."""
        self.now_ms += advance_ms
        stamp = max(0, self.now_ms - clock_behind_ms)
        assert list(self.ledger.expire_pending(stamp)) == self.model.tick(stamp)

    @rule()
    def snapshot_and_restore(self) -> None:
        raw = encode_value(self.ledger.snapshot())
        fresh = Ledger(audit=True)
        fresh.restore(decode_value(raw))
        assert encode_value(fresh.snapshot()) == raw
        self.ledger = fresh  # carry on with the restored copy

    @invariant()
    def agrees_with_the_model(self) -> None:
        m = self.model
        assert {
            a.id: [
                a.debits_pending_cents,
                a.debits_posted_cents,
                a.credits_pending_cents,
                a.credits_posted_cents,
            ]
            for a in self.ledger.accounts()
        } == m.balances
        snap = self.ledger.snapshot()
        assert {t.id: t for t in snap.transfers} == m.transfers
        assert dict(snap.pending) == m.status
        assert {i for i, _ in snap.failed} == m.failed

    @invariant()
    def double_entry_holds(self) -> None:
        dp, dpo, cp, cpo = self.ledger.totals()
        assert (dp, dpo) == (cp, cpo)
        self.ledger.check_invariants()


TestLedgerVsModel = LedgerVsModel.TestCase


def test_the_model_catches_a_ledger_that_forgets_failed_ids(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Plant a bug the audit cannot see (an id that failed for lack of funds
    may later succeed): the model comparison must find it."""
    monkeypatch.setattr(Ledger, "_fail", lambda self, transfer_id, result: result)
    with pytest.raises(AssertionError):
        run_state_machine_as_test(
            LedgerVsModel,
            settings=settings(
                max_examples=100,
                deadline=None,
                derandomize=True,
                phases=[Phase.generate],  # finding it is the point; shrinking costs time
                report_multiple_bugs=False,
            ),
        )
