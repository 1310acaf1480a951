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
    f="lookup-transfer"
                  invoke value [id, ...]; ok value {id: "applied" | "absent"}:
                  the ledger's own answer, by idempotent id, through its log
                  (Jepsen's and TigerBeetle's final lookups). "applied": the
                  transfer took effect exactly once, before the lookup ended;
                  "absent": it never took effect, and never will (the lookup
                  fenced the id). Only ok lookups count. A transfer with an
                  "applied" answer is acknowledged from the lookup's end on,
                  one with "absent" is failed; a lookup contradicting the
                  history (an acknowledged transfer "absent", a failed one
                  "applied", two answers that differ) is a violation.

What is checked:

1. Every read of all accounts adds up to the initial total: transfers move
   money, they never make or lose it. A read that does not saw a transfer
   half-applied (the debit without its credit, or the reverse).
2. The final read phase (complete reads invoked after every transfer event)
   resolves the indefinite transfers that no lookup answered: the final balances must be the initial
   balances plus every acknowledged transfer once, plus some subset of the
   indefinite ones. Which subset is reported; if none fits, the checker
   searches for the fewest faults, up to `faults_max` (an acknowledged
   transfer lost or applied twice, a failed one applied, one half-applied)
   that would explain the balances, and says so in words.
3. With `realtime=True` (for stages that claim linearizable reads), every
   read of all accounts is held to the same rule at its own point in time:
   transfers acknowledged before the read began must be visible, transfers
   invoked after it ended must not be.
4. No balance goes below zero, unless `negative_allowed`.

The subset search is bounded (`STATES_MAX` distinct balance vectors); past
it, the checker says "too many to enumerate" and answers "unknown" for that
read rather than guess.

Knowing that a read is wrong is cheap: an account no transfer in flight
touches must already hold its expected balance, so only the accounts those
transfers touch enter the subset search. Explaining why it is wrong may
cost far more, so it runs on its own budget (`explain_steps`, and
`explain_time_ms` of wall time for all explanations of one check); when the
budget runs out the error says the explanation was cut short, and the
verdict itself is unchanged. (Pass `explain_time_ms=None` where the words
must not depend on the machine's load: then only steps bound the search.)
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from checks.history import Event, HistoryError, Operation, pair_operations
from checks.verdict import Verdict

STATES_MAX = 20_000  # distinct balance vectors the subset search may hold
WORK_MAX = 400_000  # vector steps all real-time read checks may take together
EXAMPLES_MAX = 3  # example subsets kept per balance vector
FAULTS_MAX = 6  # the most faults one explanation may combine
EXPLANATIONS_MAX = 5  # fault sets reported per wrong read
EXPLAIN_STEPS = 50_000  # search steps all explanations of one check may take (~0.25 s)
EXPLAIN_TIME_MS = 1_000.0  # and the wall time they may take (None: steps only)
ERRORS_MAX = 50  # errors kept in the verdict (the count is exact)

Vec = tuple[tuple[str, int], ...]  # sparse balance change: sorted (account, cents), no zeros
Dense = tuple[int, ...]  # balance change over one _Space's accounts
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
#
# A read's error is almost always local: a few accounts are off, out of
# thousands. So balance changes are sparse (account -> cents, zeros left
# out), and only the subset search over the transfers in flight uses dense
# vectors, over just the accounts those transfers touch.


def sparse(changes: Mapping[str, int]) -> Vec:
    """The canonical sparse vector: (account, cents) pairs, sorted, no zeros."""
    return tuple(sorted((a, c) for a, c in changes.items() if c))


def add(a: Vec, b: Vec, sign: int = 1) -> Vec:
    total = dict(a)
    for account, cents in b:
        total[account] = total.get(account, 0) + sign * cents
    return sparse(total)


def sub(a: Vec, b: Vec) -> Vec:
    return add(a, b, -1)


def effect(t: Transfer) -> Vec:
    return add(((t.source, -t.amount_cents),), ((t.target, t.amount_cents),))


class _Space:
    """Dense vectors over a fixed account order: the accounts some
    transfers in flight touch, and no others."""

    def __init__(self, accounts: Iterable[str]) -> None:
        self.accounts = sorted(set(accounts))
        self.slot = {a: i for i, a in enumerate(self.accounts)}
        self.zero: Dense = (0,) * len(self.accounts)

    def dense(self, v: Vec) -> Dense:
        out = [0] * len(self.accounts)
        for a, c in v:
            out[self.slot[a]] = c
        return tuple(out)

    def sparse(self, d: Dense) -> Vec:
        return tuple((a, c) for a, c in zip(self.accounts, d, strict=True) if c)


# --8<-- [start:ledger-resolve]
@dataclass(frozen=True, slots=True)
class Ways:
    """How many subsets of candidate transfers sum to one balance vector."""

    count: int
    examples: tuple[tuple[str, ...], ...]  # up to EXAMPLES_MAX subsets, as transfer ids


@dataclass(slots=True)
class Budget:
    """Work left for a family of searches: steps (deterministic) and,
    optionally, wall time counted from the first step spent."""

    steps_left: int
    time_ms: float | None = None  # None: steps only
    steps_spent: int = 0
    cut: bool = False  # set once the budget ran out; it stays out
    _deadline_s: float | None = field(default=None, init=False, repr=False)

    def spend(self, steps: int) -> bool:
        """Take `steps`; False (and `cut`) once steps or time ran out."""
        if self.cut:
            return False
        if self._deadline_s is None and self.time_ms is not None:
            self._deadline_s = time.perf_counter() + self.time_ms / 1000
        self.steps_left -= steps
        self.steps_spent += steps
        if self.steps_left < 0 or (
            self._deadline_s is not None and time.perf_counter() > self._deadline_s
        ):
            self.cut = True
        return not self.cut


def reachable(
    space: _Space,
    candidates: Sequence[Transfer],
    target: Dense | None = None,
    budget: Budget | None = None,
) -> dict[Dense, Ways] | None:
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
    ways: dict[Dense, Ways] = {space.zero: Ways(1, ((),))}
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
        if budget is not None and not budget.spend(len(ways)):
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


def _viable(v: Dense, target: Dense, lo: list[int], hi: list[int]) -> bool:
    for x, t, low, high in zip(v, target, lo, hi, strict=True):  # noqa: SIM110 (hot loop)
        if not low <= t - x <= high:
            return False
    return True


@dataclass(frozen=True, slots=True)
class Fault:
    """A way a transfer could have gone wrong, as a change to the balances."""

    kind: str  # lost | stale | duplicated | failed-applied | half-debit | half-credit | future
    transfer: Transfer
    adjust: Vec  # sparse: touches at most two accounts

    def words(self) -> str:
        t = self.transfer.words()
        return {
            "lost": f"acknowledged transfer {t} was not applied",
            "stale": f"transfer {t}, acknowledged before the read began, is not visible",
            "duplicated": f"transfer {t} was applied twice",
            "failed-applied": f"transfer {t} failed, yet was applied"
            if self.transfer.found != ABSENT
            else f"transfer {t} was fenced by a lookup that found it absent, yet was applied",
            "half-debit": f"transfer {t} is half-applied: its debit without its credit",
            "half-credit": f"transfer {t} is half-applied: its credit without its debit",
            "future": f"transfer {t} is visible before it was invoked",
        }[self.kind]


def faults(
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
        e = effect(t)
        out.append(Fault("lost" if final else "stale", t, sub((), e)))
        out.append(Fault("duplicated", t, e))
        out.append(Fault("half-debit", t, ((t.target, -t.amount_cents),)))
        out.append(Fault("half-credit", t, ((t.source, t.amount_cents),)))
    for t in candidates:
        out.append(Fault("half-debit", t, ((t.source, -t.amount_cents),)))
        out.append(Fault("half-credit", t, ((t.target, t.amount_cents),)))
    out.extend(Fault("failed-applied", t, effect(t)) for t in failed)
    out.extend(Fault("future", t, effect(t)) for t in future)
    return out


@dataclass(slots=True)
class Explanation:
    """The outcome of one explanation search."""

    combos: list[list[Fault]]  # the smallest fault sets found, best first
    size_searched: int  # every set of up to this many faults was tried
    cut: bool  # the budget ran out before the search was complete


def explain(
    target: Vec,
    reached: Sequence[Vec],
    fs: Sequence[Fault],
    budget: Budget,
    *,
    faults_max: int = FAULTS_MAX,
    explanations_max: int = EXPLANATIONS_MAX,
    size_from: int = 1,
) -> Explanation:
    """The smallest sets of faults (`size_from`, else one more, ... up to
    `faults_max`) that, with some vector in `reached` (the subsets of the
    transfers in flight), add up to `target`.

    Searched from the accounts that are off, never over all faults: if the
    residual moves account a, some fault in the set moves a, so only faults
    touching a (the one touched by fewest) need trying; the last fault is a
    lookup by its exact vector; a residual on more than 2k accounts cannot
    be k faults, since a fault moves at most two. Sets are ranked by their
    first fault, then their vector in `reached`, then the other faults."""
    by_account: dict[str, list[int]] = {}
    by_adjust: dict[Vec, list[int]] = {}
    for i, f in enumerate(fs):
        by_adjust.setdefault(f.adjust, []).append(i)
        for account, _ in f.adjust:
            by_account.setdefault(account, []).append(i)

    def sets(
        r: Vec, k: int, chosen: frozenset[int], seen: set[frozenset[int]]
    ) -> Iterator[frozenset[int]]:
        """Sets of k more faults, on transfers not yet used, summing to r.
        A set reached before in another order is not searched again."""
        used = {fs[i].transfer.id for i in chosen}
        if k == 1:
            if len(r) <= 2:
                for j in by_adjust.get(r, ()):
                    if fs[j].transfer.id not in used:
                        yield chosen | {j}
            return
        # No faults cancel out inside a smallest set, so r stays nonzero.
        if not r or len(r) > 2 * k:
            return
        pivot = min((a for a, _ in r), key=lambda a: len(by_account.get(a, ())))
        for i in by_account.get(pivot, ()):
            more = chosen | {i}
            if fs[i].transfer.id in used or more in seen:
                continue
            seen.add(more)
            if not budget.spend(1):
                return
            yield from sets(sub(r, fs[i].adjust), k - 1, more, seen)

    assert size_from >= 1, size_from
    size = size_from - 1  # sets smaller than size_from were searched before
    for k in range(size_from, faults_max + 1):
        found: set[tuple[int, ...]] = set()
        ranked: list[tuple[int, ...]] = []
        for p, v in enumerate(reached):
            if not budget.spend(1):
                break
            for combo in sets(sub(target, v), k, frozenset(), set()):
                key = tuple(sorted(combo))
                if key not in found:
                    found.add(key)
                    ranked.append((key[0], p, *key[1:]))
            if budget.cut:
                break
        if ranked:
            ranked.sort()
            combos = [[fs[i] for i in (key[0], *key[2:])] for key in ranked[:explanations_max]]
            for combo, key in zip(combos, ranked, strict=False):
                rest = target
                for f in combo:
                    rest = sub(rest, f.adjust)
                assert rest == reached[key[1]], (combo, rest)  # the faults do explain it
            return Explanation(combos, k, budget.cut)
        if budget.cut:
            return Explanation([], size, True)
        size = k
    return Explanation([], size, False)


# --8<-- [end:ledger-resolve]


@dataclass(slots=True)
class _ReadCheck:
    """The outcome of holding one read against the transfers, and what an
    explanation of a wrong read starts from."""

    ok: bool | None  # None: too many subsets to enumerate
    ways: Ways | None
    candidates: list[Transfer]
    target: Vec  # what the transfers in flight had to account for
    fixed: list[Transfer]  # acknowledged before the read began
    explanation: Explanation | None = None  # None: fine, or not explained yet
    reached: list[Vec] | None = None  # every subset's vector, once computed
    fs: list[Fault] | None = None  # the single faults, once listed


def _hold_read(
    initial: Mapping[str, int],
    read: Read,
    transfers: Sequence[Transfer],
    *,
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
    # What the transfers in flight must account for: the read, less the
    # initial balances and everything certainly applied.
    off = {a: read.balances.get(a, 0) - initial.get(a, 0) for a in {*read.balances, *initial}}
    for t in fixed:
        off[t.source] = off.get(t.source, 0) + t.amount_cents
        off[t.target] = off.get(t.target, 0) - t.amount_cents
    target = sparse(off)
    space = _Space(a for t in candidates for a in (t.source, t.target))
    # An account no transfer in flight touches must already be right.
    if not all(a in space.slot for a, _ in target):
        return _ReadCheck(False, None, candidates, target, fixed)
    ways = reachable(space, candidates, space.dense(target), budget)
    if ways is None:
        return _ReadCheck(None, None, candidates, target, fixed)
    hit = ways.get(space.dense(target))
    return _ReadCheck(hit is not None, hit, candidates, target, fixed)


def _explain_read(
    check: _ReadCheck,
    read: Read,
    transfers: Sequence[Transfer],
    budget: Budget,
    *,
    final: bool,
    size_from: int,
    faults_max: int,
) -> None:
    """Search fault sets of `size_from`..`faults_max` faults for a wrong read,
    on the explanation budget; the outcome lands in `check.explanation`."""
    assert check.ok is False
    before = check.explanation
    if before is not None and (before.combos or before.cut):
        return  # found already, or cut short: a larger search cannot do better
    if budget.cut:
        check.explanation = Explanation([], size_from - 1, True)
        return
    space = _Space(a for t in check.candidates for a in (t.source, t.target))
    outside = sum(1 for a, _ in check.target if a not in space.slot)
    if outside > 2 * faults_max:
        # Every subset of the in-flight transfers leaves these accounts
        # alone, and each fault moves at most two accounts.
        check.explanation = Explanation([], faults_max, False)
        return
    if check.reached is None:
        every = reachable(space, check.candidates, None, budget)
        if every is None:
            check.explanation = Explanation([], size_from - 1, True)
            return
        check.reached = [space.sparse(d) for d in every]
    if check.fs is None:
        failed = [t for t in transfers if t.status == "failed" and t.invoke_index < read.index]
        future = [t for t in transfers if t.status != "failed" and t.invoke_index > read.index]
        check.fs = faults(check.fixed, check.candidates, failed, future, final=final)
        # Listing them is work too (about a quarter of a search step each).
        if not budget.spend(len(check.fs) // 4):
            check.explanation = Explanation([], size_from - 1, True)
            return
    check.explanation = explain(
        check.target,
        check.reached,
        check.fs,
        budget,
        size_from=size_from,
        faults_max=faults_max,
    )


# --- the checker ---------------------------------------------------------


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


def check_ledger(
    events: Sequence[Event],
    *,
    initial: Mapping[Any, int] | None = None,
    realtime: bool = True,
    negative_allowed: bool = False,
    faults_max: int = FAULTS_MAX,
    explain_steps: int = EXPLAIN_STEPS,
    explain_time_ms: float | None = EXPLAIN_TIME_MS,
) -> Verdict:
    """Hold transfers against reads; see the module docstring for the rules.

    `faults_max`, `explain_steps` and `explain_time_ms` bound only the search
    for explanations (which faults would produce a wrong read), never the
    verdict: with `explain_steps=0` errors are found just the same, unexplained.
    """
    assert faults_max >= 0 and explain_steps >= 0, (faults_max, explain_steps)
    ops = pair_operations(list(events))
    errors: list[LedgerError] = []
    by_id = _transfers(ops, errors)
    answers = _lookups(ops, by_id, errors)
    transfers = sorted(by_id.values(), key=lambda t: t.invoke_index)
    init = _initial(ops, initial)
    if init is None:
        return Verdict(
            "ledger",
            "unknown",
            "No initial balances: record an ok f='init' operation or pass `initial`.",
            {"transfers": len(transfers)},
        )
    setting = _setting(ops, init, transfers, answers)
    resolution, never, checked = _resolve_final_read(setting)
    for r in setting.reads:
        _check_balances(r, setting.total_cents, negative_allowed, errors)
    wrong, unchecked = _hold_reads(setting, checked, never, realtime, errors)
    explain_budget = Budget(explain_steps, explain_time_ms)
    _explain_wrong_reads(wrong, setting, explain_budget, faults_max, errors)
    details = _details(setting, errors, resolution, unchecked, realtime)
    details["explain"] = {
        "steps": explain_budget.steps_spent,
        "steps_max": explain_steps,
        "time_ms_max": explain_time_ms,
        "faults_max": faults_max,
        "cut_short": explain_budget.cut,
    }
    return _verdict(setting, errors, resolution, unchecked, details)


def _setting(
    ops: list[Operation], init: dict[str, int], transfers: list[Transfer], answers: int
) -> _Setting:
    reads = _reads(ops)
    accounts = set(init) | {a for t in transfers for a in (t.source, t.target)}
    accounts |= {a for r in reads for a in r.balances}
    every_account = frozenset(accounts)
    last_transfer = max((i for op in ops if op.f == "transfer" for i in _indices(op)), default=-1)
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
    )


def _resolve_final_read(
    setting: _Setting,
) -> tuple[dict[str, Any], frozenset[str], dict[int, _ReadCheck]]:
    """The final read first: transfers it shows never took effect were never
    visible to any read, which shrinks every other read's search.

    (what became of the indefinite transfers, those that never took effect,
    {read index: its check}).
    """
    if not setting.finals:
        return {"status": "no-final-read"}, frozenset(), {}
    last = setting.finals[-1]
    result = _hold_read(setting.start, last, setting.transfers)
    checked = {last.index: result}
    if result.ok is None:
        too_many = {
            "status": "too-many",
            "message": f"{len(result.candidates)} indefinite transfers: too many "
            f"subsets to enumerate (more than {STATES_MAX} distinct balance "
            "vectors); which were applied cannot be told",
        }
        return too_many, frozenset(), checked
    if not result.ok:
        return {"status": "unresolvable", "index": last.index}, frozenset(), checked
    resolution = _resolution(result)
    return resolution, frozenset(resolution.get("not_applied", ())), checked


_Wrong = tuple[int, Read, _ReadCheck, bool]  # (its place in errors, the read, its check, final?)


def _hold_reads(
    setting: _Setting,
    checked: dict[int, _ReadCheck],
    never: frozenset[str],
    realtime: bool,
    errors: list[LedgerError],
) -> tuple[list[_Wrong], int]:
    """Hold each full read to real time (or only the final ones), on the work
    budget; a wrong read's error is recorded unexplained, to be explained later.
    Returns (the wrong reads, how many reads the budget left unchecked)."""
    final_indices = {r.index for r in setting.finals}
    budget = Budget(WORK_MAX)
    wrong: list[_Wrong] = []
    unchecked = 0
    total = setting.total_cents
    for r in setting.full:
        is_final = r.index in final_indices
        result = checked.get(r.index)
        if result is None and (realtime or is_final):
            result = _hold_read(setting.start, r, setting.transfers, never=never, budget=budget)
        if result is not None and result.ok is False:
            wrong.append((len(errors), r, result, is_final))
            errors.append(_read_error(r, total, result, final=is_final))
            continue
        if result is not None and result.ok is None:
            unchecked += 1
        if (result is None or result.ok is None) and sum(r.balances.values()) != total:
            errors.append(_total_error(r, total, setting.transfers))
    return wrong, unchecked


def _explain_wrong_reads(
    wrong: list[_Wrong],
    setting: _Setting,
    budget: Budget,
    faults_max: int,
    errors: list[LedgerError],
) -> None:
    """Explanations, on their own budget, written into each wrong read's error.

    Every wrong read in history order gets the cheap search (one or two
    faults) before any read gets a deeper one, so one hard read cannot spend
    the budget that would have explained all the others.
    """
    for size_from, size_to in ((1, min(2, faults_max)), (3, faults_max)):
        for _, r, result, is_final in wrong:
            if size_from <= size_to:
                _explain_read(
                    result,
                    r,
                    setting.transfers,
                    budget,
                    final=is_final,
                    size_from=size_from,
                    faults_max=size_to,
                )
    for at, r, result, is_final in wrong:
        errors[at] = _read_error(r, setting.total_cents, result, final=is_final)


def _details(
    setting: _Setting,
    errors: list[LedgerError],
    resolution: dict[str, Any],
    unchecked: int,
    realtime: bool,
) -> dict[str, Any]:
    """The verdict's figures (the explanation search's are added by the caller)."""
    transfers = setting.transfers
    settled = [t for t in transfers if t.settled_by_lookup]
    return {
        "accounts": sorted(setting.accounts),
        "initial_total_cents": setting.total_cents,
        "transfers": {
            s: sum(1 for t in transfers if t.status == s)
            for s in ("acknowledged", "failed", "indefinite")
        },
        "lookups": {
            "answers": setting.answers,
            "settled_applied": sum(1 for t in settled if t.found == APPLIED),
            "settled_absent": sum(1 for t in settled if t.found == ABSENT),
        },
        "reads": len(setting.reads),
        "complete_reads": len(setting.full),
        "final_reads": [r.index for r in setting.finals],
        "reads_unchecked": unchecked,
        "realtime": realtime,
        "resolution": resolution,
        "error_count": len(errors),
        "errors_by_kind": _by_kind(errors),
    }


def _verdict(
    setting: _Setting,
    errors: list[LedgerError],
    resolution: dict[str, Any],
    unchecked: int,
    details: dict[str, Any],
) -> Verdict:
    if errors:
        first = errors[0]
        why = f" Smallest explanation: {first.explanations[0]}." if first.explanations else ""
        return Verdict(
            "ledger",
            False,
            f"{len(errors)} ledger violations ({_kinds(errors)}). First, at index "
            f"{first.index}: {first.message}.{why}",
            details,
            [e.to_json() for e in errors[:ERRORS_MAX]],
        )
    if not setting.finals:
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
    counts, lookups = details["transfers"], details["lookups"]
    settled = sum(1 for t in setting.transfers if t.settled_by_lookup)
    partial = (
        f" {unchecked} reads had too many transfers in flight to hold to real time "
        f"within the search budget ({WORK_MAX} steps); their totals were checked."
        if unchecked
        else ""
    )
    looked = (
        f" Lookups by id settled {settled} transfers whose attempts ended unknown "
        f"({lookups['settled_applied']} applied, {lookups['settled_absent']} absent and "
        "fenced), and the final balances agree."
        if settled
        else ""
    )
    return Verdict(
        "ledger",
        True,
        f"Every acknowledged transfer took effect exactly once ({counts['acknowledged']} "
        f"acknowledged, {counts['failed']} failed, {counts['indefinite']} indefinite); "
        f"no read saw a transfer half-applied.{looked} {resolution['message']}{partial}",
        details,
    )


def _indices(op: Operation) -> list[int]:
    return [op.invoke.index] + ([op.completion.index] if op.completion is not None else [])


def _full(r: Read, accounts: frozenset[str]) -> bool:
    return r.balances.keys() == accounts and all(_amount(b) for b in r.balances.values())


def _check_balances(
    r: Read, total_cents: int, negative_allowed: bool, errors: list[LedgerError]
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


def _read_error(r: Read, total_cents: int, result: _ReadCheck, *, final: bool) -> LedgerError:
    got = sum(r.balances.values())
    why = result.explanation
    combos = why.combos if why is not None else []
    words = [" and ".join(f.words() for f in combo) for combo in combos]
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
    return LedgerError(kind, r.index, r.time_ms, message + _explained(why, words), words)


def _explained(why: Explanation | None, words: list[str]) -> str:
    """What the explanation search found, and whether it was cut short."""
    if why is None:
        return ""  # faults_max=0: no explanation was asked for
    if why.cut and why.size_searched == 0 and not words:
        return (
            "; the search for an explanation was cut short by its budget before it "
            "could try any fault (details.explain)"
        )
    if words:
        return (
            "; the search for explanations was cut short by its budget: others of the "
            "same size may exist (details.explain)"
            if why.cut
            else ""
        )
    plural = "fault" if why.size_searched == 1 else "faults"
    if why.cut:
        return (
            f"; no combination of up to {why.size_searched} {plural} explains it, and "
            "the search for larger ones was cut short by its budget (details.explain)"
        )
    return (
        f"; no combination of up to {why.size_searched} {plural} explains it (more "
        "faults, or a transfer the history never recorded)"
    )


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
