"""Run a stage's checkers side by side, each in a forked process.

The checkers of one run are independent: each reads the finished history
(and, for some, the final state of the nodes) and returns a `Verdict`. On a
long run they take as long as the simulation itself (a minute of chapter 4
under every fault: wallet linearizability over 350,000 operations, the
ledger, the bank, the audits), and a machine with two cores can run them
two at a time. So `run_checks` forks one child per checker: the child
inherits the history and the nodes as they are (copy-on-write, nothing is
pickled on the way in), runs its checker, and sends back the pickled
verdict. Each checker runs the same code on the same data as it would in
the parent, so each verdict is the same; only the wall time changes.

Forking is used only where it pays and is safe: a history of at least
`PARALLEL_MIN_EVENTS` events (below that a fork costs more than it saves),
more than one checker, a platform with `fork`, and the main thread (the TUI
runs its live checks on a thread of its own, which is not forked: a child
would inherit the other threads' locks held). A child touches no lock: it
runs its checker, writes to its pipe and leaves with `os._exit`. Otherwise
the checkers run one after the other, here.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import multiprocessing
import os
import pickle
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Generic, TypeVar

from checks.verdict import Verdict

__all__ = [
    "PARALLEL_MIN_EVENTS",
    "CheckError",
    "PendingChecks",
    "end_children",
    "forks",
    "run_checks",
    "start_checks",
]

PARALLEL_MIN_EVENTS = 20_000  # events in a history before its checkers are forked
_MAX_CHILDREN = 8  # checkers running at once at most (the OS shares the cores)
_CHILD_GC_THRESHOLDS = (100_000, 50, 100)  # gen0 allocations, gen0 and gen1 collections

# What one job gives back: a checker's Verdict, or (a stage that judges in
# groups, the capstone's parts) a group's verdicts: whatever pickles.
T = TypeVar("T")


class CheckError(RuntimeError):
    """A checker raised in its child process; the message holds its traceback."""


def run_checks(
    checks: Mapping[str, Callable[[], T]], events: int, parallel: bool | None = None
) -> dict[str, T]:
    """Each check's verdict, in the order of `checks`.

    `events` is the size of the history they judge; `parallel` forces the
    choice (None: fork when it pays, see the module docstring).
    """
    return start_checks(checks, events, parallel).wait()


def start_checks(
    checks: Mapping[str, Callable[[], T]], events: int, parallel: bool | None = None
) -> PendingChecks[T]:
    """`run_checks` in two halves: the children are forked now, `wait()` collects
    the verdicts. In between the caller may do work of its own (the harness
    gathers the store folder's figures) while the checkers run."""
    if parallel is None:
        parallel = forks(events, len(checks))
    return PendingChecks(checks, parallel)


def forks(events: int, checks: int) -> bool:
    """Would `run_checks` fork `checks` checkers of a history of `events` events?"""
    return events >= PARALLEL_MIN_EVENTS and checks > 1 and _can_fork()


def _can_fork() -> bool:
    return (
        "fork" in multiprocessing.get_all_start_methods()
        and threading.current_thread() is threading.main_thread()
    )


class PendingChecks(Generic[T]):
    """Checks started by `start_checks`; one after the other in `wait` if not forked."""

    def __init__(self, checks: Mapping[str, Callable[[], T]], parallel: bool) -> None:
        self._checks = dict(checks)
        self._parallel = parallel
        self._results: dict[str, T] = {}
        self._running: dict[Connection, tuple[str, BaseProcess]] = {}  # pipe -> (check, process)
        self._waiting = list(reversed(self._checks))  # popped from the end: in order
        self._done_s = 0.0  # time.monotonic() when the last checker finished
        if parallel:
            self._fork_more()

    @property
    def forked(self) -> bool:
        """Are the checkers running in other processes (so this one is free meanwhile)?"""
        return self._parallel

    @property
    def done_s(self) -> float:
        """When the last checker finished, by `time.monotonic()` (once `wait` returned).

        A forked checker says when it finished, so the caller can tell how long
        the checks ran while it did other work (the harness's time line)."""
        return self._done_s

    @classmethod
    def finished(cls, verdicts: Mapping[str, Verdict]) -> PendingChecks[Verdict]:
        """Checks already run (by a stage with its own `run_checks`): `wait` returns these."""
        given = {name: functools.partial(_given, v) for name, v in verdicts.items()}
        return PendingChecks(given, False)

    def wait(self) -> dict[str, T]:
        """Every check's verdict, in the order of the checks; a checker's exception raises."""
        if not self._parallel:
            verdicts = {name: check() for name, check in self._checks.items()}
            self._done_s = time.monotonic()
            return verdicts
        try:
            while self._running:
                ready = multiprocessing.connection.wait(list(self._running))
                for conn in [c for c in self._running if c in ready]:
                    self._collect(conn)
                self._fork_more()
        finally:  # a checker raised: the others' verdicts no longer matter
            self.cancel()
        return {name: self._results[name] for name in self._checks}

    def cancel(self) -> None:
        """End the checks still running (their verdicts are not wanted after all)."""
        end_children(self._running)
        self._waiting.clear()

    def _fork_more(self) -> None:
        ctx = multiprocessing.get_context("fork")
        while self._waiting and len(self._running) < _MAX_CHILDREN:
            name = self._waiting.pop()
            receive, send = ctx.Pipe(duplex=False)
            child = ctx.Process(target=_child, args=(self._checks[name], send), daemon=True)
            with _no_collection():
                child.start()
            send.close()  # the child holds its own end; EOF here if it dies
            self._running[receive] = (name, child)

    def _collect(self, conn: Connection) -> None:
        name, child = self._running.pop(conn)
        try:
            outcome, done_s = pickle.loads(conn.recv_bytes())
        except EOFError:
            child.join()
            outcome = CheckError(f"the {name} check's process died (exit {child.exitcode})")
            done_s = time.monotonic()
        finally:
            conn.close()
            child.join()
        if isinstance(outcome, BaseException):
            raise outcome
        self._results[name] = outcome
        self._done_s = max(self._done_s, done_s)


def _given(verdict: Verdict) -> Verdict:
    return verdict


@contextlib.contextmanager
def _no_collection() -> Iterator[None]:
    """The collector off while a child is forked, then as it was (O(1) both ways).

    The child must not collect before it has frozen what it inherited
    (`_child` freezes first thing): a collection that reached the inherited
    heap would write to every object's header, and copy-on-write would copy
    each page of it into the child. A parent that simulated with its
    collector off (the rehearsal's levels) has its whole heap in the
    youngest generation: unfrozen, a child that turns its collector back on
    would start with a young collection over all of it (a 60 s 2x level's 3 GB).

    Why not freeze here, in the parent, and unfreeze after unless the caller
    had frozen the heap itself? Asking whether it had (`gc.get_freeze_count()`)
    walks every frozen object: 0.1 s of this process's time per fork after a
    minute of chapter 4 (a million objects), seven forks a run."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def end_children(running: dict[Connection, tuple[T, BaseProcess]]) -> None:
    """End every forked child in `running` (pipe -> (its name, its process)) and
    close its pipe; `running` is left empty. Shared with the rehearsal's runs."""
    for conn, (_, child) in running.items():
        child.terminate()
        child.join()
        conn.close()
    running.clear()


def _child(check: Callable[[], object], send: Connection) -> None:
    # What the child inherited (the history, the nodes) goes to the permanent
    # generation before anything can collect (the collector is off until
    # here: `_no_collection`): its collections scan only what its checker
    # allocates, never the inherited heap.
    gc.freeze()
    # A checker allocates hundreds of thousands of objects that live until
    # it returns (operations, calls, states) and makes next to no cyclic
    # garbage; at CPython's default thresholds the collector runs thousands
    # of times for nothing: wallet linearizability of a minute of ch4 took
    # 12.8 s CPU, 8.7 s with these (measured side by side). Still bounded,
    # and the process ends with its checker.
    gc.set_threshold(*_CHILD_GC_THRESHOLDS)
    gc.enable()  # (off in a parent that collects nothing while it simulates: the rehearsal)
    # A daemon (ended with its parent) may not start processes of its own, but
    # a checker may fork checkers (chapter 4's wallets, in shares): it waits
    # for them before it returns, so it need not be a daemon to them.
    multiprocessing.current_process().daemon = False
    try:
        outcome: object = check()
        # (The monotonic clock is the machine's: the parent reads the same one.)
        payload = pickle.dumps((outcome, time.monotonic()), protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException as exc:  # whatever it was, the parent raises it
        text = "".join(traceback.format_exception(exc))
        try:
            payload = pickle.dumps((exc, time.monotonic()))
            pickle.loads(payload)
        except Exception:  # not picklable: its traceback, as text
            payload = pickle.dumps((CheckError(text), time.monotonic()))
    send.send_bytes(payload)
    send.close()
    os._exit(0)  # no atexit handlers, no flushing of the parent's buffers twice
