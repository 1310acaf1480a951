"""A ledger of accounts: deposits, transfers that fail on insufficient funds, reads.

The vocabulary is the bank workload's (`checks.bank`), with money in
integer cents:

    f="deposit"   value {"account": a, "amount": cents}
    f="transfer"  value {"from": a, "to": b, "amount": cents} ("amount_cents"
                  is accepted too). `ok`: it moved the money. `fail` with
                  error "insufficient-funds" (the event's `error` field, or
                  {"error": ...} as the completion's value): an observation
                  that `from` held less than the amount at that instant.
                  Any other `fail`: it did not happen.
    f="read"      invoke value None (all accounts) or [a, ...]; ok value
                  {a: cents, ...}: each listed balance, at one instant.

Accounts are compared as strings; an account never touched holds 0 (or its
`initial_cents`). Operations on disjoint sets of accounts commute, so the
history is split into groups of accounts that operations connect
(P-compositionality).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from checks.history import HistoryError, Operation
from checks.lin.model import UNKNOWN, Call, Model, outcome

DEPOSIT, TRANSFER, READ = "deposit", "transfer", "read"
INSUFFICIENT = frozenset({"insufficient-funds", "insufficient_funds"})

Balances = tuple[tuple[str, int], ...]  # sorted (account, cents), zero balances left out


# --8<-- [start:model-ledger]
class LedgerModel(Model):
    """Balances in integer cents; a transfer never overdraws unless allowed."""

    name = "ledger"
    doc = "accounts: deposit, transfer (fails on insufficient funds), read balances"

    def __init__(self, initial_cents: Mapping[str, int] | None = None, overdraft: bool = False):
        self.initial = _canon({str(a): c for a, c in (initial_cents or {}).items()})
        self._initial_of = dict(self.initial)  # account -> cents, for init_part
        self.overdraft = overdraft

    def init(self) -> Balances:
        return self.initial

    def init_part(self, key: Hashable) -> Balances:
        accounts = sorted(set(key)) if isinstance(key, tuple) else []
        initial = self._initial_of  # (a dict: one part of thousands need not scan them all)
        return tuple((a, initial[a]) for a in accounts if a in initial)

    def step(self, state: Balances, inp: tuple[Any, ...], out: Any) -> tuple[bool, Balances]:
        f = inp[0]
        if f == READ:
            if out is UNKNOWN:
                return True, state
            bal = dict(state)
            return all(bal.get(a, 0) == c for a, c in out), state
        bal = dict(state)
        if f == DEPOSIT:
            _, account, cents = inp
            bal[account] = bal.get(account, 0) + cents
            return True, _canon(bal)
        _, src, dst, cents = inp  # a transfer
        funded = self.overdraft or bal.get(src, 0) >= cents
        if out is False:  # observed: rejected for insufficient funds
            return not funded, state
        if not funded:  # an ok transfer must have been funded; an unknown one did nothing
            return out is UNKNOWN, state
        bal[src] = bal.get(src, 0) - cents
        bal[dst] = bal.get(dst, 0) + cents
        return True, _canon(bal)

    # --8<-- [end:model-ledger]

    def prepare(self, op: Operation) -> tuple[Any, Any] | None:
        v, where = op.invoke.value, op.invoke.index  # (named in an error only)
        if op.f == DEPOSIT:
            if op.type == "fail":
                return None
            _need(isinstance(v, dict), where, "a deposit's value is {account, amount}")
            return (DEPOSIT, _account(v.get("account"), where), _cents(v, where)), outcome(op)
        if op.f == TRANSFER:
            _need(isinstance(v, dict), where, "a transfer's value is {from, to, amount}")
            inp = (
                TRANSFER,
                _account(v.get("from"), where),
                _account(v.get("to"), where),
                _cents(v, where),
            )
            if op.type == "fail":
                return (inp, False) if _error(op) in INSUFFICIENT else None
            return inp, (UNKNOWN if op.type == "info" else True)
        if op.f == READ:
            if op.type == "fail":
                return None
            _need(v is None or isinstance(v, (list, tuple)), where, "a read asks for [account ...]")
            asked = None if v is None else _sorted_accounts(v, where)
            out = outcome(op)
            if out is not UNKNOWN:
                _need(isinstance(out, dict), where, "a read returns {account: cents}")
                out = _balances(out, where)
            return (READ, asked), out
        raise self.unknown_op(op)

    def partition(self, calls: Sequence[Call]) -> list[tuple[Hashable, list[Call]]]:
        # Union-find over accounts; an account no operation ties to another
        # stays out of `parent` (its own root), so a history of single-account
        # operations (chapter 4's wallets: 350,000 of them) costs one lookup each.
        parent: dict[str, str] = {}

        def find(a: str) -> str:
            while (up := parent.get(a, a)) != a:
                parent[a] = parent.get(up, up)  # path halving
                a = up
            return a

        touched = [self._accounts(c) for c in calls]
        for accounts in touched:
            if len(accounts) > 1:
                first = find(accounts[0])
                for a in accounts[1:]:
                    root = find(a)
                    if root != first:
                        parent[root] = first
        groups: dict[str, list[Call]] = {}
        members: dict[str, set[str]] = {}
        for c, accounts in zip(calls, touched, strict=True):
            if not accounts:
                continue  # a read of nothing known: it constrains nothing
            root = find(accounts[0])
            groups.setdefault(root, []).append(c)
            members.setdefault(root, set()).update(accounts)
        return [(tuple(sorted(members[r])), cs) for r, cs in groups.items()]

    @staticmethod
    def _accounts(c: Call) -> list[str]:
        f = c.input[0]
        if f == DEPOSIT:
            return [c.input[1]]
        if f == TRANSFER:
            return [c.input[1], c.input[2]]
        if c.output is not UNKNOWN:
            return [a for a, _ in c.output]
        return list(c.input[1] or ())

    def read_only(self, inp: tuple[Any, ...], out: Any) -> bool:
        return inp[0] == READ or (inp[0] == TRANSFER and out is False)

    def describe_state(self, state: Balances) -> str:
        return ", ".join(f"{a}={c}" for a, c in state) or "(all zero)"

    def describe_call(self, call: Call) -> str:
        f = call.input[0]
        if f == READ:
            got = "?" if call.output is UNKNOWN else self.describe_state(call.output)
            return f"read -> {got}"
        if f == DEPOSIT:
            return f"deposit {call.input[2]} to {call.input[1]}"
        res = {True: "", False: " rejected: insufficient funds"}.get(call.output, " ?")
        return f"transfer {call.input[3]} {call.input[1]}->{call.input[2]}{res}"


def _canon(bal: Mapping[str, int]) -> Balances:
    return tuple(sorted((a, c) for a, c in bal.items() if c != 0))


def _need(cond: bool, where: int, msg: str) -> None:
    """Refuse the history at event `where` unless `cond`."""
    if not cond:
        raise HistoryError(f"event {where}: {msg}")


def _account(a: Any, where: int) -> str:
    if type(a) is str:  # the usual case first: a read of a minute of ch4 names 700,000
        return a
    _need(isinstance(a, (str, int)) and not isinstance(a, bool), where, f"bad account {a!r}")
    return str(a)


def _sorted_accounts(accounts: Sequence[object], where: int) -> tuple[str, ...]:
    if len(accounts) == 1:  # a read of one wallet (chapter 4 projects 350,000 of them)
        return (_account(accounts[0], where),)
    return tuple(sorted(_account(a, where) for a in accounts))


def _balances(read: Mapping[object, object], where: int) -> Balances:
    """What a read returned, as a state: sorted (account, cents)."""
    if len(read) == 1:
        ((a, c),) = read.items()
        return ((_account(a, where), _int(c, where)),)
    return tuple(sorted((_account(a, where), _int(c, where)) for a, c in read.items()))


def _int(c: Any, where: int) -> int:
    if type(c) is int:
        return c
    _need(isinstance(c, int) and not isinstance(c, bool), where, f"cents must be an integer: {c!r}")
    return c


def _cents(v: dict[str, Any], where: int) -> int:
    cents = _int(v.get("amount_cents", v.get("amount")), where)
    _need(cents >= 0, where, f"a negative amount {cents}")
    return cents


def _error(op: Operation) -> Any:
    c = op.completion
    if c is None:
        return None
    error = c.extra.get("error")
    if error is None and isinstance(c.value, dict):
        error = c.value.get("error")
    return error if isinstance(error, str) else None  # (a list or a map names no error)
