"""Reading the history: what the ledger checker holds against what.

Pairs each invoke with its completion and gathers every attempt of one
idempotent transfer id into one `Transfer` (acknowledged, failed or
indefinite), applies the ledger's own lookups by id, and reads off the
initial balances and every read: the `_Setting` the checks start from.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from checks.history import HistoryError, Operation

Status = Literal["acknowledged", "failed", "indefinite"]
APPLIED, ABSENT = "applied", "absent"  # a lookup's answers


@dataclass(slots=True)
class Transfer:
    """One logical transfer: every attempt that used its id."""

    id: str
    source: str  # the debited account ("from")
    target: str  # the credited account ("to")
    amount_cents: int
    invoke_index: int  # first attempt's invoke
    ack_index: int | None = None  # first ok completion, if any
    ack_time_ms: float | None = None
    attempts: int = 0
    oks: int = 0
    fails: int = 0
    found: str | None = None  # a lookup's answer: APPLIED | ABSENT
    found_index: int | None = None  # the completion of that lookup

    @property
    def status(self) -> Status:
        if self.oks or self.found == APPLIED:
            return "acknowledged"
        if self.fails == self.attempts or self.found == ABSENT:
            return "failed"
        return "indefinite"

    @property
    def settled_by_lookup(self) -> bool:
        """Indefinite by its own attempts, settled by a lookup."""
        return self.found is not None and not self.oks and self.fails < self.attempts

    def words(self) -> str:
        return f"{self.id} ({self.source}->{self.target} {self.amount_cents}c)"


@dataclass(frozen=True, slots=True)
class Read:
    index: int  # completion index
    invoke_index: int
    time_ms: float
    process: int | str
    balances: dict[str, Any]


@dataclass(slots=True)
class LedgerError:
    kind: str  # half-applied | lost | duplicated | failed-applied | stale-read | ...
    index: int | None
    time_ms: float | None
    message: str
    explanations: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "index": self.index,
            "time_ms": self.time_ms,
            "message": self.message,
            "explanations": self.explanations,
        }


def _amount(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def all_amounts(balances: Collection[object]) -> bool:
    """Is every balance an amount (`_amount`)? A read of plain ints is judged
    whole, in C: a minute of chapter 4 has 352 reads of 2,000 balances."""
    return _INTS.issuperset(map(type, balances)) or all(_amount(b) for b in balances)


_INTS = frozenset({int})
_STRS = frozenset({str})


# --8<-- [start:ledger-vocabulary]
# The operations the checker holds against the reads, and those it knows move
# no ledger money: the message queue's own bookkeeping around a payment
# (chapter 5: the payment itself is the `transfer`, its settlement the
# `settle`), and load-test payments, which write shadow accounts (whether they
# did is `checks.isolation`'s question; one that moved production money shows
# here as balances no client's transfer explains). Any other operation may
# have moved money the checker cannot see: the verdict is then unknown.
SETTLE = "settle"
MODELLED = frozenset({"init", "transfer", "lookup-transfer", "read", SETTLE})
NO_LEDGER_MONEY = frozenset(
    {"send", "commit", "rollback", "publish", "receive", "apply", "check-max",
     "read-payments", "load-test:transfer", "span", "send-back"}
)  # fmt: skip
SETTLED_TWINS = ("@settled", "/settled")  # chapter 5's m3@pay -> m3@settled; the capstone's
SETTLE_APPLIED = frozenset({"ok", "exists"})  # exists: an earlier delivery's transfer holds it


def unmodelled(ops: list[Operation]) -> dict[str, int]:
    """Operations the ledger checker neither models nor knows to move no money: kind -> count."""
    out: dict[str, int] = {}
    for op in ops:
        if op.f not in MODELLED and op.f not in NO_LEDGER_MONEY:
            out[op.f] = out.get(op.f, 0) + 1
    return dict(sorted(out.items()))


def settled_twin(escrow: str, accounts: Collection[str]) -> str | None:
    """The account a settlement out of `escrow` credits: its settled twin, the one
    of the two namings (`m3@pay` -> `m3@settled`, `m3@hz-1` -> `m3@hz-1/settled`)
    the history's accounts hold; None when neither is there (nothing to credit)."""
    name, at, _ = escrow.partition("@")
    candidates = ([name + SETTLED_TWINS[0]] if at else []) + [escrow + SETTLED_TWINS[1]]
    return next((c for c in candidates if c in accounts), None)


def settlement_transfer(op: Operation, accounts: Collection[str]) -> dict[str, Any]:
    """A `settle` operation as the transfer the ledger applied: id `settle:<message id>`
    (one per message: a redelivery reuses it), escrow -> settled twin. Its
    completion's `result` says what the ledger did: ok or exists, applied (this
    attempt or an earlier one); any other code, refused."""
    v = op.invoke.value
    if not isinstance(v, Mapping) or not {"id", "merchant", "amount"} <= v.keys():
        raise HistoryError(
            f"event {op.invoke.index}: a settle's value needs id, merchant and amount, "
            f"not {v!r:.80}"
        )
    escrow = str(v["merchant"])
    twin = str(v["to"]) if "to" in v else settled_twin(escrow, accounts)
    if twin is None:
        raise HistoryError(
            f"event {op.invoke.index}: a settlement out of {escrow} credits its settled twin "
            f"({escrow.partition('@')[0]}{SETTLED_TWINS[0]} or {escrow}{SETTLED_TWINS[1]}), and "
            "the history names neither: record it as the settle's `to`"
        )
    return {"id": f"settle:{v['id']}", "from": escrow, "to": twin, "amount_cents": v["amount"]}


def touches_read_money(op: Operation, accounts: Collection[str]) -> bool:
    """Does a settlement move money of an account the history opens or reads? One
    that does not (a tagged payment's, out of a shadow escrow) is load-test traffic."""
    v = op.invoke.value
    escrow = str(v.get("merchant")) if isinstance(v, Mapping) else ""
    return escrow in accounts or settled_twin(escrow, accounts) is not None


def settle_outcome(op: Operation) -> str:
    """ok (the ledger holds the transfer), fail (it refused it) or info (no answer)."""
    done = op.completion
    if op.type != "ok" or done is None:
        return op.type
    result = done.value.get("result") if isinstance(done.value, Mapping) else None
    return "ok" if result in SETTLE_APPLIED else "fail"


# --8<-- [end:ledger-vocabulary]


def named_accounts(ops: list[Operation]) -> frozenset[str]:
    """Every account the opening balances and the reads name (where a twin is looked for)."""
    out: set[str] = set()
    for op in ops:
        value = op.completion.value if op.completion is not None else None
        if op.f in ("init", "read") and op.type == "ok" and isinstance(value, Mapping):
            out.update(str(a) for a in value)
    return frozenset(out)


def _transfers(ops: list[Operation], errors: list[LedgerError]) -> dict[str, Transfer]:
    by_id: dict[str, Transfer] = {}
    accounts = named_accounts(ops) if any(op.f == SETTLE for op in ops) else frozenset()
    for op in ops:
        if op.f not in ("transfer", SETTLE):
            continue
        kind = op.type
        if op.f == SETTLE and not touches_read_money(op, accounts):
            continue  # a load-test settlement of shadow accounts: checks.isolation's
        if op.f == SETTLE:
            v: Any = settlement_transfer(op, accounts)
            kind = settle_outcome(op)
        else:
            v = op.invoke.value
        if not isinstance(v, Mapping) or "id" not in v or "from" not in v or "to" not in v:
            raise HistoryError(
                f"event {op.invoke.index}: a transfer's value needs id, from, to and "
                f"amount_cents, not {v!r}"
            )
        amount = v.get("amount_cents", v.get("amount"))
        if not _amount(amount) or amount <= 0:
            raise HistoryError(
                f"event {op.invoke.index}: transfer amount_cents must be a positive integer, "
                f"not {amount!r}"
            )
        tid, src, dst = str(v["id"]), str(v["from"]), str(v["to"])
        t = by_id.get(tid)
        if t is None:
            t = by_id[tid] = Transfer(tid, src, dst, amount, op.invoke.index)
        elif (t.source, t.target, t.amount_cents) != (src, dst, amount):
            errors.append(
                LedgerError(
                    "id-conflict",
                    op.invoke.index,
                    op.invoke.time_ms,
                    f"transfer id {tid} reused for {src}->{dst} {amount}c; it was "
                    f"{t.source}->{t.target} {t.amount_cents}c",
                )
            )
            continue
        t.attempts += 1
        if kind == "ok":
            assert op.completion is not None
            t.oks += 1
            if t.ack_index is None:
                t.ack_index, t.ack_time_ms = op.completion.index, op.completion.time_ms
        elif kind == "fail":
            t.fails += 1
    return by_id


# --8<-- [start:ledger-lookups]
def _lookups(ops: list[Operation], by_id: dict[str, Transfer], errors: list[LedgerError]) -> int:
    """Apply every ok lookup's answers to the transfers they name; how many answers.

    "applied" acknowledges a transfer from the lookup's end on (the lookup
    went through the log: it saw the transfer applied by then); "absent"
    makes it failed for every read, before the lookup as after (nothing is
    ever un-applied, and the fence keeps it from applying later)."""
    answers = 0
    for op in ops:
        if op.f != "lookup-transfer" or op.type != "ok":
            continue
        assert op.completion is not None
        done = op.completion
        value = done.value
        if not isinstance(value, Mapping) or not all(
            isinstance(a, str) and a in (APPLIED, ABSENT) for a in value.values()
        ):
            raise HistoryError(
                f"event {done.index}: a lookup-transfer's ok value must map ids to "
                f'"applied" or "absent", not {value!r:.80}'
            )
        for raw_id, answer in value.items():
            answers += 1
            t = by_id.get(str(raw_id))
            if t is None:
                if answer == APPLIED:  # the ledger holds a transfer nobody asked for
                    errors.append(
                        LedgerError(
                            "phantom",
                            done.index,
                            done.time_ms,
                            f"a lookup found transfer {raw_id} applied; no client invoked it",
                        )
                    )
                continue
            _found(t, answer, done.index, done.time_ms, errors)
    return answers


def _found(t: Transfer, answer: str, index: int, time_ms: float, errors: list[LedgerError]) -> None:
    def error(kind: str, why: str) -> None:
        errors.append(LedgerError(kind, index, time_ms, f"transfer {t.words()}: {why}"))

    if t.found is not None and t.found != answer:
        error("lookup-contradiction", f"one lookup found it {t.found}, a later one {answer}")
        return
    if answer == ABSENT and t.oks:
        error("lost", "acknowledged, yet a lookup found the ledger never applied it")
    if answer == APPLIED and not t.oks and t.fails == t.attempts:
        error("failed-applied", "every attempt failed, yet a lookup found it applied")
    if t.found is None:
        t.found, t.found_index = answer, index
    if answer == APPLIED and (t.ack_index is None or index < t.ack_index):
        t.ack_index, t.ack_time_ms = index, time_ms  # visible to every read after this


# --8<-- [end:ledger-lookups]


def _initial(ops: list[Operation], initial: Mapping[Any, int] | None) -> dict[str, int] | None:
    if initial is not None:
        return {str(k): int(v) for k, v in initial.items()}
    inits = [op for op in ops if op.f == "init" and op.type == "ok"]
    if not inits:
        return None
    if len(inits) > 1:
        raise second_init(inits)
    value = inits[0].completion.value if inits[0].completion else None
    if not isinstance(value, Mapping) or not all(_amount(b) for b in value.values()):
        raise HistoryError(
            f"event {inits[0].invoke.index}: init's value must map accounts to integer cents"
        )
    return {str(k): v for k, v in value.items()}


def second_init(inits: list[Operation]) -> HistoryError:
    """The error for a history with more than one `init`: several ledgers in one file
    (the capstone's parts, each event's `part`), or one recorded twice."""
    parts = sorted({str(op.invoke.extra["part"]) for op in inits if "part" in op.invoke.extra})
    if len(parts) > 1:
        return HistoryError(
            f"event {inits[1].invoke.index}: the history holds {len(parts)} parts "
            f"({', '.join(parts)}), each with its own opening balances; this checker judges "
            "one ledger (`d11 run double11` checks each part; `d11 check delivery` reads them all)"
        )
    return HistoryError(f"event {inits[1].invoke.index}: a second init; record it once")


def _reads(ops: list[Operation]) -> list[Read]:
    out = []
    for op in ops:
        if op.f != "read" or op.type != "ok":
            continue
        assert op.completion is not None
        value = op.completion.value
        if not isinstance(value, Mapping):
            raise HistoryError(f"event {op.completion.index}: a read's ok value must be a map")
        out.append(
            Read(
                op.completion.index,
                op.invoke.index,
                op.completion.time_ms,
                op.process,
                dict(value)
                if _STRS.issuperset(map(type, value))
                else {str(k): b for k, b in value.items()},
            )
        )
    return out


@dataclass(slots=True)
class _Setting:
    """What the checker reads off the history before holding any read."""

    transfers: list[Transfer]  # in invoke order
    answers: int  # lookups answered
    reads: list[Read]
    accounts: frozenset[str]  # every account initial balances, transfers or reads name
    start: dict[str, int]  # each account's initial balance
    total_cents: int
    full: list[Read]  # reads of every account, each balance a number
    finals: list[Read]  # full reads begun after the last transfer ended
    # Reads begun after the last transfer ended that got no ok answer: a final
    # phase that ran, its reads unanswered (an overloaded store), is not the
    # same advice as a workload without one.
    finals_unanswered: int = 0


def _setting(
    ops: list[Operation], init: dict[str, int], transfers: list[Transfer], answers: int
) -> _Setting:
    reads = _reads(ops)
    accounts = set(init) | {a for t in transfers for a in (t.source, t.target)}
    accounts |= {a for r in reads for a in r.balances}
    every_account = frozenset(accounts)
    last_transfer = max(
        (i for op in ops if op.f in ("transfer", SETTLE) for i in _indices(op)), default=-1
    )
    full = [r for r in reads if _full(r, every_account)]
    return _Setting(
        transfers=transfers,
        answers=answers,
        reads=reads,
        accounts=every_account,
        start={a: init.get(a, 0) for a in every_account},
        total_cents=sum(init.values()),
        full=full,
        finals=[r for r in full if r.invoke_index > last_transfer],
        finals_unanswered=sum(
            1
            for op in ops
            if op.f == "read" and op.type != "ok" and op.invoke.index > last_transfer
        ),
    )


def _indices(op: Operation) -> list[int]:
    return [op.invoke.index] + ([op.completion.index] if op.completion is not None else [])


def _full(r: Read, accounts: frozenset[str]) -> bool:
    return r.balances.keys() == accounts and all_amounts(r.balances.values())
