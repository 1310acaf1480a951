"""The discrete-event kernel: a virtual clock and one queue of future events.

Everything that happens in a simulated run (a message arriving, a timer
firing, the nemesis cutting a link) is an event due at some virtual time.
Time jumps from event to event; nothing ever waits on a wall clock except
`run_paced`, which the TUI uses to watch a run.

The queue is two structures: a binary heap of the distinct due times, and a
dict from each due time to what is due then: one event, or a list of events
in the order they were scheduled. So events due at the same instant run in
scheduling order, and the run is a pure function of the seed and the
configuration. Why not one heap of `(time, seq, event)` tuples, the textbook
way? Because comparing two floats is several times cheaper for CPython than
comparing two tuples, and a heap of 1,000 events does a dozen comparisons per
pop: on the hot path, that was a third of the cost of a message.

An event is a plain tuple `(handler, a, b, c)`, not an object (one
allocation, no attribute lookups). The handler returns a small int saying
what happened (who received, a drop, a timer); the kernel folds it and the
event time into a running digest, so two runs can be compared with one
string.

One kind of event is special, because it is most of them: a message arrival,
`(ARRIVAL, endpoint, msg, src)`. The loop delivers it itself, saving a
function call per message: if the endpoint is free (its `gate_ms` is in the
past) it calls `endpoint.on_message(endpoint.ctx, src, msg)`; otherwise it
hands the event to `arrival_blocked`, which the runtime sets (queue it at a
busy node, drop it at a crashed one). A node that refuses the message it was
handed (`UnhandledMessage`, reference/node.py) is reported to `unhandled`,
which the runtime sets too; any other exception ends the run.
"""

from __future__ import annotations

import gc
import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from heapq import heappop, heappush
from typing import Any

from reference.node import UnhandledMessage

__all__ = ["ARRIVAL", "GC_THRESHOLDS", "Event", "Handler", "Kernel", "fewer_collections"]

ARRIVAL = None  # the handler slot of a message-arrival event (see the docstring)

Handler = Callable[[Any, Any, Any], int]
"""`handler(a, b, c) -> fingerprint`; the int is folded into the digest."""

Event = tuple[Handler | None, Any, Any, Any]

_PACED_SLICE_S = 0.02  # longest a paced run sleeps before rechecking should_stop
_PACED_MIN_S = 0.001  # shortest sleep of a paced run
_TRAIL_FOLD_MASK = 4095  # fold the digest trail into the digest every 4096 events
# The collector's thresholds while events run. A run allocates and frees
# messages, events and closures by the million, and what survives (logs,
# ledgers, the history) lives to the end. At Python's default (a young
# collection every 700 net allocations) a minute of chapter 4 under every
# fault spent 1.8 s of its 19 s CPU in 3,474 collections; with these, in 2
# (measured side by side, the same digest).
GC_THRESHOLDS = (50_000, 20, 100)


@contextmanager
def fewer_collections() -> Iterator[None]:
    """The collector at `GC_THRESHOLDS` for the `with` block, then as it was."""
    before = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _call(fn: Callable[[], object], _b: object, _c: object) -> int:
    fn()
    return 1


def _no_blocked_arrivals(endpoint: Any, msg: Any, src: Any) -> int:
    raise AssertionError(f"message to a closed endpoint and no arrival_blocked handler: {msg!r}")


def _no_unhandled(endpoint: Any, msg: Any, src: Any) -> int:
    raise UnhandledMessage(endpoint, msg)


class Kernel:
    """Virtual clock + event queue + digest. See the module docstring."""

    __slots__ = (
        "_log_from",
        "_stopped",
        "_tokens",
        "_trail",
        "arrival_blocked",
        "digest",
        "due",
        "events",
        "log",
        "now_ms",
        "times",
        "unhandled",
    )

    def __init__(self) -> None:
        self.now_ms: float = 0.0
        self.arrival_blocked: Handler = _no_blocked_arrivals
        self.unhandled: Handler = _no_unhandled  # (endpoint, msg, src): a refused message
        self.events: int = 0  # processed so far
        self.times: list[float] = []  # heap of the distinct due times
        self.due: dict[float, Any] = {}  # due time -> Event, or list of Events in order
        self.digest: int = 0  # folded from `_trail`; read it through `trace_digest()`
        self._trail: list[Any] = []  # (fingerprint, time) of recent events, not yet folded
        self.log: list[Any] | None = None  # when a list: every (fingerprint, time), kept
        self._log_from = 0  # trail entries from before `record()`: folded, not logged
        self._tokens = itertools.count(1)
        self._stopped = False

    # -- scheduling -----------------------------------------------------------
    def push(self, time_ms: float, event: Event) -> None:
        """Queue `event` at `time_ms`, after any event already due then."""
        due = self.due
        queued = due.get(time_ms)
        if queued is None:
            due[time_ms] = event
            heappush(self.times, time_ms)
        elif type(queued) is list:
            queued.append(event)
        else:
            due[time_ms] = [queued, event]

    def schedule(
        self, time_ms: float, handler: Handler, a: Any, b: Any = None, c: Any = None
    ) -> None:
        """Run `handler(a, b, c)` at `time_ms`."""
        assert time_ms >= self.now_ms, f"event scheduled in the past: {time_ms} < {self.now_ms}"
        self.push(time_ms, (handler, a, b, c))

    def call_at(self, time_ms: float, fn: Callable[[], object]) -> None:
        """Run `fn()` at virtual time `time_ms` (not before now)."""
        if time_ms < self.now_ms:
            raise ValueError(f"call_at({time_ms}): that is before now ({self.now_ms})")
        self.schedule(time_ms, _call, fn)

    def new_token(self) -> int:
        """A number never handed out before (timers use it to recognise themselves)."""
        return next(self._tokens)

    def pending(self) -> int:
        return sum(len(q) if type(q) is list else 1 for q in self.due.values())

    def next_time_ms(self) -> float | None:
        return self.times[0] if self.times else None

    def queued(self) -> Iterator[tuple[float, Event]]:
        """Every queued (time, event), in no particular order (for reports)."""
        for time_ms, queued in self.due.items():
            if type(queued) is list:
                for event in queued:
                    yield time_ms, event
            else:
                yield time_ms, queued

    def rewrite(self, change: Callable[[Event], Event | None]) -> int:
        """Replace each queued event `e` by `change(e)` when that is not None.

        Faults use it to doom messages in flight (see SimNet.drop_in_flight);
        each event keeps its time and its place in line. Returns how many.
        """
        changed = 0
        due = self.due
        for time_ms, queued in due.items():
            if type(queued) is list:
                for i, event in enumerate(queued):
                    new = change(event)
                    if new is not None:
                        queued[i] = new
                        changed += 1
            else:
                new = change(queued)
                if new is not None:
                    due[time_ms] = new
                    changed += 1
        return changed

    # -- running --------------------------------------------------------------
    def stop(self) -> None:
        """Make the running `run_*` return after the current event."""
        self._stopped = True

    def step(self) -> bool:
        """Process one event; False when the queue is empty."""
        if not self.times:
            return False
        self._stopped = False
        self.run_until(self.times[0], max_events=1, advance_clock=False)
        return True

    # --8<-- [start:sim-loop]
    def run_until(
        self, until_ms: float, max_events: int | None = None, advance_clock: bool = True
    ) -> int:
        """Process every event due at or before `until_ms`; returns how many ran.

        The clock then reads `until_ms` (unless stopped early, or told not to
        with `advance_clock=False`): virtual time passes even when nothing
        happens. `max_events` bounds the work.
        """
        times, due = self.times, self.due
        blocked = self.arrival_blocked
        note = self._trail.append
        # `ran` counts every event since the kernel began, not since this
        # call: the digest trail folds at fixed counts of the whole run, so
        # a run cut into slices (the TUI's) digests as the same run in one piece.
        ran = start = self.events
        stop_at = -1 if max_events is None else start + max_events
        fold_mask = _TRAIL_FOLD_MASK
        self._stopped = False
        with fewer_collections():
            while times and ran != stop_at:
                # Popped, then put back if not due: once a call, where a look
                # at times[0] first would cost a subscript every event. (Due
                # times are distinct, so the heap pops in the same order.)
                time_ms = heappop(times)
                if time_ms > until_ms:
                    heappush(times, time_ms)
                    break
                event = due.pop(time_ms)
                self.now_ms = time_ms
                if type(event) is list:  # several events due at this very instant
                    budget = stop_at - ran if stop_at > start else -1
                    ran += self._run_same_time(time_ms, event, budget)
                    if self._stopped:
                        break
                    continue
                handler, a, b, c = event
                if handler is None:  # ARRIVAL, a message: a = endpoint, b = msg, c = src
                    if a.gate_ms < time_ms:  # up, not paused, not busy, nothing queued
                        on_message = a.on_message  # (an attribute load, which CPython caches)
                        try:  # (free in CPython 3.11 unless raised)
                            on_message(a.ctx, c, b)
                        except UnhandledMessage as exc:
                            if exc.msg is not b:
                                raise  # refused something else: a bug in the node
                            self.unhandled(a, b, c)
                        note(a.index)
                    else:
                        note(blocked(a, b, c))
                else:
                    note(handler(a, b, c))
                # The digest trail: what happened, and when. Folded in bulk, as
                # hashing per event would cost more than the rest of the loop.
                note(time_ms)
                ran += 1
                if not ran & fold_mask:
                    self._fold()
                if self._stopped:
                    break
        if advance_clock and not self._stopped and ran != stop_at and until_ms > self.now_ms:
            self.now_ms = until_ms
        self.events = ran
        return ran - start

    # --8<-- [end:sim-loop]

    def _run_same_time(self, time_ms: float, events: list[Event], budget: int) -> int:
        """Run events due at one instant, in order; requeue what a stop leaves."""
        ran = 0
        note = self._trail.append
        for i, (handler, a, b, c) in enumerate(events):
            if ran == budget or self._stopped:
                self._requeue_front(time_ms, events[i:])
                break
            if handler is ARRIVAL:
                if a.gate_ms < time_ms:
                    try:
                        a.on_message(a.ctx, c, b)
                    except UnhandledMessage as exc:
                        if exc.msg is not b:
                            raise
                        self.unhandled(a, b, c)
                    note(a.index)
                else:
                    note(self.arrival_blocked(a, b, c))
            else:
                note(handler(a, b, c))
            note(time_ms)
            ran += 1
        return ran

    def _requeue_front(self, time_ms: float, events: list[Event]) -> None:
        # Put back events not run yet, ahead of any scheduled meanwhile.
        later = self.due.get(time_ms)
        if later is None:
            heappush(self.times, time_ms)
            self.due[time_ms] = events if len(events) > 1 else events[0]
        else:
            self.due[time_ms] = events + (later if type(later) is list else [later])

    def _fold(self) -> None:
        # Ints and floats hash the same in every process (str hashes do not).
        self.digest = hash((self.digest, *self._trail))
        if self.log is not None:
            self.log.extend(self._trail[self._log_from :])
        self._log_from = 0
        self._trail.clear()

    def record(self) -> None:
        """From now on keep every event's (fingerprint, time) in `log` (see `event_log`)."""
        if self.log is None:
            self.log = []
            self._log_from = len(self._trail)  # what came before is not recorded

    def event_log(self) -> list[tuple[float, int]]:
        """(time_ms, fingerprint) of every event since `log` was set to a list."""
        flat = [*(self.log or []), *self._trail[self._log_from :]]  # read, not folded
        return list(zip(flat[1::2], flat[0::2], strict=True))

    def trace_digest(self) -> int:
        """The digest over every event processed so far.

        Reading it folds nothing: a digest read mid-run (the TUI's save) must
        not move the fold points, or the run would digest differently after.
        """
        return hash((self.digest, *self._trail)) if self._trail else self.digest

    def run_until_quiet(self, max_ms: float) -> bool:
        """Run until no event is left or `max_ms` of virtual time has passed.

        Returns True when the queue drained (the system went quiet).
        """
        deadline_ms = self.now_ms + max_ms
        self.run_until(deadline_ms, advance_clock=False)
        if self.times and not self._stopped:
            self.now_ms = deadline_ms  # not quiet: the whole budget of time was used
        return not self.times

    def run_paced(
        self,
        speed: float,
        until_ms: float,
        should_stop: Callable[[], bool] | None = None,
        wall_clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Run to `until_ms`, with virtual time following the wall clock.

        `speed` 1.0 is real time, 10.0 ten times faster. Events run in
        batches: everything due by the virtual time the wall clock has reached,
        then a short sleep. `should_stop()` is checked between batches, so a
        watcher (the TUI) can end the run; so can `stop()` from another thread.
        """
        if speed <= 0:
            raise ValueError(f"run_paced(speed={speed}): speed must be > 0")
        start_wall_s = wall_clock()
        start_ms = self.now_ms
        self._stopped = False
        while self.now_ms < until_ms:
            if self._stopped or (should_stop is not None and should_stop()):
                return
            target_ms = min(until_ms, start_ms + (wall_clock() - start_wall_s) * 1000.0 * speed)
            if target_ms > self.now_ms:
                self.run_until(target_ms)
            if self._stopped or self.now_ms >= until_ms:
                return
            next_ms = min(until_ms, self.times[0] if self.times else until_ms)
            wait_s = (next_ms - self.now_ms) / 1000.0 / speed
            # At least a millisecond: waits shorter than that are lost in float
            # rounding, and a watcher does not need finer pacing.
            sleep(min(max(wait_s, _PACED_MIN_S), _PACED_SLICE_S))
