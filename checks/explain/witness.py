"""Why a part of a history cannot be linearized, shrunk to what matters.

Detection stops at the first part that fails; explaining it may cost more,
so it runs on its own budget, and whatever it has when the budget runs out
is still correct (only less small). Three steps, each sound:

1. The shortest failing prefix. Linearizability is prefix-closed: if the
   history up to time t (operations still pending at t have unknown
   outcomes) cannot be linearized, neither can anything longer. A binary
   search over return points finds the earliest t at which it fails.
2. A smaller witness. Forgetting what an operation returned (making its
   outcome unknown: it may have happened at any time after its call, or not
   at all) only adds linearizations; so if the history still fails, that
   outcome was not needed to show the failure. A read-only operation with an
   unknown outcome constrains nothing and is dropped. What is left with a
   known outcome is the witness.
3. The longest linearization of the prefix, the model state after each of
   its operations, and the operation that could not follow it (the pending
   one that returned first), with, for each operation that could have gone
   next, why it does not help. (Computed before step 2, so a tight budget
   never starves it.)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from checks.lin.checker import Part
from checks.lin.model import UNKNOWN, Call, Model
from checks.lin.search import SearchResult, wgl

EXPLAIN_CACHE_MAX = 200_000  # per trial search: small histories, bounded memory
WITNESS_LINES_MAX = 20  # witness operations listed in words


@dataclass(slots=True)
class Explanation:
    """The evidence for "not linearizable", small enough to read."""

    part_key: Any
    part_calls: int  # operations in the failing part
    calls: list[Call]  # the shortest failing prefix (local ids 0..n-1)
    witness: list[int]  # ids of calls whose known outcomes already fail together
    weakened: list[int]  # ids whose outcome was forgotten (still needed as possible effects)
    order: list[int]  # the longest linearization of the prefix found
    states: list[Any]  # model state after each call of `order`
    stuck: int | None  # the call that cannot follow `order`
    next_steps: list[tuple[int, str]]  # (call id, why it cannot go next)
    complete: bool  # False: the budget ran out before shrinking was done
    elapsed_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    def lines(self, model: Model, at: Callable[[int], str] | None = None) -> list[str]:
        """The explanation in words, one line each.

        `at` names a history position for people (default "event N"; the CLI
        gives file lines).
        """
        at = at or (lambda i: f"event {i}")

        def span(c: Call) -> str:
            return f"{at(c.call)} to {at(c.ret)}" if c.ret is not None else f"from {at(c.call)}"

        out = [
            f"{_part_name(self.part_key)}: {self.part_calls} operations; the failure already "
            f"shows in its first {len(self.calls)} (shortest failing prefix)",
        ]
        if self.stuck is not None:
            c = self.calls[self.stuck]
            state = self.states[-1] if self.states else None
            shown = model.describe_state(state) if self.states else "(initial)"
            out.append(
                f"longest linearization: {len(self.order)} operations, ending in state {shown}"
            )
            out.append(
                f"cannot linearize: process {c.process} {model.describe_call(c)} "
                f"({span(c)}); it must take effect before it returns, "
                "and nothing that could go first makes that possible:"
            )
            out.extend(f"  - {why}" for _, why in self.next_steps)
        out.append(
            f"witness: these {len(self.witness)} operations cannot be linearized together"
            + (
                f", given {len(self.weakened)} more that may or may not have taken effect:"
                if self.weakened
                else ":"
            )
        )
        shown = sorted(set(self.witness) | set(self.weakened), key=lambda i: self.calls[i].call)
        for i in shown[:WITNESS_LINES_MAX]:
            c = self.calls[i]
            maybe = "" if i in self.witness else "(maybe) "
            out.append(f"  {maybe}process {c.process}: {model.describe_call(c)} [{span(c)}]")
        if len(shown) > WITNESS_LINES_MAX:
            out.append(f"  ... and {len(shown) - WITNESS_LINES_MAX} more (see the timeline)")
        if not self.complete:
            out.append("(the explain budget ran out: the witness may not be the smallest)")
        return out


def _part_name(key: Any) -> str:
    return "the history" if key is None else f"part {key!r}"


def explain(
    part: Part, model: Model, budget_s: float = 10.0, steps_max: int = 2_000_000
) -> Explanation:
    """Explain why `part` (found not linearizable) fails, within `budget_s`."""
    assert part.result is not None and not part.result.linearizable
    t0 = time.monotonic()
    deadline = t0 + budget_s
    calls = part.calls
    complete = True

    # 1. The shortest failing prefix, by binary search over return points.
    rets = sorted(c.ret for c in calls if c.ret is not None)
    lo, hi = 0, len(rets) - 1  # invariant: the prefix up to rets[hi] fails
    while lo < hi:
        if time.monotonic() > deadline:
            complete = False
            break
        mid = (lo + hi) // 2
        if _fails(prefix(calls, rets[mid]), model, part.init, steps_max, deadline):
            hi = mid
        else:
            lo = mid + 1
    cut = prefix(calls, rets[hi])

    # 3 (before 2, so it is never starved). The longest linearization.
    result = _search(cut, model, part.init, steps_max, deadline)
    order, stuck = (result.order, result.stuck) if result is not None else ([], None)
    if result is None:
        complete = False
    states = replay(cut, model, part.init, order)
    next_steps = _why_not(cut, model, order, states[-1] if states else part.init, stuck)

    # 2. Forget outcomes that are not needed, earliest first. A trial that
    # does not fail within its step budget keeps the outcome (sound, if not
    # minimal): forgetting outcomes can make the search much harder.
    trial_steps = max(20_000, 4 * (result.stats.steps if result is not None else 0))
    current = list(cut)
    weakened: list[int] = []
    for c in sorted(cut, key=lambda c: c.call):
        if c.ret is None:
            continue
        if time.monotonic() > deadline:
            complete = False
            break
        trial = [x for x in current if x.id != c.id]
        if not model.read_only(c.input, c.output):
            trial.append(_unknown(c))
        if _fails(trial, model, part.init, trial_steps, deadline):
            current = sorted(trial, key=lambda x: x.id)
            if not model.read_only(c.input, c.output):
                weakened.append(c.id)
    witness = [x.id for x in current if x.ret is not None]
    return Explanation(
        part_key=part.key,
        part_calls=len(calls),
        calls=list(cut),
        witness=witness,
        weakened=weakened,
        order=order,
        states=states,
        stuck=stuck,
        next_steps=next_steps,
        complete=complete,
        elapsed_s=time.monotonic() - t0,
    )


def prefix(calls: Sequence[Call], t: int) -> list[Call]:
    """The history up to position t: later calls dropped, pending ones made unknown."""
    out: list[Call] = []
    for c in calls:
        if c.call > t:
            continue
        if c.ret is not None and c.ret > t:
            c = _unknown(c)
        out.append(Call(len(out), c.process, c.f, c.input, c.output, c.call, c.ret, c.op))
    return out


def replay(calls: Sequence[Call], model: Model, init: Any, order: Sequence[int]) -> list[Any]:
    """The model state after each call of `order`."""
    states, state = [], init
    for i in order:
        ok, state = model.step(state, calls[i].input, calls[i].output)
        assert ok, "a linearization the search found replays"
        states.append(state)
    return states


def _unknown(c: Call) -> Call:
    return Call(c.id, c.process, c.f, c.input, UNKNOWN, c.call, None, c.op)


def _search(
    calls: Sequence[Call], model: Model, init: Any, steps_max: int, deadline: float
) -> SearchResult | None:
    """Search with a step and time budget; None when it ran out.

    The search knows calls by their position in `calls`, as its result does.
    """
    search = wgl(calls, model, init, EXPLAIN_CACHE_MAX, slice_steps=1024)
    steps = 0
    while True:
        try:
            next(search)
        except StopIteration as done:
            return done.value
        steps += 1024
        if steps > steps_max or time.monotonic() > deadline:
            search.close()
            return None


def _fails(calls: Sequence[Call], model: Model, init: Any, steps_max: int, deadline: float) -> bool:
    """True only if the search proves `calls` not linearizable within budget."""
    result = _search(sorted(calls, key=lambda c: c.call), model, init, steps_max, deadline)
    return result is not None and not result.linearizable


def _why_not(
    calls: Sequence[Call], model: Model, order: Sequence[int], state: Any, stuck: int | None
) -> list[tuple[int, str]]:
    """For each call that could go next after `order`, why it does not help."""
    if stuck is None:
        return []
    done = set(order)
    deadline_pos = calls[stuck].ret
    assert deadline_pos is not None
    out: list[tuple[int, str]] = []
    for c in calls:
        if c.id in done or c.call > deadline_pos:
            continue
        ok, after = model.step(state, c.input, c.output)
        who = f"process {c.process} {model.describe_call(c)}"
        if not ok:
            why = f"{who}: impossible in state {model.describe_state(state)}"
        elif after == state:
            why = f"{who}: possible, but it changes nothing"
        else:
            why = (
                f"{who}: possible (state becomes {model.describe_state(after)}), "
                "but no linearization continues from there"
            )
        out.append((c.id, why))
    return out
