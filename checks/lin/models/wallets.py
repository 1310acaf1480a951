"""An accounts history with opening balances, checked one wallet at a time.

d11's payment chapters record the ledger workload (`checks.lin.models.accounts`)
with two more things: an `init` operation whose ok value holds every
account's opening balance, and reads of *every* account at once. One search
over such a history is hopeless (each full read ties thousands of accounts
together), but linearizability is local (Herlihy and Wing): it holds iff it
holds on each object's projection. So the history is projected on each
wallet and each projection searched alone. `project` is that projection,
written once: chapter 4's own check (`chapters/ch4_paxos/wallets.py`) calls
it with its wallets (the `u...` accounts of one share), `d11 check lin` with
the accounts no transfer credits.

- a wallet is an account that no transfer credits (a merchant credited by
  hundreds of concurrent payments is left out: the search for the subset
  each read saw is what explodes; `d11 check ledger` holds every account);
- a payment from a wallet is a transfer to a sink of its own, so the model
  still refuses an acknowledged payment that overdraws it; its attempts
  (one transfer id) are one operation, from the first invoke to the first
  `ok` or a lookup that found it applied, dropped if all failed or a lookup
  found it absent;
- each full read is a read of each wallet, less the repeats that add
  nothing: in a quiet spell (no payment of the wallet in flight) every read
  must show one balance, so the first read of each balance there stands for
  the rest.

`is_wallet_history(events)` tells this kind (an ok `init`, no deposits: a
ledger history without them is searched whole, as before);
`wallet_history(events)` returns the wallets' opening balances and the
projected operations; `project(ops, is_wallet)` projects paired operations
on the wallets a predicate names; `wallet_parts(ops, is_wallet, model)`
makes the parts the checker would search for that projection, without
the projected operations (chapter 4's check trusts it for "linearizable").
"""

from __future__ import annotations

import bisect
import math
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from checks.history import Event, HistoryError, Operation, pair_operations
from checks.lin.checker import Part
from checks.lin.model import UNKNOWN, Call
from checks.lin.models.accounts import READ, TRANSFER, LedgerModel
from checks.transfers.history import (
    SETTLE,
    named_accounts,
    second_init,
    settlement_transfer,
    touches_read_money,
    unmodelled,
)

INIT = "init"


@dataclass(frozen=True)
class WalletHistory:
    """Opening balances of the wallets, and the history projected on them."""

    initial: dict[str, int]
    operations: list[Operation]
    wallets: int
    left_out: int  # accounts credited by transfers (merchants): not searched


def is_wallet_history(events: Sequence[Event]) -> bool:
    """True for d11's own kind: opening balances (`init`), then payments, no deposits."""
    fs = {(ev.f, ev.type) for ev in events if ev.process != "nemesis"}
    return (INIT, "ok") in fs and not any(f == "deposit" for f, _ in fs)


def wallet_history(events: Sequence[Event]) -> WalletHistory:
    """The history projected on each wallet, with the wallets' opening balances."""
    ops = pair_operations(list(events))
    others = unmodelled(ops)
    if others:
        kinds = ", ".join(f"{f} x{n}" for f, n in others.items())
        raise HistoryError(
            f"the history has operations the ledger model does not know ({kinds}): they may "
            "move money it cannot see, so no verdict on it would be sound"
        )
    initial = _opening(ops)
    credited = {
        str(op.invoke.value.get("to"))
        for op in ops
        if op.f == "transfer" and isinstance(op.invoke.value, dict)
    }
    if any(op.f == SETTLE for op in ops):  # a settlement credits the escrow's settled twin
        named = named_accounts(ops)
        settles = [op for op in ops if op.f == SETTLE and touches_read_money(op, named)]
        for op in settles:
            moved = settlement_transfer(op, named)
            credited |= {moved["from"], moved["to"]}
    accounts = set(initial) | {str(a) for op in ops if _is_full_read(op) for a in _read_value(op)}
    wallets = accounts - credited
    return WalletHistory(
        {a: c for a, c in initial.items() if a in wallets},
        project(ops, lambda account: account not in credited),
        len(wallets),
        len(accounts & credited),
    )


def _opening(ops: list[Operation]) -> dict[str, int]:
    """The `init` operation's balances ({} when the history has none)."""
    inits = [op for op in ops if op.f == INIT and op.type == "ok" and op.completion is not None]
    if not inits:
        return {}
    if len(inits) > 1:
        raise second_init(inits)
    value = inits[0].completion.value if inits[0].completion else None
    if not isinstance(value, Mapping) or not all(type(c) is int for c in value.values()):
        raise HistoryError(
            f"event {inits[0].invoke.index}: init's value must map accounts to integer cents"
        )
    return {str(a): c for a, c in value.items()}


# --8<-- [start:wallet-projection]
def project(ops: Sequence[Operation], is_wallet: Callable[[str], bool]) -> list[Operation]:
    """The operations projected on each wallet `is_wallet` names: its payments
    as transfers to a sink of its own, and each full read as a read of it."""
    payments = _payments(ops, is_wallet)
    reads = [op for op in ops if _is_full_read(op)]
    return _reads(reads, is_wallet, _spans(payments)) + [p.operation() for p in payments]


def _spans(payments: list[_Payment]) -> dict[str, list[tuple[int, float]]]:
    """Each wallet's payments' (invoke, end)."""
    spans: dict[str, list[tuple[int, float]]] = {}
    for p in payments:
        spans.setdefault(p.invoke.value["from"], []).append((p.invoke.index, p.end))
    return spans


def _reaches(spans: dict[str, list[tuple[int, float]]]) -> dict[str, tuple[list[int], list[float]]]:
    """Each wallet's payments' invokes, sorted, and their reach: reach[i] is
    the latest end among payments 0..i."""
    by_wallet: dict[str, tuple[list[int], list[float]]] = {}
    for wallet, span in spans.items():
        span.sort()
        reach, top = [], -math.inf
        for _, end in span:
            top = max(top, end)
            reach.append(top)
        by_wallet[wallet] = ([i for i, _ in span], reach)
    return by_wallet


@dataclass
class _Payment:
    """One transfer id's attempts, as one operation on its wallet."""

    invoke: Event
    done: Event | None

    @property
    def end(self) -> float:
        return math.inf if self.done is None else self.done.index

    def operation(self) -> Operation:
        v = self.invoke.value
        process = f"{v['id']}/{v['from']}"
        value = {"from": v["from"], "to": f"{v['from']}>out", "amount": v["amount"]}
        first = Event("invoke", process, "transfer", value, self.invoke.time_ms, self.invoke.index)
        if self.done is None:
            return Operation(process, "transfer", first, None)
        ok = Event("ok", process, "transfer", value, self.done.time_ms, self.done.index)
        return Operation(process, "transfer", first, ok)


def _payments(ops: Sequence[Operation], is_wallet: Callable[[str], bool]) -> list[_Payment]:
    """Each payment out of a wallet, its attempts merged by id, lookups applied."""
    attempts: dict[str, list[Operation]] = {}
    found: dict[str, tuple[str, Event]] = {}  # payment id -> a lookup's answer, and when
    for op in ops:
        v = op.invoke.value
        if op.f == "transfer" and not isinstance(v, dict):
            where = op.invoke.index
            raise HistoryError(f"event {where}: a transfer's value is {{from, to, amount}}")
        if op.f == "transfer" and is_wallet(str(v.get("from"))):
            attempts.setdefault(str(v.get("id", f"#{op.invoke.index}")), []).append(op)
        elif op.f == "lookup-transfer" and op.type == "ok" and op.completion is not None:
            answers = op.completion.value
            for pid, answer in answers.items() if isinstance(answers, dict) else ():
                found.setdefault(str(pid), (str(answer), op.completion))
    out = []
    for pid, tries in attempts.items():
        ends = [t.completion for t in tries if t.type == "ok" and t.completion is not None]
        answer, lookup = found.get(pid, ("", None))
        if answer == "applied" and lookup is not None:
            ends.append(lookup)  # the lookup saw it applied: it took effect by then
        if not ends and (answer == "absent" or all(t.type == "fail" for t in tries)):
            continue  # certainly never applied: no operation at all
        first = tries[0].invoke
        v = first.value
        cents = v.get("amount_cents", v.get("amount"))
        value = {"id": pid, "from": str(v.get("from")), "amount": cents}
        invoke = Event("invoke", first.process, "transfer", value, first.time_ms, first.index)
        out.append(_Payment(invoke, min(ends, key=lambda e: e.index) if ends else None))
    return out


def _reads(
    reads: list[Operation],
    is_wallet: Callable[[str], bool],
    spans: dict[str, list[tuple[int, float]]],
) -> list[Operation]:
    """Each full read as a read of each wallet, less the quiet spells' repeats."""
    out: list[Operation] = []
    for op, wallet, cents in _kept_reads(reads, is_wallet, spans):
        done = op.completion
        assert done is not None
        process = f"{op.process}/{wallet}"
        invoke = Event("invoke", process, "read", [wallet], op.invoke.time_ms, op.invoke.index)
        ok = Event("ok", process, "read", {wallet: cents}, done.time_ms, done.index)
        out.append(Operation(process, "read", invoke, ok))
    return out


def _kept_reads(
    reads: list[Operation],
    is_wallet: Callable[[str], bool],
    spans: dict[str, list[tuple[int, float]]],
) -> Iterator[tuple[Operation, str, object]]:
    """(full read, wallet, balance read) of each wallet a read names, less the
    quiet spells' repeats.

    A read of wallet u that overlaps none of u's payments, while every payment
    invoked before it has ended, falls in a quiet spell: every linearization
    holds the same balance throughout it, so every read in it must show that
    one value. Of the reads in one quiet spell that show the same value, the
    first says all the others would; the rest are left out.
    """
    by_wallet = _reaches(spans)
    # account -> (its wallet, its payments' invokes, reach); None: not a wallet.
    # A read names every account: each is sorted out once, not once a read.
    wallets: dict[object, tuple[str, list[int], list[float]] | None] = {}
    seen: set[tuple[str, int, int]] = set()  # (wallet, spell, balance) already read
    for op in reads:
        done = op.completion
        assert done is not None
        began, ended = op.invoke.index, done.index
        for account, cents in _read_value(op).items():
            if account not in wallets:
                wallet = str(account)
                wallets[account] = (
                    (wallet, *by_wallet.get(wallet, ([], []))) if is_wallet(wallet) else None
                )
            found = wallets[account]
            if found is None:
                continue
            wallet, invokes, reach = found
            spell = bisect.bisect_left(invokes, began)  # payments invoked before the read
            quiet = bisect.bisect_right(invokes, ended) == spell and (
                spell == 0 or reach[spell - 1] < began
            )
            if quiet and type(cents) is int:
                if (wallet, spell, cents) in seen:
                    continue
                seen.add((wallet, spell, cents))
            yield op, wallet, cents


# --8<-- [end:wallet-projection]


def _read_rows(
    reads: list[Operation],
    is_wallet: Callable[[str], bool],
    spans: dict[str, list[tuple[int, float]]],
) -> dict[str, list[_Row]] | None:
    """`_kept_reads` as each wallet's rows (see `wallet_parts`), wallet by wallet.

    The same reads kept, but worked out one wallet at a time over the
    column of its balances, the columns taken out of the reads in C
    (`itemgetter`, `zip`): the other share's wallets and the merchants are
    never looked at, and a wallet's payments stay at hand. Wallets come in
    the order `_kept_reads` first yields them (the first read names each
    one). None when the reads do not all name the same accounts, or a
    wallet's balance is not an integer.
    """
    values = [_read_value(op) for op in reads]
    if not values:
        return {}
    named = values[0].keys()
    if any(value.keys() != named for value in values):
        return None
    accounts = [a for a in named if is_wallet(str(a))]
    names = [str(a) for a in accounts]
    if not accounts or len(set(names)) != len(names):
        return {} if not accounts else None
    pick = operator.itemgetter(*accounts)  # (of one account: its balance, not a tuple)
    one = len(accounts) == 1
    columns = [tuple(map(pick, values))] if one else zip(*map(pick, values), strict=True)
    began = [op.invoke.index for op in reads]
    ended = [-1 if op.completion is None else op.completion.index for op in reads]  # (none is)
    who = [f"{op.process}/" for op in reads]
    by_wallet = _reaches(spans)
    rows: dict[str, list[_Row]] = {}
    for wallet, balances in zip(names, columns, strict=True):
        invokes, reach = by_wallet.get(wallet, ([], []))
        last = len(invokes)
        ask = (READ, (wallet,))
        seen: set[tuple[int, int]] = set()  # (spell, balance) already read
        kept: list[_Row] = []
        for r, cents in enumerate(balances):
            if type(cents) is not int:
                return None
            b, e = began[r], ended[r]
            spell = bisect.bisect_left(invokes, b)  # payments invoked before the read
            if (spell == last or invokes[spell] > e) and (spell == 0 or reach[spell - 1] < b):
                if (spell, cents) in seen:
                    continue  # quiet, and this balance read there already
                seen.add((spell, cents))
            kept.append((b, who[r] + wallet, READ, ask, ((wallet, cents),), e))
        rows[wallet] = kept
    return rows


def _is_full_read(op: Operation) -> bool:
    """A read of every account (the kind the projection splits), that returned."""
    return op.f == "read" and op.invoke.value is None and op.type == "ok"


def _read_value(op: Operation) -> Mapping[Any, Any]:
    value = op.completion.value if op.completion is not None else None
    if not isinstance(value, Mapping):
        raise HistoryError(f"event {op.invoke.index}: a read's ok value must be a map")
    return value


_Row = tuple[int, str, str, tuple[object, ...], object, int | None]  # a call, its id aside


def wallet_parts(
    ops: Sequence[Operation], is_wallet: Callable[[str], bool], model: LedgerModel
) -> tuple[list[Part], int] | None:
    """The parts the checker would search for `project(ops, is_wallet)`, built
    in one pass, and the number of operations `project` gives.

    The same parts, calls and initial states as `split(prepare(...))` of
    the projection (tests/checks/lin/test_wallet_parts.py holds them to it),
    without the projected `Operation`s in between: a minute of chapter 4
    projects to about 330,000 of them, each then read back by the model's
    `prepare` and split by account, most of the check's time. The calls
    point at no operation (`op` None), so a report of a failure needs the
    full path: use this for a verdict of linearizable only, and judge
    anything else again through `project`. None when a value is not of the
    usual shape (the full path gives the errors).
    """
    payments = _payments(ops, is_wallet)
    reads = [op for op in ops if _is_full_read(op)]
    # wallet -> (invoke, process, f, input, output, return) of its calls, as
    # the model's `prepare` reads the projected operations
    rows = _read_rows(reads, is_wallet, _spans(payments))
    if rows is None:
        return None
    for p in payments:
        v = p.invoke.value
        wallet, cents = v["from"], v["amount"]
        if type(cents) is not int or cents < 0:
            return None
        out, ret = (UNKNOWN, None) if p.done is None else (True, p.done.index)
        inp = (TRANSFER, wallet, f"{wallet}>out", cents)
        row = (p.invoke.index, f"{v['id']}/{wallet}", TRANSFER, inp, out, ret)
        rows.setdefault(wallet, []).append(row)
    parts = []
    new = tuple.__new__
    for wallet, calls in rows.items():
        calls.sort()  # by invoke (one each), as `split` orders a part
        paid = any(f == TRANSFER for _, _, f, _, _, _ in calls)
        key = (wallet, f"{wallet}>out") if paid else (wallet,)  # the accounts its calls name
        local = [  # (`tuple.__new__`: a Call built without its class's keyword handling)
            new(Call, (k, process, f, inp, out, invoke, ret, None))
            for k, (invoke, process, f, inp, out, ret) in enumerate(calls)
        ]
        parts.append(Part(key, local, model.init_part(key)))
    parts.sort(key=lambda part: len(part.calls))  # `split`'s order: cheapest first
    return parts, sum(len(part.calls) for part in parts)
