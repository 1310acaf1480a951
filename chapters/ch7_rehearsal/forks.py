"""The rehearsal's runs side by side, each in a forked process.

A rehearsal is many runs of the system under test (the recording, the
capacity sweep's points, the load levels, the drills), each on a simulator
of its own and judged from its own history: nothing passes between them but
the recording, which the levels and most drills replay. So on a machine
with two cores two of them run at once. This is `checks.parallel`'s way
with checkers, applied to whole runs: a child is forked from the process as
it is (copy-on-write: the recording and the imported code are shared, not
pickled), runs one run, sends back its figures pickled and leaves with
`os._exit`. Each run executes the same code on the same inputs as it would
one after the other, so its figures, and the report, are the same byte for
byte (`tests/ch7/test_rehearsal_forks.py` compares them); only the wall time
changes.

A run may fork children of its own (its checkers, `checks.parallel`): a
child here is made a non-daemon once started, as a forked checker is.
Without `fork` (or off the main thread) the runs go one after the other.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import threading
import traceback
from collections.abc import Callable, Hashable
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from checks.parallel import end_children

__all__ = ["RunFailed", "Runs", "cores"]

Queued = tuple[bool, Hashable, str, Callable[[], object]]


def cores() -> int:
    """How many runs at once: the cores this process may use."""
    affinity = getattr(os, "sched_getaffinity", None)
    return max(1, len(affinity(0)) if affinity is not None else (os.cpu_count() or 1))


class RunFailed(RuntimeError):
    """A run raised in its child, or its child died; the message says how."""


class Runs:
    """Runs submitted by key, at most `width` at once; `result(key)` waits for one.

    Queued runs start by `urgent` first, then in the order submitted (the
    runs that replay the recording go ahead of those queued before it came).
    `on_start(label)` is told as each run starts. With `width` 1, or where
    forking is not safe, each run happens in `result`, here, as a plain call.
    """

    def __init__(self, width: int, on_start: Callable[[str], None] | None = None) -> None:
        assert width >= 1, width
        self.forking = (
            width > 1
            and "fork" in multiprocessing.get_all_start_methods()
            and threading.current_thread() is threading.main_thread()
        )
        self._width = width
        self._on_start = on_start
        self._queued: list[Queued] = []  # (urgent, key, label, run)
        self._running: dict[Connection, tuple[Hashable, BaseProcess]] = {}
        self._done: dict[Hashable, object] = {}

    def submit(
        self, key: Hashable, label: str, run: Callable[[], object], *, urgent: bool = False
    ) -> None:
        """Queue `run` under `key`; `label` is what `on_start` is told."""
        assert key not in self._done and all(k != key for _, k, _, _ in self._queued), key
        ahead = sum(1 for u, *_ in self._queued if u or not urgent)
        self._queued.insert(ahead, (urgent, key, label, run))
        self._start_more()

    def result(self, key: Hashable) -> Any:
        """What run `key` returned (waiting for it); its exception re-raised here."""
        if not self.forking:
            if key not in self._done:
                index = next(i for i, (_, k, _, _) in enumerate(self._queued) if k == key)
                self._done[key] = self._started(self._queued.pop(index))()
            return self._done.pop(key)
        try:
            while key not in self._done:
                assert self._running, f"run {key!r} was never submitted"
                for conn in wait(list(self._running)):
                    assert isinstance(conn, Connection), conn
                    self._collect(conn)
                self._start_more()
        except BaseException:
            self.stop()
            raise
        outcome = self._done.pop(key)
        if isinstance(outcome, BaseException):
            self.stop()
            raise outcome
        return outcome

    def stop(self) -> None:
        """End every child still running (an error, or an interrupted rehearsal)."""
        end_children(self._running)
        self._queued.clear()

    def _start_more(self) -> None:
        if not self.forking:
            return
        ctx = multiprocessing.get_context("fork")
        while self._queued and len(self._running) < self._width:
            queued = self._queued.pop(0)
            key, run = queued[1], self._started(queued)
            receive, send = ctx.Pipe(duplex=False)
            child = ctx.Process(target=_child, args=(run, send), daemon=True)
            child.start()
            send.close()  # the child holds its end: EOF here if it dies
            self._running[receive] = (key, child)

    def _started(self, queued: Queued) -> Callable[[], object]:
        if self._on_start is not None:
            self._on_start(queued[2])
        return queued[3]

    def _collect(self, conn: Connection) -> None:
        key, child = self._running.pop(conn)
        try:
            outcome = pickle.loads(conn.recv_bytes())
        except EOFError:
            child.join()
            outcome = RunFailed(f"run {key!r}: its process died (exit {child.exitcode})")
        finally:
            conn.close()
            child.join()
        self._done[key] = outcome


def _child(run: Callable[[], object], send: Connection) -> None:
    multiprocessing.current_process().daemon = False  # its checkers may fork (see above)
    try:
        payload = pickle.dumps(run(), protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException as exc:  # the parent raises it, or its traceback as text
        text = "".join(traceback.format_exception(exc))
        payload = pickle.dumps(RunFailed(text))
    send.send_bytes(payload)
    send.close()
    os._exit(0)  # no atexit handlers, no flushing of the parent's buffers twice
