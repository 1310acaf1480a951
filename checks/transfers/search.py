"""The two bounded searches over balance changes.

A read is right when some subset of the transfers in flight, added to
what was certainly applied, gives its balances: `reachable` enumerates
those subsets by the distinct vectors they make. When none fits,
`explain` looks for the fewest faults (a transfer lost, applied twice,
half-applied, ...) that would make it fit. Both run on budgets, so a
hard history gives "unknown" or "cut short" rather than no answer.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from checks.transfers.history import ABSENT, Transfer

STATES_MAX = 20_000  # distinct balance vectors the subset search may hold
WORK_MAX = 400_000  # vector steps all real-time read checks may take together
EXAMPLES_MAX = 3  # example subsets kept per balance vector
FAULTS_MAX = 6  # the most faults one explanation may combine
EXPLANATIONS_MAX = 5  # fault sets reported per wrong read
EXPLAIN_STEPS = 50_000  # search steps all explanations of one check may take (~0.25 s)
EXPLAIN_TIME_MS = 1_000.0  # and the wall time they may take (None: steps only)

Vec = tuple[tuple[str, int], ...]  # sparse balance change: sorted (account, cents), no zeros
Dense = tuple[int, ...]  # balance change over one _Space's accounts


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
