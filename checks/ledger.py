"""The ledger checker: hold every transfer against the balances reads saw.

Jepsen's bank check (`checks.bank`) only asks that reads add up. A ledger must
also apply each acknowledged transfer exactly once, never apply a failed one,
and never let a read see half a transfer. This checker replays the history:
the balances a read returned must equal the initial balances plus the
effects of some set of transfers the read could have seen.

History vocabulary (one operation = an invoke and its completion; amounts
are integer cents; account ids are compared as strings):

    f="init"      ok value {acct: balance_cents, ...}: the starting balances,
                  recorded once by the workload's setup (or pass `initial`).
    f="transfer"  invoke value {"id": str, "from": acct, "to": acct,
                  "amount_cents": int}. The id is chosen by the client and
                  makes the transfer idempotent: a retry reuses it.
                  ok   -> acknowledged: it must take effect exactly once;
                  fail -> it certainly did not take effect (this attempt);
                  info, or no completion -> indefinite: it may have taken
                  effect once, or not at all; the reads decide.
                  An id with any ok attempt is acknowledged; with only fail
                  attempts, failed; otherwise indefinite.
    f="read"      invoke value None (all accounts); ok value
                  {acct: balance_cents, ...}. Reads of some accounts only are
                  checked for negative balances and nothing else.

What is checked:

1. Every read of all accounts adds up to the initial total: transfers move
   money, they never make or lose it. A read that does not saw a transfer
   half-applied (the debit without its credit, or the reverse).
2. The final read phase (complete reads invoked after every transfer event)
   resolves the indefinite transfers: the final balances must be the initial
   balances plus every acknowledged transfer once, plus some subset of the
   indefinite ones. Which subset is reported; if none fits, the checker
   searches for the fewest faults (an acknowledged transfer lost or applied
   twice, a failed one applied, one half-applied) that would explain the
   balances, and says so in words.
3. With `realtime=True` (for stages that claim linearizable reads), every
   read of all accounts is held to the same rule at its own point in time:
   transfers acknowledged before the read began must be visible, transfers
   invoked after it ended must not be.
4. No balance goes below zero, unless `negative_allowed`.

The subset search is bounded (`STATES_MAX` distinct balance vectors); past
it, the checker says "too many to enumerate" and answers "unknown" for that
read rather than guess.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from checks.history import Event, HistoryError, Operation, pair_operations
from checks.verdict import Verdict

STATES_MAX = 20_000  # distinct balance vectors the subset search may hold
WORK_MAX = 400_000  # vector steps all real-time read checks may take together
EXAMPLES_MAX = 3  # example subsets kept per balance vector
FAULT_PAIRS_MAX = 200_000  # two-fault combinations tried before giving up
ERRORS_MAX = 50  # errors kept in the verdict (the count is exact)

Vec = tuple[int, ...]
Status = Literal["acknowledged", "failed", "indefinite"]


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

    @property
    def status(self) -> Status:
        if self.oks:
            return "acknowledged"
        if self.fails == self.attempts:
            return "failed"
        return "indefinite"

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


# --- reading the history -------------------------------------------------


def _amount(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _transfers(ops: list[Operation], errors: list[LedgerError]) -> dict[str, Transfer]:
    by_id: dict[str, Transfer] = {}
    for op in ops:
        if op.f != "transfer":
            continue
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
        if op.type == "ok":
            assert op.completion is not None
            t.oks += 1
            if t.ack_index is None:
                t.ack_index, t.ack_time_ms = op.completion.index, op.completion.time_ms
        elif op.type == "fail":
            t.fails += 1
    return by_id


def _initial(ops: list[Operation], initial: Mapping[Any, int] | None) -> dict[str, int] | None:
    if initial is not None:
        return {str(k): int(v) for k, v in initial.items()}
    inits = [op for op in ops if op.f == "init" and op.type == "ok"]
    if not inits:
        return None
    if len(inits) > 1:
        raise HistoryError(f"event {inits[1].invoke.index}: a second init; record it once")
    value = inits[0].completion.value if inits[0].completion else None
    if not isinstance(value, Mapping) or not all(_amount(b) for b in value.values()):
        raise HistoryError(
            f"event {inits[0].invoke.index}: init's value must map accounts to integer cents"
        )
    return {str(k): v for k, v in value.items()}


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
                {str(k): b for k, b in value.items()},
            )
        )
    return out


# --- vectors of balances -------------------------------------------------


class _Space:
    """Balances as dense vectors over a fixed account order."""

    def __init__(self, accounts: Iterable[str]) -> None:
        self.accounts = sorted(set(accounts))
        self.slot = {a: i for i, a in enumerate(self.accounts)}
        self.zero: Vec = (0,) * len(self.accounts)

    def vec(self, balances: Mapping[str, int]) -> Vec:
        v = [0] * len(self.accounts)
        for a, b in balances.items():
            v[self.slot[a]] += b
        return tuple(v)

    def delta(self, account: str, cents: int) -> Vec:
        v = [0] * len(self.accounts)
        v[self.slot[account]] = cents
        return tuple(v)

    def effect(self, t: Transfer) -> Vec:
        return add(self.delta(t.source, -t.amount_cents), self.delta(t.target, t.amount_cents))

    def words(self, v: Vec) -> str:
        parts = [f"{a} {d:+d}c" for a, d in zip(self.accounts, v, strict=True) if d]
        return ", ".join(parts) if parts else "nothing"


def add(a: Vec, b: Vec) -> Vec:
    return tuple(x + y for x, y in zip(a, b, strict=True))


def sub(a: Vec, b: Vec) -> Vec:
    return tuple(x - y for x, y in zip(a, b, strict=True))


# --8<-- [start:ledger-resolve]
@dataclass(frozen=True, slots=True)
class Ways:
    """How many subsets of candidate transfers sum to one balance vector."""

    count: int
    examples: tuple[tuple[str, ...], ...]  # up to EXAMPLES_MAX subsets, as transfer ids


@dataclass(slots=True)
class Budget:
    """Work left for subset searches, shared by the reads of one check."""

    steps_left: int


def reachable(
    space: _Space,
    candidates: Sequence[Transfer],
    target: Vec | None = None,
    budget: Budget | None = None,
) -> dict[Vec, Ways] | None:
    """Every balance change some subset of `candidates` makes, each applied
    at most once: a dynamic program over distinct vectors, so subsets with
    the same effect share one entry. None: more than STATES_MAX vectors,
    or the shared `budget` ran out.

    With a `target`, vectors that can no longer reach it are dropped as
    they appear: for each account, what the remaining candidates could still
    add or take away bounds how far a partial sum may be from the target.
    The answer for `target` itself is unchanged; other entries are partial.
    """
    slot = space.slot
    moves = [(slot[t.source], slot[t.target], t.amount_cents, t.id) for t in candidates]
    bounds = _suffix_bounds(len(space.zero), moves) if target is not None else None
    ways: dict[Vec, Ways] = {space.zero: Ways(1, ((),))}
    for i, (src, dst, cents, tid) in enumerate(moves):
        grown = dict(ways)
        for v, w in ways.items():
            moved = list(v)
            moved[src] -= cents
            moved[dst] += cents
            to = tuple(moved)
            old = grown.get(to)
            if old is None:
                grown[to] = Ways(w.count, tuple((*x, tid) for x in w.examples))
            elif len(old.examples) < EXAMPLES_MAX:
                room = EXAMPLES_MAX - len(old.examples)
                more = tuple((*x, tid) for x in w.examples[:room])
                grown[to] = Ways(old.count + w.count, old.examples + more)
            else:
                grown[to] = Ways(old.count + w.count, old.examples)
        if bounds is not None and target is not None:
            lo, hi = bounds[i + 1]
            grown = {v: w for v, w in grown.items() if _viable(v, target, lo, hi)}
        if len(grown) > STATES_MAX:
            return None
        if budget is not None:
            budget.steps_left -= len(ways)
            if budget.steps_left < 0:
                return None
        ways = grown
    return ways


def _suffix_bounds(
    n: int, moves: Sequence[tuple[int, int, int, str]]
) -> list[tuple[list[int], list[int]]]:
    """bounds[i]: per account, the least and most the moves i.. can add."""
    lo, hi = [0] * n, [0] * n
    out = [(list(lo), list(hi))]
    for src, dst, cents, _ in reversed(moves):
        lo[src] -= cents
        hi[dst] += cents
        out.append((list(lo), list(hi)))
    out.reverse()
    return out


def _viable(v: Vec, target: Vec, lo: list[int], hi: list[int]) -> bool:
    for x, t, low, high in zip(v, target, lo, hi, strict=True):  # noqa: SIM110 (hot loop)
        if not low <= t - x <= high:
            return False
    return True


@dataclass(frozen=True, slots=True)
class Fault:
    """A way a transfer could have gone wrong, as a change to the balances."""

    kind: str  # lost | duplicated | failed-applied | half-debit | half-credit | future
    transfer: Transfer
    adjust: Vec

    def words(self) -> str:
        t = self.transfer.words()
        return {
            "lost": f"acknowledged transfer {t} was not applied",
            "stale": f"transfer {t}, acknowledged before the read began, is not visible",
            "duplicated": f"transfer {t} was applied twice",
            "failed-applied": f"transfer {t} failed, yet was applied",
            "half-debit": f"transfer {t} is half-applied: its debit without its credit",
            "half-credit": f"transfer {t} is half-applied: its credit without its debit",
            "future": f"transfer {t} is visible before it was invoked",
        }[self.kind]


def faults(
    space: _Space,
    fixed: Sequence[Transfer],
    candidates: Sequence[Transfer],
    failed: Sequence[Transfer],
    future: Sequence[Transfer],
    *,
    final: bool,
) -> list[Fault]:
    """Each single fault that could make a read differ from a correct ledger."""
    out: list[Fault] = []
    for t in fixed:
        e = space.effect(t)
        out.append(Fault("lost" if final else "stale", t, sub(space.zero, e)))
        out.append(Fault("duplicated", t, e))
        out.append(Fault("half-debit", t, space.delta(t.target, -t.amount_cents)))
        out.append(Fault("half-credit", t, space.delta(t.source, t.amount_cents)))
    for t in candidates:
        out.append(Fault("half-debit", t, space.delta(t.source, -t.amount_cents)))
        out.append(Fault("half-credit", t, space.delta(t.target, t.amount_cents)))
    out.extend(Fault("failed-applied", t, space.effect(t)) for t in failed)
    out.extend(Fault("future", t, space.effect(t)) for t in future)
    return out


def explain(
    target: Vec, ways: dict[Vec, Ways], fs: Sequence[Fault], explanations_max: int = 5
) -> list[list[Fault]]:
    """The smallest sets of faults (one, else two) that, with some subset of
    the candidate transfers, produce `target`. Empty: none found in budget."""
    found: list[list[Fault]] = [[f] for f in fs if sub(target, f.adjust) in ways]
    if found:
        return found[:explanations_max]
    if len(fs) * len(ways) > FAULT_PAIRS_MAX:
        return []
    by_adjust: dict[Vec, list[int]] = {}
    for i, f in enumerate(fs):
        by_adjust.setdefault(f.adjust, []).append(i)
    for i, f1 in enumerate(fs):
        rest = sub(target, f1.adjust)
        for v in ways:
            for j in by_adjust.get(sub(rest, v), []):
                if j > i and fs[j].transfer.id != f1.transfer.id:
                    found.append([f1, fs[j]])
                    if len(found) >= explanations_max:
                        return found
    return found


# --8<-- [end:ledger-resolve]


@dataclass(slots=True)
class _ReadCheck:
    """The outcome of holding one read against the transfers."""

    ok: bool | None  # None: too many subsets to enumerate
    ways: Ways | None
    candidates: list[Transfer]
    faults: list[list[Fault]]


def _hold_read(
    space: _Space,
    initial: Vec,
    read: Read,
    transfers: Sequence[Transfer],
    *,
    final: bool,
    never: frozenset[str] = frozenset(),
    budget: Budget | None = None,
) -> _ReadCheck:
    """Is this read the initial balances plus every transfer acknowledged
    before it began, plus a subset of those that may have been in flight?
    `never`: indefinite transfers the final read shows never took effect."""
    fixed = [t for t in transfers if t.ack_index is not None and t.ack_index < read.invoke_index]
    live = [
        t
        for t in transfers
        if t.status != "failed" and t.invoke_index < read.index and t.id not in never
    ]
    candidates = [t for t in live if t.ack_index is None or t.ack_index > read.invoke_index]
    target = sub(sub(space.vec(read.balances), initial), _sum(space, fixed))
    ways = reachable(space, candidates, target, budget)
    if ways is None:
        return _ReadCheck(None, None, candidates, [])
    if target in ways:
        return _ReadCheck(True, ways[target], candidates, [])
    # Certainly not explained; now find out why, over every reachable vector.
    failed = [t for t in transfers if t.status == "failed" and t.invoke_index < read.index]
    future = [t for t in transfers if t.status != "failed" and t.invoke_index > read.index]
    every = reachable(space, candidates)
    if every is None:
        return _ReadCheck(False, None, candidates, [])
    fs = faults(space, fixed, candidates, failed, future, final=final)
    return _ReadCheck(False, None, candidates, explain(target, every, fs))


def _sum(space: _Space, ts: Iterable[Transfer]) -> Vec:
    total = list(space.zero)
    for t in ts:
        total[space.slot[t.source]] -= t.amount_cents
        total[space.slot[t.target]] += t.amount_cents
    return tuple(total)


# --- the checker ---------------------------------------------------------


def check_ledger(
    events: Sequence[Event],
    *,
    initial: Mapping[Any, int] | None = None,
    realtime: bool = True,
    negative_allowed: bool = False,
) -> Verdict:
    """Hold transfers against reads; see the module docstring for the rules."""
    ops = pair_operations(list(events))
    errors: list[LedgerError] = []
    by_id = _transfers(ops, errors)
    transfers = sorted(by_id.values(), key=lambda t: t.invoke_index)
    init = _initial(ops, initial)
    if init is None:
        return Verdict(
            "ledger",
            "unknown",
            "No initial balances: record an ok f='init' operation or pass `initial`.",
            {"transfers": len(transfers)},
        )
    reads = _reads(ops)
    accounts = set(init) | {a for t in transfers for a in (t.source, t.target)}
    accounts |= {a for r in reads for a in r.balances}
    space = _Space(accounts)
    start = space.vec(init)
    total_cents = sum(init.values())
    last_transfer = max((i for op in ops if op.f == "transfer" for i in _indices(op)), default=-1)
    full = [r for r in reads if _full(r, space)]
    finals = [r for r in full if r.invoke_index > last_transfer]
    unchecked = 0
    resolution: dict[str, Any] = {"status": "no-final-read"}
    never: frozenset[str] = frozenset()
    checked: dict[int, _ReadCheck] = {}
    if finals:
        # The final read first: transfers it shows never took effect were
        # never visible to any read, which shrinks every other read's search.
        last = finals[-1]
        checked[last.index] = result = _hold_read(space, start, last, transfers, final=True)
        if result.ok is None:
            resolution = {
                "status": "too-many",
                "message": f"{len(result.candidates)} indefinite transfers: too many "
                f"subsets to enumerate (more than {STATES_MAX} distinct balance "
                "vectors); which were applied cannot be told",
            }
        elif result.ok:
            resolution = _resolution(result)
            never = frozenset(resolution.get("not_applied", ()))
        else:
            resolution = {"status": "unresolvable", "index": last.index}
    for r in reads:
        _check_balances(r, space, total_cents, negative_allowed, errors)
    budget = Budget(WORK_MAX)
    for r in full:
        is_final = r in finals
        result = checked.get(r.index)
        if result is None and (realtime or is_final):
            result = _hold_read(
                space, start, r, transfers, final=is_final, never=never, budget=budget
            )
        if result is not None and result.ok is False:
            errors.append(_read_error(r, space, total_cents, result, final=is_final))
            continue
        if result is not None and result.ok is None:
            unchecked += 1
        if (result is None or result.ok is None) and sum(r.balances.values()) != total_cents:
            errors.append(_total_error(r, total_cents, transfers))
    # --- verdict ---
    counts = {
        s: sum(1 for t in transfers if t.status == s)
        for s in ("acknowledged", "failed", "indefinite")
    }
    details: dict[str, Any] = {
        "accounts": space.accounts,
        "initial_total_cents": total_cents,
        "transfers": counts,
        "reads": len(reads),
        "complete_reads": len(full),
        "final_reads": [r.index for r in finals],
        "reads_unchecked": unchecked,
        "realtime": realtime,
        "resolution": resolution,
        "error_count": len(errors),
        "errors_by_kind": _by_kind(errors),
    }
    witness = [e.to_json() for e in errors[:ERRORS_MAX]]
    if errors:
        first = errors[0]
        why = f" Smallest explanation: {first.explanations[0]}." if first.explanations else ""
        return Verdict(
            "ledger",
            False,
            f"{len(errors)} ledger violations ({_kinds(errors)}). First, at index "
            f"{first.index}: {first.message}.{why}",
            details,
            witness,
        )
    if not finals:
        return Verdict(
            "ledger",
            "unknown",
            "No final read of all accounts after the last transfer: whether every "
            "acknowledged transfer took effect exactly once cannot be told. Add a final "
            "read phase to the workload.",
            details,
        )
    if resolution["status"] == "too-many":
        return Verdict(
            "ledger",
            "unknown",
            f"No violation found, but the final read cannot be resolved: {resolution['message']}.",
            details,
        )
    partial = (
        f" {unchecked} reads had too many transfers in flight to hold to real time "
        f"within the search budget ({WORK_MAX} steps); their totals were checked."
        if unchecked
        else ""
    )
    return Verdict(
        "ledger",
        True,
        f"Every acknowledged transfer took effect exactly once ({counts['acknowledged']} "
        f"acknowledged, {counts['failed']} failed, {counts['indefinite']} indefinite); "
        f"no read saw a transfer half-applied. {resolution['message']}{partial}",
        details,
    )


def _indices(op: Operation) -> list[int]:
    return [op.invoke.index] + ([op.completion.index] if op.completion is not None else [])


def _full(r: Read, space: _Space) -> bool:
    return set(r.balances) == set(space.accounts) and all(_amount(b) for b in r.balances.values())


def _check_balances(
    r: Read, space: _Space, total_cents: int, negative_allowed: bool, errors: list[LedgerError]
) -> None:
    bad = {a: b for a, b in r.balances.items() if not _amount(b)}
    if bad:
        errors.append(
            LedgerError("nil-balance", r.index, r.time_ms, f"read returned non-numbers {bad}")
        )
    if not negative_allowed:
        negative = {a: b for a, b in r.balances.items() if _amount(b) and b < 0}
        if negative:
            errors.append(
                LedgerError(
                    "negative-balance", r.index, r.time_ms, f"balances below zero: {negative}"
                )
            )


def _resolution(result: _ReadCheck) -> dict[str, Any]:
    assert result.ways is not None
    indefinite = [t for t in result.candidates]
    if result.ways.count == 1:
        applied = set(result.ways.examples[0])
        yes = [t.id for t in indefinite if t.id in applied]
        no = [t.id for t in indefinite if t.id not in applied]
        msg = (
            f"The final read resolves all {len(indefinite)} indefinite transfers: "
            f"{len(yes)} applied, {len(no)} not."
            if indefinite
            else "No transfer was indefinite."
        )
        return {"status": "resolved", "applied": yes, "not_applied": no, "message": msg}
    examples = [list(s) for s in result.ways.examples]
    return {
        "status": "ambiguous",
        "subsets": result.ways.count,
        "examples": examples,
        "message": f"{result.ways.count} subsets of the {len(indefinite)} indefinite "
        f"transfers fit the final balances (e.g. {examples[0]}): their amounts cannot "
        "tell them apart, and any of them is a correct outcome.",
    }


def _read_error(
    r: Read, space: _Space, total_cents: int, result: _ReadCheck, *, final: bool
) -> LedgerError:
    got = sum(r.balances.values())
    words = [" and ".join(f.words() for f in combo) for combo in result.faults]
    if got != total_cents:
        kind = "half-applied"
        message = (
            f"read sums to {got}c, not {total_cents}c ({got - total_cents:+d}c): "
            "some transfer is seen half-applied, or money was made or lost"
        )
    elif final:
        kind = "not-exactly-once"
        message = (
            "the final balances are not the initial balances plus every acknowledged "
            "transfer once and some subset of the indefinite ones"
        )
    else:
        kind = "not-realtime"
        message = (
            "the read does not show exactly the transfers acknowledged before it began "
            "plus some of those in flight"
        )
    if not words:
        message += (
            "; no combination of one or two faults explains it (more faults, or a "
            "transfer the history never recorded)"
        )
    return LedgerError(kind, r.index, r.time_ms, message, words)


def _total_error(r: Read, total_cents: int, transfers: Sequence[Transfer]) -> LedgerError:
    """A read that does not add up, checked without real time: name the
    transfers in flight whose amount would explain it if half-applied."""
    diff = sum(r.balances.values()) - total_cents
    side = "debit without its credit" if diff < 0 else "credit without its debit"
    suspects = [
        t
        for t in transfers
        if t.amount_cents == abs(diff)
        and t.status != "failed"
        and t.invoke_index < r.index
        and (t.ack_index is None or t.ack_index > r.invoke_index)
    ]
    words = [f"transfer {t.words()} seen half-applied: its {side}" for t in suspects[:5]]
    if not words:
        words = [f"no single transfer in flight moves {abs(diff)}c: several were half-applied"]
    return LedgerError(
        "half-applied",
        r.index,
        r.time_ms,
        f"read sums to {total_cents + diff}c, not {total_cents}c ({diff:+d}c): "
        "some transfer is seen half-applied",
        words,
    )


def _by_kind(errors: list[LedgerError]) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in errors:
        out[e.kind] = out.get(e.kind, 0) + 1
    return out


def _kinds(errors: list[LedgerError]) -> str:
    return ", ".join(f"{k} x{n}" for k, n in sorted(_by_kind(errors).items()))
