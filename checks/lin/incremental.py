"""Linearizability judged as a history grows: each round reads only what is new.

A live view judges its history every few seconds while the run goes on.
Searching the whole history again each round (`checks.lin.check_calls`)
costs more every round, and chapter 4's wallets under a city cut defeat it
outright: a payment whose outcome stays unknown from the cut until the final
lookups keeps its wallet from ever being quiet, so the wallet's whole
history is one search, and a dozen such payments in flight beside a hundred
reads is more than Wing-Gong-Lowe gets through in minutes.

`IncrementalLin` keeps, per part (P-compositionality, as `checks.lin`
splits a history), what the search had reached at the end of the last
round, and carries it forward:

- A part whose state-changing calls all draw one amount each from one
  account into another, and nothing else changes that account (a wallet's
  payments, as chapter 4 projects them), is followed just in time (Lowe's
  JIT linearization; Knossos's `linear` checker): a set of configurations
  (state, pending calls already taken, pending reads already satisfied) is
  advanced event by event, in history order. Withdrawals commute, and a set
  of them is fundable in one order iff in every order (the balance only
  falls, so its last value is its lowest), so a call is taken no sooner
  than needed: when it returns, or when a read that returns needs it.
  Reads prune the set at once, so it stays small however long a payment
  stays in doubt, and each round costs only its new events.
- Any other part is searched whole by `checks.lin.check_calls`, and its
  verdict reused while its calls are unchanged.

Exactness. A part whose events before the horizon differ from those
consumed last round (a read that was in flight, left out until it returned;
a payment retried after its first attempt failed; a lookup that found one
absent) is followed again from its start. The horizon (`safe_horizon`: the
first event of a read still in flight) keeps that rare, and a read is never
consumed half: it is judged whole, in the round its return is before the
horizon. A call whose outcome is
unknown may take effect (with the output an acknowledgement would have
given) or never: for a withdrawal that is exactly what the model's UNKNOWN
means. `tests/checks/test_lin_incremental.py` holds it against the whole
search, on generated histories and on chapter 4's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from checks.history import Event
from checks.lin.checker import check_calls, split
from checks.lin.model import UNKNOWN, Call, Model

__all__ = ["IncrementalLin", "Round", "safe_horizon"]

Validity = bool | Literal["unknown"]

# A followed part's state is the accounts model's: its (account, cents) pairs.
Balances = tuple[tuple[Hashable, int], ...]
# A configuration: a state, the pending withdrawals taken in it, the pending
# reads it satisfied.
_Config = tuple[Balances, frozenset[int], frozenset[int]]
# A consumed event, as compared with the same event next round (outputs may be dicts).
_EventKey = tuple[object, ...]
# withdrawal(input) -> (from, to, amount) when a call only moves an amount, else None.
Withdrawal = Callable[[Any], "tuple[str, str, int] | None"]

CONFIGS_MAX = 200_000  # configurations one part may hold before it says "unknown"


def safe_horizon(events: Sequence[Event], holds: Callable[[Event], bool] | None = None) -> int:
    """The index of the first event of an operation still open (or past the end).

    `holds(invoke)`: whether an open operation of this kind holds the horizon
    back (default: every kind). Only an operation left out while it is open
    (a read) needs to: one that counts while in flight (a payment of unknown
    outcome) is consumed as pending. Either way the verdict is exact (a
    changed past is followed again); the horizon only saves that work.
    """
    open_at: dict[int | str, int] = {}
    for ev in events:
        if ev.process == "nemesis":
            continue
        if ev.type == "invoke" and holds is not None and not holds(ev):
            open_at.pop(ev.process, None)
        elif ev.type == "invoke":
            open_at[ev.process] = ev.index
        else:
            open_at.pop(ev.process, None)
    end = events[-1].index + 1 if events else 0
    return min(open_at.values(), default=end)


@dataclass(slots=True)
class Round:
    """One round's verdict on the history up to `horizon` (exclusive)."""

    valid: Validity
    horizon: int
    parts: int
    failing: Hashable | None = None  # the key of the part found not linearizable
    reason: str = ""  # why unknown
    followed: int = 0  # parts followed just in time
    searched: int = 0  # parts searched whole this round (not reused)
    events_new: int = 0  # part events consumed this round
    restarted: int = 0  # followed parts whose past changed: followed again from the start
    elapsed_s: float = 0.0


@dataclass(slots=True)
class _Op:
    pure: bool
    call: Call
    want: int | None  # a read: the source's balance it saw (None: it did not see it)
    amount: int  # a withdrawal: how much it moves


@dataclass(slots=True)
class _Follow:
    """A part followed just in time: what it has consumed, and its configurations."""

    consumed: list[_EventKey] = field(default_factory=list)  # event keys, in order
    configs: set[_Config] = field(default_factory=set)
    pending: dict[int, _Op] = field(default_factory=dict)  # op id -> op, invoked, not returned
    valid: Validity = True
    source: Hashable = None  # the account every state-changing call draws from


def _events(calls: Sequence[Call]) -> list[tuple[int, int, str, Call]]:
    """(index, order, kind, call) of every invoke and return, in history order."""
    out = [(c.call, 1, "invoke", c) for c in calls]
    out += [(c.ret, 0, "return", c) for c in calls if c.ret is not None]
    out.sort(key=lambda e: (e[0], e[1]))
    return out


def _key(kind: str, c: Call, pure: bool = False) -> _EventKey:
    # What a consumed event was: an invoke by its input (a read's with what it
    # saw: it is consumed whole), a return with its output.
    if kind == "invoke":
        return ("invoke", c.call, c.process, c.input, c.output if pure else None)
    return ("return", c.ret, c.process, c.input, c.output)


class IncrementalLin:
    """Linearizability of a growing history, round by round (see the module docstring).

    `model` is the checker's model (its `partition`, `init_part`, `step`,
    `read_only`); `withdrawal(input)` -> (from, to, amount) when a call only
    moves an amount between two accounts, else None: it picks the parts
    followed just in time. `effective_output` is the output a call of unknown
    outcome has if it took effect.
    """

    def __init__(
        self,
        model: Model,
        withdrawal: Withdrawal,
        effective_output: Any = True,
        configs_max: int = CONFIGS_MAX,
    ) -> None:
        self.model = model
        self.withdrawal = withdrawal
        self.effective_output = effective_output
        self.configs_max = configs_max
        self._follow: dict[Hashable, _Follow] = {}
        # key -> (its calls, as compared next round; verdict)
        self._searched: dict[Hashable, tuple[list[_EventKey], Validity]] = {}

    def check(self, calls: Sequence[Call], horizon: int, timeout_s: float | None = None) -> Round:
        """Judge `calls` (prepared, from the whole history so far) up to `horizon`."""
        t0 = time.monotonic()
        deadline = None if timeout_s is None else t0 + timeout_s
        horizon = self._settled(calls, horizon)
        parts = split([c for c in calls if c.call < horizon], self.model)
        result = Round(True, horizon, len(parts))
        for part in sorted(parts, key=lambda p: len(p.calls)):
            if result.valid is False:
                break
            if deadline is not None and time.monotonic() > deadline:
                result.valid, result.reason = "unknown", f"time budget of {timeout_s} s ran out"
                break
            trimmed = [c if c.ret is None or c.ret < horizon else _pending(c) for c in part.calls]
            pair = self._withdrawals_only(trimmed)
            if pair is not None:
                result.followed += 1
                verdict = self._follow_part(part.key, trimmed, part.init, pair[0], result)
            else:
                verdict = self._search_part(part.key, trimmed, part.init, result, deadline)
            if verdict is False:
                result.valid, result.failing = False, part.key
            elif verdict == "unknown" and result.valid is True:
                result.valid = "unknown"
                result.reason = result.reason or f"part {part.key!r} undecided"
        # Parts gone from the history (a lookup found their only payment absent).
        keys = {p.key for p in parts}
        for gone in [k for k in self._follow if k not in keys]:
            del self._follow[gone]
        result.elapsed_s = time.monotonic() - t0
        return result

    def _settled(self, calls: Sequence[Call], horizon: int) -> int:
        """`horizon`, moved back before any read that returns at or after it.

        A read is consumed whole (invoke and return in one round): the states
        a configuration passes through while it is in flight are not kept.
        """
        model = self.model
        reads = sorted(
            (
                (c.call, c.ret)
                for c in calls
                if c.ret is not None and model.read_only(c.input, c.output)
            ),
            reverse=True,
        )
        for call, ret in reads:  # latest invoke first
            if call < horizon <= ret:
                horizon = call
        return horizon

    # -- parts searched whole -------------------------------------------------------
    def _search_part(
        self,
        key: Hashable,
        calls: list[Call],
        init: Hashable,
        result: Round,
        deadline: float | None,
    ) -> Validity:
        fingerprint = [(*_key("return", c), c.call) for c in calls]  # (outputs may be dicts)
        known = self._searched.get(key)
        if known is not None and known[0] == fingerprint and known[1] != "unknown":
            return known[1]
        result.searched += 1
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        local = [
            Call(i, c.process, c.f, c.input, c.output, c.call, c.ret, c.op)
            for i, c in enumerate(calls)
        ]
        verdict = _one_part(local, self.model, init, left)
        self._searched[key] = (fingerprint, verdict)
        return verdict

    # -- parts followed just in time ----------------------------------------------
    def _withdrawals_only(self, calls: list[Call]) -> tuple[str, str] | None:
        """The (source, sink) every state-changing call moves an amount between, or None."""
        pair = None
        for c in calls:
            if self.model.read_only(c.input, c.output):
                continue
            moved = self.withdrawal(c.input)
            if moved is None or moved[2] < 0 or moved[0] == moved[1]:
                return None
            if pair is None:
                pair = (moved[0], moved[1])
            elif pair != (moved[0], moved[1]):
                return None
        return pair or ("", "")

    def _follow_part(
        self, key: Hashable, calls: list[Call], init: Balances, source: Hashable, result: Round
    ) -> Validity:
        pure = self.model.read_only
        keys = [_key(kind, c, pure(c.input, c.output)) for _, _, kind, c in _events(calls)]
        events = _events(calls)
        state = self._follow.get(key)
        if state is not None and (
            state.source != source or keys[: len(state.consumed)] != state.consumed
        ):
            state = None  # the past changed: follow the part again from its start
            result.restarted += 1
        if state is None:
            state = _Follow(configs={(init, frozenset(), frozenset())}, source=source)
            self._follow[key] = state
        for k, (_, _, kind, c) in zip(
            keys[len(state.consumed) :], events[len(state.consumed) :], strict=True
        ):
            state.consumed.append(k)
            result.events_new += 1
            if state.valid is not True:
                continue  # settled: no later event saves it
            state.valid = self._advance(state, kind, c)
        return state.valid

    def _advance(self, s: _Follow, kind: str, c: Call) -> Validity:
        model = self.model
        op_id = c.call  # one process invokes once at an index: an id
        if kind == "invoke":
            pure = model.read_only(c.input, c.output)
            want = _seen(c, s.source) if pure else None
            moved = None if pure else self.withdrawal(c.input)
            s.pending[op_id] = _Op(pure, c, want, moved[2] if moved else 0)
            if pure:
                s.configs = {
                    (st, taken, sat | {op_id})
                    if model.step(st, c.input, c.output)[0]
                    else (st, taken, sat)
                    for st, taken, sat in s.configs
                }
            return True
        nxt: set[_Config] = set()
        for st, taken, sat in s.configs:
            self._returns(s, op_id, c, st, taken, sat, nxt)
            if len(nxt) > self.configs_max:
                return "unknown"
        del s.pending[op_id]
        s.configs = nxt
        if _OVERFLOW in nxt:
            return "unknown"
        return bool(nxt)

    def _satisfy(self, s: _Follow, st: Balances, sat: frozenset[int]) -> frozenset[int]:
        """`sat` and every pending read that `st` fits (a read is taken greedily)."""
        add = [
            i
            for i, op in s.pending.items()
            if op.pure and i not in sat and self.model.step(st, op.call.input, op.call.output)[0]
        ]
        return sat | frozenset(add) if add else sat

    def _returns(
        self,
        s: _Follow,
        target: int,
        ret: Call,
        st: Balances,
        taken: frozenset[int],
        sat: frozenset[int],
        out: set[_Config],
    ) -> None:
        """The configurations of one configuration once call `target` has returned.

        Calls in flight may be taken before it, to let a pending read see the
        balance it saw: from each configuration on the way, every set of
        untaken withdrawals whose amounts add up to exactly what a pending
        read needs (no more, a withdrawal never gives money back) is taken,
        and every read that fits the state it leads to is satisfied there. A
        configuration is kept at the start and after each such set; the
        returning call is then taken (unless it was), or, a read, must have
        been satisfied. Taking a call at any other point changes nothing that
        taking it later, when needed, would not: withdrawals commute and a
        set of them is fundable in any order or none. Among withdrawals of
        one amount, the one that returns first is taken first (taking it
        leaves the others freer: a symmetry, not a guess).
        """
        model = self.model
        op = s.pending[target]

        def keep(cur: Balances, tk: frozenset[int], st_sat: frozenset[int]) -> None:
            if op.pure:
                if target in st_sat:
                    out.add((cur, tk, st_sat - {target}))
            elif target in tk:
                out.add((cur, tk - {target}, st_sat))
            else:
                ok, after = model.step(cur, ret.input, ret.output)
                if ok:
                    out.add((after, tk, self._satisfy(s, after, st_sat)))

        keep(st, taken, sat)
        if op.pure and target in sat:
            return
        seen: set[tuple[frozenset[int], frozenset[int]]] = set()
        stack = [(st, taken, sat)]
        while stack:
            cur, tk, st_sat = stack.pop()
            for chosen in self._withdrawal_sets(s, target, cur, tk, st_sat):
                ok, after = self._take(s, cur, chosen)
                tk2 = tk | frozenset(chosen)
                sat2 = self._satisfy(s, after, st_sat) if ok else st_sat
                if not ok or (tk2, sat2) in seen:
                    continue
                seen.add((tk2, sat2))
                keep(after, tk2, sat2)
                stack.append((after, tk2, sat2))
                if len(seen) > self.configs_max:
                    out.add(_OVERFLOW)
                    return

    def _withdrawal_sets(
        self, s: _Follow, target: int, cur: Balances, tk: frozenset[int], st_sat: frozenset[int]
    ) -> list[list[int]]:
        """The sets of untaken withdrawals worth taking from configuration
        (cur, tk, st_sat) while call `target` returns, in the order tried."""
        op = s.pending[target]
        balance = dict(cur).get(s.source, 0)
        if op.pure and (target in st_sat or (op.want is not None and balance < op.want)):
            return []
        unsatisfied = [o for i, o in s.pending.items() if o.pure and i not in st_sat]
        wanted = {o.want for o in unsatisfied if o.want is not None and o.want < balance}
        # Any other read-only call (a transfer refused for want of funds
        # fits once enough is taken): one withdrawal at a time instead.
        one_by_one = any(o.want is None for o in unsatisfied)
        if not wanted and not one_by_one:
            return []
        groups = _withdrawals_by_amount(s, target, tk)
        choices: list[list[int]] = [ids[:1] for _, ids in groups] if one_by_one else []
        for want in sorted(wanted):
            choices.extend(_exact_sums(groups, balance - want))
        return [chosen for chosen in choices if chosen]

    def _take(self, s: _Follow, cur: Balances, chosen: list[int]) -> tuple[bool, Balances]:
        """Take the withdrawals `chosen` from state `cur`, in order: (all fundable, the state)."""
        after, ok = cur, True
        for i in chosen:
            ok, after = self.model.step(after, s.pending[i].call.input, self.effective_output)
            if not ok:
                break
        return ok, after


def _withdrawals_by_amount(
    s: _Follow, target: int, tk: frozenset[int]
) -> list[tuple[int, list[int]]]:
    """The untaken withdrawals but `target`, grouped: (amount, ids in the order they return).

    Withdrawals of one amount whose futures are known are interchangeable but
    for when they return; one still in flight at the horizon has no known
    future yet, and is a group of its own.
    """
    by_amount: dict[tuple[int, int], list[tuple[float, int]]] = {}
    for i, o in s.pending.items():
        if not o.pure and i != target and i not in tk:
            known = o.call.ret is not None or o.call.op is not None
            rank = math.inf if o.call.ret is None else o.call.ret
            by_amount.setdefault((o.amount, -1 if known else i), []).append((rank, i))
    return sorted((a, [i for _, i in sorted(ids)]) for (a, _), ids in by_amount.items())


def _exact_sums(groups: list[tuple[int, list[int]]], total: int) -> Iterator[list[int]]:
    """Every choice of ids adding up to `total`: from each (amount, ids) group, a prefix."""
    if total == 0:
        yield []
        return
    if not groups or total < 0:
        return
    amount, ids = groups[-1]  # the largest amount first: it prunes most
    rest = groups[:-1]
    for count in range(min(len(ids), total // amount if amount else 0), -1, -1):
        for tail in _exact_sums(rest, total - count * amount):
            yield ids[:count] + tail


# Makes the round say "unknown"; no real configuration takes call -1 (ids are event indexes).
_OVERFLOW: _Config = ((), frozenset({-1}), frozenset())


def _seen(read: Call, source: Hashable) -> int | None:
    """The balance of `source` a read saw (its output lists (account, cents) pairs)."""
    out = read.output
    if not isinstance(out, tuple) or not all(isinstance(x, tuple) and len(x) == 2 for x in out):
        return None
    want = dict(out).get(source)
    return want if type(want) is int else None


def _pending(c: Call) -> Call:
    """`c` as it stood at the horizon: invoked, its outcome not seen yet (no `op`:
    whether it ever returns is not known, unlike an operation that ended in doubt)."""
    return Call(c.id, c.process, c.f, c.input, UNKNOWN, c.call, None, None)


def _one_part(calls: list[Call], model: Model, init: Hashable, timeout_s: float | None) -> Validity:
    """One part searched whole, from `init`."""
    result = check_calls(calls, _OnePart(model, init), timeout_s)
    return result.valid


class _OnePart(Model):
    """`model` with one part, starting from `init` (for `check_calls`)."""

    def __init__(self, model: Model, init: Hashable) -> None:
        self.inner = model
        self.start = init
        self.name = model.name

    def init(self) -> Hashable:
        return self.start

    def init_part(self, key: Hashable) -> Hashable:
        return self.start

    def partition(self, calls: Sequence[Call]) -> list[tuple[Hashable, list[Call]]]:
        return [("all", list(calls))]

    def step(self, state: Any, inp: Any, out: Any) -> tuple[bool, Any]:
        return self.inner.step(state, inp, out)

    def read_only(self, inp: Any, out: Any) -> bool:
        return self.inner.read_only(inp, out)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
