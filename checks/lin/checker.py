"""Linearizability of a whole history: prepare, split, search the parts.

A history is linearizable iff each of its independent parts is
(P-compositionality). The parts are searched interleaved, cheapest first, a
slice of steps at a time: the first part found not linearizable settles the
verdict, so one part whose search would blow up cannot hide another that
fails within milliseconds. A deadline makes the verdict "unknown" rather
than a guess; a bound on the cache bounds the memory.

Real time is the order of events in the history (as in Jepsen and Knossos):
an operation precedes another if its completion comes before the other's
invoke. The events' `time_ms` are for people and plots only.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Hashable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Literal

from checks.history import Event, Operation, pair_operations
from checks.lin.model import Call, Model
from checks.lin.native import (
    KvParts,
    KvPrepared,
    LazyCalls,
    LazyList,
    PartOutcome,
    prepare_ops,
    search_parts,
)
from checks.lin.search import SLICE_STEPS, SearchResult, SearchStats, wgl
from checks.verdict import NO_CLIENT_OPERATIONS

Validity = bool | Literal["unknown"]

CACHE_MAX_TOTAL = 2_000_000  # configurations cached over all parts (~300 MB at worst)


@dataclass(slots=True)
class Part:
    """One independent part of the history and what its search found."""

    key: Hashable
    # local ids 0..n-1 (Call.id indexes the whole checked list); from the
    # compiled helper, built on first use (checks.lin.native.LazyCalls)
    calls: Sequence[Call]
    init: Any
    result: SearchResult | None = None  # None: not finished (deadline, or not needed)

    @property
    def verdict(self) -> Validity:
        if self.result is None:
            return "unknown"
        return self.result.linearizable


@dataclass(slots=True)
class LinResult:
    """The verdict on a history, the parts, and the failing part if any."""

    valid: Validity
    model: Model
    parts: Sequence[Part]  # from the compiled helper, built on first read (LazyParts)
    failing: Part | None  # the part found not linearizable
    elapsed_s: float
    reason: str  # why unknown ("" otherwise)
    calls_dropped: int  # left out: failed, or read-only with an unknown outcome
    stats: SearchStats = field(default_factory=SearchStats)
    engine: str = "python"  # the search that ran: "python" or "native" (checks.lin.native)

    @property
    def exit_code(self) -> int:
        return {True: 0, False: 1}.get(self.valid, 2)  # type: ignore[arg-type]


def prepare(ops: Sequence[Operation], model: Model) -> tuple[list[Call], int]:
    """The model's view of each operation, and how many were left out.

    Left out: failed operations (they did not happen; the model decides, see
    `Model.prepare`) and read-only ones whose outcome is unknown.
    """
    calls: list[Call] = []
    dropped = 0
    model_prepare, read_only = model.prepare, model.read_only  # looked up once, not per call
    for op in ops:
        io = model_prepare(op)
        if io is None:
            dropped += 1
            continue
        inp, out = io
        done = op.completion
        ret = done.index if done is not None and done.type != "info" else None
        if ret is None and read_only(inp, out):
            dropped += 1  # a read whose result is unknown constrains nothing
            continue
        calls.append(Call(len(calls), op.process, op.f, inp, out, op.invoke.index, ret, op))
    return calls, dropped


_invoked = attrgetter("call")  # a call's position in the history (C-level: no Python call)


def split(calls: Sequence[Call], model: Model) -> list[Part]:
    """The parts of a history, each with local call ids, cheapest (smallest) first."""
    parts: list[Part] = []
    for key, members in model.partition(calls):
        local = [
            Call(k, c.process, c.f, c.input, c.output, c.call, c.ret, c.op)
            for k, c in enumerate(sorted(members, key=_invoked))
        ]
        parts.append(Part(key, local, model.init_part(key)))
    parts.sort(key=lambda p: len(p.calls))
    return parts


# --8<-- [start:lin-check]
def check_calls(
    calls: Sequence[Call],
    model: Model,
    timeout_s: float | None = None,
    cache_max: int = CACHE_MAX_TOTAL,
    dropped: int = 0,
) -> LinResult:
    """Check prepared calls: the parts interleaved, stopping at the first failure."""
    t0 = time.monotonic()
    return check_parts(split(calls, model), model, timeout_s, cache_max, dropped, t0)


def check_parts(
    parts: list[Part],
    model: Model,
    timeout_s: float | None = None,
    cache_max: int = CACHE_MAX_TOTAL,
    dropped: int = 0,
    t0: float | None = None,
) -> LinResult:
    """Check a history split into parts already (by `split`, or by a
    projection that makes its parts itself), from `t0` (default: now)."""
    t0 = time.monotonic() if t0 is None else t0
    deadline = None if timeout_s is None else t0 + timeout_s
    cache_each = max(1000, cache_max // max(1, len(parts)))
    # The compiled search where it is installed and knows the model (the
    # same search, step for step: checks/lin/native.py), else this one.
    ran, failing = _search_native(parts, model, cache_each, timeout_s)
    engine = "native" if ran else "python"
    if not ran:
        failing = _search_round_robin(parts, model, cache_each, deadline)
    return _result(model, parts, failing, t0, timeout_s, dropped, engine)


def _result(
    model: Model,
    parts: list[Part],
    failing: Part | None,
    t0: float,
    timeout_s: float | None,
    dropped: int,
    engine: str,
) -> LinResult:
    """The verdict once the parts are searched (or time ran out)."""
    finished = all(p.result is not None for p in parts)
    return _verdict(model, parts, failing, finished, _total(parts), t0, timeout_s, dropped, engine)


def _verdict(
    model: Model,
    parts: Sequence[Part],
    failing: Part | None,
    finished: bool,
    stats: SearchStats,
    t0: float,
    timeout_s: float | None,
    dropped: int,
    engine: str,
) -> LinResult:
    """The verdict: a part failed, or every part finished, or time ran out."""
    elapsed = time.monotonic() - t0
    if failing is not None:
        return LinResult(False, model, parts, failing, elapsed, "", dropped, stats, engine)
    if finished:
        return LinResult(True, model, parts, None, elapsed, "", dropped, stats, engine)
    reason = f"time budget of {timeout_s} s ran out"
    if stats.cache_full:
        reason += " (the cache was full: the search ran without it for a while)"
    return LinResult("unknown", model, parts, None, elapsed, reason, dropped, stats, engine)


def _search_round_robin(
    parts: list[Part], model: Model, cache_each: int, deadline: float | None
) -> Part | None:
    """Search the parts a slice of steps each in turn: the first part to
    fail settles the verdict (it is returned); time running out leaves the
    unfinished parts' results None."""
    running = [(p, wgl(p.calls, model, p.init, cache_each)) for p in parts]
    failing: Part | None = None
    out_of_time = False
    while running and failing is None and not out_of_time:
        still: list[tuple[Part, Generator[None, None, SearchResult]]] = []
        for part, search in running:
            if failing is not None or out_of_time:
                still.append((part, search))
                continue
            try:
                next(search)
                still.append((part, search))
            except StopIteration as done:
                part.result = done.value
                if not part.result.linearizable:
                    failing = part
            out_of_time = deadline is not None and time.monotonic() > deadline
        running = still
    for _, search in running:
        search.close()  # abandoned: the verdict is settled, or time ran out
    return failing


# --8<-- [end:lin-check]


@dataclass(slots=True)
class Prepared:
    """A history ready to search: each operation's calls, and how many were
    left out (`prepare`), or the compiled helper's own reading of them."""

    model: Model
    calls: list[Call]
    dropped: int
    native: KvPrepared | None = None  # read by the helper (then `calls` is empty)


def prepare_operations(ops: Sequence[Operation], model: Model) -> Prepared:
    """`prepare`, by the compiled helper where it reads this history (a kv
    one, the helper installed: the same calls and parts, checks/lin/native.py)."""
    read = prepare_ops(model, ops)
    if read is not None:
        return Prepared(model, [], 0, read)
    calls, dropped = prepare(ops, model)
    return Prepared(model, calls, dropped)


def check_prepared(
    prepared: Prepared, timeout_s: float | None = None, cache_max: int = CACHE_MAX_TOTAL
) -> LinResult:
    """Check a prepared history (once): split it, search the parts."""
    if prepared.native is None:
        return check_calls(prepared.calls, prepared.model, timeout_s, cache_max, prepared.dropped)
    t0 = time.monotonic()
    model = prepared.model
    # One call: the verdict's figures now; the parts, their results and
    # their calls are Python objects only once read (a verdict reads none).
    dropped, failed, finished, (steps, entries, full), split = prepared.native.check(
        cache_max, SLICE_STEPS, timeout_s
    )
    failing, named = None, None
    if failed is not None:
        at, key, n, got = failed
        failing = Part(key, LazyCalls(split, at, n), model.init_part(key), _found(got))
        named = (at, failing)
    parts = LazyParts(split, model, named)
    stats = SearchStats(steps, entries, full)
    return _verdict(model, parts, failing, finished, stats, t0, timeout_s, dropped, "native")


class LazyParts(LazyList[Part]):
    """The parts of a history the compiled helper split and searched, built
    on first read, as `split` and the search would have left them (their
    calls built later still, `LazyCalls`); the failing part is the one the
    verdict names."""

    __slots__ = ("_failing", "_model", "_split")

    def __init__(self, split: KvParts, model: Model, failing: tuple[int, Part] | None) -> None:
        self._n, self._items = len(split), None  # LazyList's (as LazyCalls sets them)
        self._split, self._model, self._failing = split, model, failing

    def _build(self) -> list[Part]:
        init_part, split = self._model.init_part, self._split
        parts = [
            Part(key, LazyCalls(split, p, n), init_part(key), _found(got))
            for p, (key, n, got) in enumerate(split.parts())
        ]
        if self._failing is not None:
            at, part = self._failing
            parts[at] = part
        return parts


def check_operations(
    ops: Sequence[Operation],
    model: Model,
    timeout_s: float | None = None,
    cache_max: int = CACHE_MAX_TOTAL,
) -> LinResult:
    """Check paired operations against a model (none at all: unknown, as every checker)."""
    if not ops:
        return LinResult("unknown", model, [], None, 0.0, NO_CLIENT_OPERATIONS, 0)
    return check_prepared(prepare_operations(ops, model), timeout_s, cache_max)


def check_history(
    events: list[Event],
    model: Model,
    timeout_s: float | None = None,
    cache_max: int = CACHE_MAX_TOTAL,
) -> LinResult:
    """Check a history (a list of events) against a model: the main entry point."""
    return check_operations(pair_operations(events), model, timeout_s, cache_max)


def _search_native(
    parts: list[Part], model: Model, cache_each: int, timeout_s: float | None
) -> tuple[bool, Part | None]:
    """Search the parts with the compiled helper, if it runs here: (whether
    it ran, the failing part). It fills in each finished part's result."""
    outcomes = search_parts(
        model, [(p.key, p.calls, p.init) for p in parts], cache_each, SLICE_STEPS, timeout_s
    )
    if outcomes is None:
        return False, None
    return True, _fill(parts, outcomes)


def _fill(parts: list[Part], outcomes: list[PartOutcome]) -> Part | None:
    """Each finished part's result from the helper's outcomes; the failing part."""
    assert len(outcomes) == len(parts), "one outcome per part"
    failing: Part | None = None
    for part, got in zip(parts, outcomes, strict=True):
        part.result = _found(got)
        if part.result is not None and not part.result.linearizable:
            assert failing is None, "the search stops at the first failing part"
            failing = part
    return failing


def _found(got: PartOutcome) -> SearchResult | None:
    """A part's result from the helper's outcome (None: not finished,
    another part failed first or time ran out)."""
    if got is None:
        return None
    ok, order, stuck, steps, entries, full = got
    return SearchResult(ok, order, stuck, SearchStats(steps, entries, full))


def _total(parts: Sequence[Part]) -> SearchStats:
    total = SearchStats()
    for p in parts:
        if p.result is not None:
            total.steps += p.result.stats.steps
            total.cache_entries += p.result.stats.cache_entries
            total.cache_full = total.cache_full or p.result.stats.cache_full
    return total
