"""The Wing–Gong–Lowe search for one part of a history, with Porcupine's cache.

The history is a doubly linked list of call and return entries in history
order. From the front, any call before the first return may be linearized
next (its operation was pending when the earliest pending operation
returned); the search tries them, applies the model, and on success lifts
the operation's entries out of the list and starts again from the front.
Reaching a return entry means the operation it ends was not linearized in
time: backtrack. Configurations found to be dead ends, the pair (set of
linearized operations, model state), are cached: reaching one again, by
another order, cannot succeed, so the search skips it. That cache is what
makes WGL practical.

Reductions cut the search further, each sound (the oracle tests check them
against brute force):

1. An operation that never changes the state (a read, a failed compare),
   when it can go next, is taken greedily, never undone by trying its
   siblings: if any linearization exists from here, one starts with it
   (move it to the front: it changes no state, and it was already allowed).
   Not so for a write of the current value: later it would change the state.
2. Identical operations (same input and output) whose intervals are ordered
   are linearized in that order: swapping two of them changes nothing.
3. Operations whose outcome is unknown have no return entry (it is at
   +infinity): they may be linearized any time after their call, and the
   search succeeds once every operation with a known outcome is linearized;
   the rest are left out (or, equally, take effect at the end). They are
   tried after the known ones, and never when they would change nothing.
4. Since those may be left out, a configuration is dominated by a dead end
   with the same state, the same known-outcome calls linearized, and a
   subset of its unknown-outcome ones: it is a dead end too.
5. A pending read (a read-only call with a known outcome) must be
   linearized before every call invoked after it returned, so only calls
   invoked before its return can change the state first. If every one of
   them that may set the state anew is already linearized (those left only
   extend it, as kv appends do) and the model says no extension of the
   state makes the read fit, the configuration is a dead end
   (`Model.reachable`; kv: the state must be a prefix of the value read).
   On Porcupine's kv histories this cuts the configurations visited by
   three quarters.

The search is a generator that yields every `slice_steps` steps, so a
scheduler can interleave many parts and stop them on a deadline. Memory is
bounded: past `cache_max` entries the cache stops growing (the search stays
correct, only slower), and the stack never exceeds the number of operations.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from checks.lin.model import Call, Model

SLICE_STEPS = 2048  # steps between yields: about a millisecond

# The dead ends: (known-outcome calls linearized, model state) -> the set,
# or sets, of unknown-outcome calls linearized with them (see `dominated`).
DeadEnds = dict[tuple[int, Hashable], "int | list[int]"]


@dataclass(slots=True)
class SearchStats:
    """What one search did, for reports and benchmarks."""

    steps: int = 0
    cache_entries: int = 0
    cache_full: bool = False


@dataclass(slots=True)
class SearchResult:
    """The outcome of searching one part.

    `order` is a full linearization (local call indexes, in order) when
    `linearizable`, else the longest one found; `stuck` is then the call that
    could not be linearized after it (the pending call that returned first).
    """

    linearizable: bool
    order: list[int]
    stuck: int | None
    stats: SearchStats = field(default_factory=SearchStats)


def symmetry_predecessors(calls: Sequence[Call]) -> list[int]:
    """For each call, an identical call that may be required to go first (-1: none).

    Two calls with equal input and output whose intervals are ordered (the
    first is called no later and returns no later; an unknown return is
    +infinity) can always swap places in a linearization without changing
    any state. So requiring the earlier one first loses no linearization
    (and an unknown one left out can trade places with an earlier one left
    in), and the search need not try both orders.
    """
    inf = float("inf")
    pred = [-1] * len(calls)
    groups: dict[Hashable, list[int]] = {}
    invoked = [c.call for c in calls]
    for i in sorted(range(len(calls)), key=invoked.__getitem__):
        c = calls[i]
        try:
            group = groups.setdefault((c.input, c.output, c.ret is None), [])
        except TypeError:
            continue  # unhashable values: no symmetry reduction for them
        ret_i = inf if c.ret is None else c.ret
        for j in reversed(group):
            ret_j = inf if calls[j].ret is None else calls[j].ret
            if ret_j <= ret_i:
                pred[i] = j
                break
        group.append(i)
    return pred


@dataclass(slots=True)
class EntryList:
    """The history as a doubly linked list the search lifts entries out of.

    Entries 1..E are the calls' call and return entries in history order; 0
    is the head and E+1 the tail. `nxt`/`prv` link them, `is_call` and
    `op_of` say what each is, `call_e`/`ret_e` find a call's two entries (-1:
    no return, an unknown outcome).
    """

    order: list[tuple[float, int, bool]]  # (time, call, is a call entry), in history order
    nxt: list[int]
    prv: list[int]
    is_call: list[bool]
    op_of: list[int]
    call_e: list[int]
    ret_e: list[int]

    @classmethod
    def of(cls, calls: Sequence[Call]) -> EntryList:
        n = len(calls)
        order = sorted(
            [(c.call, i, True) for i, c in enumerate(calls)]
            + [(c.ret, i, False) for i, c in enumerate(calls) if c.ret is not None]
        )
        tail = len(order) + 1
        call_e, ret_e = [0] * n, [-1] * n
        for e, (_, i, is_c) in enumerate(order, start=1):
            if is_c:
                call_e[i] = e
            else:
                ret_e[i] = e
        return cls(
            order,
            [*range(1, tail + 1), tail],
            [0, *range(0, tail)],
            [False, *[is_c for _, _, is_c in order], False],
            [-1, *[i for _, i, _ in order], -1],
            call_e,
            ret_e,
        )


def settled_before(
    calls: Sequence[Call], links: EntryList, pure: list[bool], model: Model
) -> list[int]:
    """For each read with a known outcome, the bits of the calls that may set
    the state anew and were invoked before it returned (reduction 5); -1 for
    any other call, so the search's test never holds for it."""
    settled = [-1] * len(calls)
    resets = 0
    for _, c, is_c in links.order:
        if not is_c:
            if pure[c]:
                settled[c] = resets
        elif not (pure[c] or model.only_extends(calls[c].input)):
            resets |= 1 << c
    return settled


@dataclass(slots=True)
class Tables:
    """What the search reads about each call of one part, worked out once.

    `bit[i]` is call i's bit in the set of linearized calls, `ibit[i]` the
    same for an unknown-outcome call and 0 for the others; `definite[i]` is
    1 for a known outcome; `pure`, `pred` and `settled` serve reductions 1,
    2 and 5.
    """

    links: EntryList
    inputs: list[object]
    outputs: list[object]
    definite: list[int]
    pure: list[bool]
    bit: list[int]
    ibit: list[int]
    pred: list[int]
    settled: list[int]

    @classmethod
    def of(cls, calls: Sequence[Call], model: Model) -> Tables:
        links = EntryList.of(calls)
        read_only = model.read_only
        pure = [read_only(c.input, c.output) for c in calls]
        bit = [1 << i for i in range(len(calls))]
        return cls(
            links,
            [c.input for c in calls],
            [c.output for c in calls],
            [0 if c.ret is None else 1 for c in calls],
            pure,
            bit,
            [1 << i if c.ret is None else 0 for i, c in enumerate(calls)],
            symmetry_predecessors(calls),
            settled_before(calls, links, pure, model),
        )


def front_moves(t: Tables, model: Model) -> Callable[[Hashable, int], tuple[int, list[int], int]]:
    """`open_moves(state, bits)` for one part's search (a closure: the tables
    are looked up once, not at every configuration).

    `open_moves` lists the calls that may go next from a new configuration:
    those before the first return entry, i.e. pending when the earliest
    pending call returned. It returns (a read-only call that fits, taken at
    once: reduction 1; else -1), the others to try (known outcome first, in
    call order, unknown last; none if a pending read can no longer fit:
    reduction 5), and the call whose return entry comes first (the one stuck
    if every move fails).
    """
    nxt, is_call, op_of = t.links.nxt, t.links.is_call, t.links.op_of
    pred, pure, definite, bit = t.pred, t.pure, t.definite, t.bit
    inputs, outputs, settled = t.inputs, t.outputs, t.settled
    step, reachable = model.step, model.reachable

    def open_moves(state: Hashable, bits: int) -> tuple[int, list[int], int]:
        moves: list[int] = []
        later: list[int] = []
        dead = False  # a pending read can no longer fit (reduction 5)
        e = nxt[0]
        while is_call[e]:
            c = op_of[e]
            e = nxt[e]
            p = pred[c]
            if p >= 0 and not bits & bit[p]:
                continue  # an identical call must go first (reduction 2)
            if not pure[c]:
                (moves if definite[c] else later).append(c)
            elif step(state, inputs[c], outputs[c])[0]:
                return c, moves, -1
            elif bits & settled[c] == settled[c] and not dead:
                dead = not reachable(state, inputs[c], outputs[c])
        if dead:
            return -1, [], op_of[e]  # nothing that may go first can make that read fit
        moves.extend(later)
        return -1, moves, op_of[e]

    return open_moves


# --8<-- [start:wgl-cache]
def dominated(seen: int | list[int], ibits: int) -> bool:
    """Is a configuration with the unknown-outcome calls `ibits` linearized
    dead, given the dead ends `seen` with the same known-outcome calls and
    state (one set, the usual case, or a list of them)? It is if one of
    those is a subset of it (reduction 4): the unknown-outcome calls it has
    beyond one may be left out."""
    if isinstance(seen, int):
        return seen & ~ibits == 0
    return any(o & ~ibits == 0 for o in seen)


# --8<-- [end:wgl-cache]


# --8<-- [start:wgl-cache-add]
def remember_dead(cache: DeadEnds, key: tuple[int, Hashable], ibits: int) -> None:
    """Record a configuration explored without success.

    Only finished (dead) configurations enter the cache: a live one, still
    on the stack, may dominate its own descendants (they can differ by
    unknown-outcome calls alone) without being dead.
    """
    seen = cache.get(key)
    if seen is None:
        cache[key] = ibits
    elif isinstance(seen, int):
        cache[key] = [seen, ibits]
    else:
        seen.append(ibits)


# --8<-- [end:wgl-cache-add]


# --8<-- [start:wgl-search]
def wgl(
    calls: Sequence[Call],
    model: Model,
    init: Any,
    cache_max: int,
    slice_steps: int = SLICE_STEPS,
) -> Generator[None, None, SearchResult]:
    """Search for a linearization of `calls` (one part) from state `init`."""
    t = Tables.of(calls, model)
    open_moves = front_moves(t, model)
    inputs, outputs, definite, bit, ibit = t.inputs, t.outputs, t.definite, t.bit, t.ibit
    nxt, prv, call_e, ret_e = t.links.nxt, t.links.prv, t.links.call_e, t.links.ret_e
    step = model.step
    stats = SearchStats()
    cache: DeadEnds = {}
    # One frame per linearized call: (call, state before it, the moves that
    # were open at that configuration and the index of the next to try;
    # None for a greedy step, which has no alternatives).
    stack: list[tuple[int, Any, tuple[list[int], int] | None]] = []
    best: list[int] = []  # the longest linearization seen (most known outcomes)
    best_left = left = sum(definite)
    best_depth = -1  # >= 0: a longer one is the stack's first `best_depth` calls
    stuck: int | None = None  # the call that could not follow it
    state, bits, ibits = init, 0, 0
    moves: list[int] | None = None  # None: a new configuration
    next_move = 0
    budget = slice_steps
    while left > 0:
        budget -= 1
        if budget == 0:
            stats.steps += slice_steps
            budget = slice_steps
            yield
        i = -1  # the call to linearize next, if any
        if moves is None:
            i, moves, first_ret = open_moves(state, bits)
            if i >= 0:
                new_state, moves = state, None  # a greedy step: no alternatives
            else:
                next_move = 0
                if stuck is None and left == best_left:
                    stuck = first_ret  # its return cannot be reached
        while i < 0 and moves is not None and next_move < len(moves):
            c = moves[next_move]
            next_move += 1
            ok, new_state = step(state, inputs[c], outputs[c])
            if ok and (definite[c] or not (new_state is state or new_state == state)):
                i = c  # (an unknown-outcome call that changes nothing can be left out)
        if i >= 0:
            new_bits, new_ibits = bits | bit[i], ibits | ibit[i]
            seen = cache.get((new_bits ^ new_ibits, new_state))
            if seen is not None and dominated(seen, new_ibits):
                # Explored before (from another order): a dead end. If this was
                # a greedy step, the configuration it was safe from is dead too.
                if moves is None:
                    moves, next_move = [], 0
                continue
            stack.append((i, state, None if moves is None else (moves, next_move)))
            state, bits, ibits = new_state, new_bits, new_ibits
            left -= definite[i]
            # Lift the call and its return out of the list (dancing links).
            e = call_e[i]
            nxt[prv[e]], prv[nxt[e]] = nxt[e], prv[e]
            e = ret_e[i]
            if e >= 0:
                nxt[prv[e]], prv[nxt[e]] = nxt[e], prv[e]
            if left < best_left:  # copied to `best` only when the search backs out
                best_left, best_depth, stuck = left, len(stack), None
            moves = None
            continue
        # No move left here: this configuration is a dead end. Cache it, undo
        # greedy steps wholesale (their configurations are dead too), then
        # resume the configuration below at its next move.
        while True:
            if best_depth >= 0:
                best, best_depth = [f[0] for f in stack[:best_depth]], -1
            if not stack:
                stats.steps += slice_steps - budget
                return SearchResult(False, best, stuck, stats)
            if stats.cache_entries < cache_max:
                stats.cache_entries += 1
                remember_dead(cache, (bits ^ ibits, state), ibits)
            else:
                stats.cache_full = True  # search on without caching: slower, still sound
            i, state, frame = stack.pop()
            bits ^= bit[i]
            ibits ^= ibit[i]
            left += definite[i]
            # Put its entries back, in the reverse order of lifting.
            e = ret_e[i]
            if e >= 0:
                nxt[prv[e]] = prv[nxt[e]] = e
            e = call_e[i]
            nxt[prv[e]] = prv[nxt[e]] = e
            if frame is not None:
                moves, next_move = frame
                break
    stats.steps += slice_steps - budget
    return SearchResult(True, [f[0] for f in stack], None, stats)


# --8<-- [end:wgl-search]


def run_to_end(gen: Generator[None, None, SearchResult]) -> SearchResult:
    """Drive a search generator to its result (no deadline)."""
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
