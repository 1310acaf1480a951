"""Holding one read against the transfers, and what its error says.

A read must be the initial balances plus every transfer acknowledged
before it began, plus some of those in flight; a wrong one is explained
by the fewest faults found on the explanation budget, and its error says
so in words. Also the plain checks on each read's balances.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from checks.transfers.history import LedgerError, Read, Transfer, _amount, all_amounts
from checks.transfers.search import (
    Budget,
    Explanation,
    Fault,
    Vec,
    Ways,
    _Space,
    explain,
    faults,
    reachable,
    sparse,
)


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


def _check_balances(
    r: Read, total_cents: int, negative_allowed: bool, errors: list[LedgerError]
) -> None:
    amounts = all_amounts(r.balances.values())
    bad = {} if amounts else {a: b for a, b in r.balances.items() if not _amount(b)}
    if bad:
        errors.append(
            LedgerError("nil-balance", r.index, r.time_ms, f"read returned non-numbers {bad}")
        )
    if not negative_allowed and not (amounts and min(r.balances.values(), default=0) >= 0):
        negative = {a: b for a, b in r.balances.items() if _amount(b) and b < 0}
        if negative:
            errors.append(
                LedgerError(
                    "negative-balance", r.index, r.time_ms, f"balances below zero: {negative}"
                )
            )


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
