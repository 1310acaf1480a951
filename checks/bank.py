"""Jepsen's bank checker: reads of all accounts must add up to the same total.

The workload moves money between a fixed set of accounts and reads balances.
Transfers conserve money, so whatever order a correct system applies them in,
every read that sees all accounts at one instant sees the initial total, and
(when the model forbids overdrafts) no balance below zero. A read that adds up
to something else saw a transfer half-applied, or money made or lost.

This checker, like Jepsen's, judges the reads alone; it never holds the
transfers against them (see `checks.transfers` for that).

History vocabulary (one operation = an invoke and its completion):

    f="transfer"  value {"from": acct, "to": acct, "amount": int}
                  ("amount_cents" is accepted too); not judged here.
    f="read"      invoke value None: a read of every account;
                  invoke value [acct, ...]: a read of just those (a partial
                  read, checked for negative and unknown accounts only);
                  ok value {acct: balance, ...}.

Account ids are compared as strings, so histories that went through JSON
(where map keys become strings) compare equal to ones that did not.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard, cast

from checks.history import Event, HistoryError, pair_operations
from checks.verdict import Verdict, has_client_operations, no_client_operations, plural

WITNESS_READS_MAX = 10  # bad reads quoted in full in the witness


@dataclass(frozen=True, slots=True)
class BadRead:
    """One read that breaks the bank invariant, and when it happened."""

    kind: str  # wrong-total | negative-balance | unexpected-account | missing-account | nil-balance
    index: int  # history index of the read's completion
    time_ms: float  # when the read completed
    process: int | str
    message: str  # what is wrong, in words
    total: int | None  # what the read adds up to (None: it could not be added)
    balances: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "index": self.index,
            "time_ms": self.time_ms,
            "process": self.process,
            "message": self.message,
            "total": self.total,
            "balances": self.balances,
        }


@dataclass(frozen=True, slots=True)
class ReadTotal:
    """A complete read's total, for the plot of totals over time."""

    time_ms: float
    index: int
    total: int | None  # None: a balance was missing or not a number
    bad: bool


def _balances(value: Any, where: int) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise HistoryError(f"event {where}: a read's ok value must be a map, not {value!r}")
    if _NAMES.issuperset(map(type, value)) and _BALANCES.issuperset(map(type, value.values())):
        return value  # (the usual read: names and cents, checked in C; as below, no copy)
    for acct, cents in value.items():
        # A balance is whole cents, or nil (Jepsen's nil-balance); anything else
        # is not a read of a bank, and no verdict can be drawn from it.
        if not (cents is None or _is_amount(cents)) or not (
            isinstance(acct, str) or _is_amount(acct)
        ):
            raise HistoryError(
                f"event {where}: account {acct!r} reads {cents!r}: a balance is an "
                "integer number of cents, or nil"
            )
    if all(isinstance(k, str) for k in value):  # (an EDN keyword is a str, equal to its name)
        return value  # (most histories: no copy, so memory holds each read once)
    return {str(k): v for k, v in value.items()}


def _is_amount(x: object) -> TypeGuard[int]:
    return isinstance(x, int) and not isinstance(x, bool)


# The types of a usual read, judged a whole read at a time (`map(type, ...)`
# runs in C): a minute of chapter 4 has 352 reads of 2,000 balances each,
# and asking `_is_amount` of each balance, three times over, was most of
# this checker's time. Anything else (an int subclass, a missing balance)
# takes the item-by-item path, which says what is wrong.
_NAMES = frozenset({str})
_BALANCES = frozenset({int, type(None)})
_INTS = frozenset({int})


# --8<-- [start:bank-check]
def check_bank(
    events: Sequence[Event],
    *,
    total: int | None = None,
    accounts: Iterable[Any] | None = None,
    negative_allowed: bool = False,
) -> Verdict:
    """Judge every ok read: known accounts only, no nil or negative balance,
    and (for reads of all accounts) the expected total.

    `total`: the money in the bank; if None, the most common total among
    complete reads is taken (and the summary says so). `accounts`: the
    accounts that exist; if None, every account any read returned.
    """
    if not has_client_operations(events):
        return no_client_operations("bank")
    reads = [op for op in pair_operations(list(events), only=("read",)) if op.type == "ok"]
    observed = [
        (op, _balances(done.value, done.index))
        for op in reads
        if (done := op.completion) is not None  # (every ok read has one)
    ]
    if accounts is None:
        known = sorted({acct for _, bal in observed for acct in bal})
        accounts_source = "every account a read returned"
    else:
        known = sorted({str(a) for a in accounts})
        accounts_source = "given"
    complete = [(op, bal) for op, bal in observed if op.invoke.value is None]
    totals = [_sum(bal, known) for _, bal in complete]
    if total is None:
        counted = Counter(t for t in totals if t is not None)
        if not counted:
            return Verdict(
                "bank",
                "unknown",
                "No complete read of all accounts: nothing to hold the total against.",
                {"read_count": len(reads), "accounts": known},
            )
        total = counted.most_common(1)[0][0]  # ties: the first seen wins
        total_source = "most common total of complete reads (none was given)"
    else:
        total_source = "given"

    bad: list[BadRead] = []
    points: list[tuple[float, int, int | None, bool]] = []  # as ReadTotal, but lighter
    for op, bal in observed:
        done = op.completion
        assert done is not None
        found = _judge_read(bal, known, total, negative_allowed, full=op.invoke.value is None)
        for kind, message in found:
            bad.append(
                BadRead(kind, done.index, done.time_ms, op.process, message, _sum(bal, known), bal)
            )
        if op.invoke.value is None:
            points.append((done.time_ms, done.index, _sum(bal, known), bool(found)))
    # --8<-- [end:bank-check]
    return _verdict(bad, points, reads, known, total, total_source, accounts_source)


def _sum(balances: dict[str, Any], accounts: list[str]) -> int | None:
    found = list(map(balances.get, accounts))
    if _INTS.issuperset(map(type, found)):
        return sum(cast("list[int]", found))
    amounts = [v for v in found if _is_amount(v)]
    return sum(amounts) if len(amounts) == len(accounts) else None


def _judge_read(
    bal: dict[str, Any], known: list[str], total: int, negative_allowed: bool, *, full: bool
) -> list[tuple[str, str]]:
    """What is wrong with one read: a list of (kind, message), empty if nothing."""
    found: list[tuple[str, str]] = []
    known_set = set(known)
    unexpected = sorted(set(bal) - known_set)
    if unexpected:
        found.append(
            ("unexpected-account", f"read returned accounts that do not exist: {unexpected}")
        )
    all_ints = _INTS.issuperset(map(type, bal.values()))
    nil = (
        []
        if all_ints
        else sorted(a for a, v in bal.items() if a in known_set and not _is_amount(v))
    )
    if nil:
        found.append(("nil-balance", f"accounts {nil} have no numeric balance"))
    if not negative_allowed and not (all_ints and min(bal.values(), default=0) >= 0):
        negative = {a: v for a, v in bal.items() if _is_amount(v) and v < 0}
        if negative:
            found.append(("negative-balance", f"balances below zero: {negative}"))
    if full:
        missing = sorted(known_set - set(bal))
        if missing:
            found.append(("missing-account", f"a read of all accounts did not return {missing}"))
        got = _sum(bal, known)
        if got is not None and got != total:
            diff = got - total
            found.append(
                (
                    "wrong-total",
                    f"balances add up to {got}, not {total} "
                    f"({'+' if diff > 0 else ''}{diff}): a transfer seen half-applied, "
                    "or money created or lost",
                )
            )
    return found


def _verdict(
    bad: list[BadRead],
    points: list[tuple[float, int, int | None, bool]],
    reads: list[Any],
    known: list[str],
    total: int,
    total_source: str,
    accounts_source: str,
) -> Verdict:
    by_kind: dict[str, dict[str, Any]] = {}
    for b in bad:
        entry = by_kind.setdefault(b.kind, {"count": 0, "first": b.to_json(), "last": None})
        entry["count"] += 1
        entry["last"] = b.to_json()
    details: dict[str, Any] = {
        "read_count": len(reads),
        "complete_read_count": len(points),
        "bad_read_count": len({b.index for b in bad}),
        "expected_total": total,
        "total_source": total_source,
        "accounts": known,
        "accounts_source": accounts_source,
        "errors": by_kind,
        "totals": points,  # [time_ms, index, total, bad] per complete read
    }
    if not points and not bad:
        return Verdict(
            "bank",
            "unknown",
            "No complete read of all accounts: nothing to hold the total against.",
            details,
        )
    if not bad:
        return Verdict(
            "bank",
            True,
            (
                f"All {len(points)} complete reads add up to {total}"
                if len(points) != 1
                else f"The only complete read adds up to {total}"
            )
            + f"; no bad balance in {plural(len(reads), 'read')}.",
            details,
        )
    first = bad[0]
    kinds = ", ".join(f"{k} x{v['count']}" for k, v in sorted(by_kind.items()))
    summary = (
        f"{details['bad_read_count']} of {len(reads)} reads break the bank invariant ({kinds}). "
        f"First: read at index {first.index}, t={first.time_ms:g} ms: {first.message}. "
        "Look at what was in flight around that time."
    )
    return Verdict("bank", False, summary, details, [b.to_json() for b in bad[:WITNESS_READS_MAX]])


def bank_totals(verdict: Verdict) -> list[ReadTotal]:
    """The totals of complete reads, from a bank verdict, for plotting."""
    assert verdict.checker == "bank", verdict.checker
    return [ReadTotal(t, i, tot, b) for t, i, tot, b in verdict.details.get("totals", [])]
