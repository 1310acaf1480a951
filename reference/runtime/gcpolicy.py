"""Garbage collection in long-running processes: freeze what has survived.

CPython's cyclic collector rescans every long-lived object in a full (gen-2)
collection. A replica's state (accounts, transfers, the log) only grows, so
full collections cost more the longer a node runs: we measured 10 to 70 ms
pauses, a few times a second, in the ledger replicas of `d11 bench process`
at 30,000 transfers, and a node answers nothing while one runs.

So every `FREEZE_INTERVAL_MS` the process moves every object that has
survived so far into the permanent generation (`gc.freeze()`, as Instagram's
Python servers do), and collections only ever scan what is newer. Objects
that die are still freed by reference counting; only cyclic garbage that
was frozen stays, and the nodes' data (frozen records in dicts and tuples)
has no cycles.

Young collections are made rarer too, at the simulator's thresholds
(`GC_THRESHOLDS` in reference/sim/kernel.py): a node allocates and frees
messages by the thousand a second, and at Python's default a young
collection ran every 700 net allocations.

The freeze comes often enough that a young collection seldom runs at all.
A replica keeps what it applies (a broker keeps about two tracked objects
a message, its log records; measured in one process), so its young
generation is nearly all survivors, and a young collection walks every
one of them: of 45,000 to 57,000 such objects, 60 to 95 ms of wall time
measured on this 2-core machine at load 8. Frozen once a second, the
broker of `d11 bench mq` would reach the threshold within the second by
that count from 25,000 messages a second (its quiet hours make 35,000);
frozen every 100 ms, a node would have to keep 500,000 objects a second.
A freeze is a few list splices (2 to 3 us measured), however big the heap.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable

from reference.sim.kernel import GC_THRESHOLDS

FREEZE_INTERVAL_MS = 100.0


def keep_frozen(loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    """Freeze the heap on `loop` every `FREEZE_INTERVAL_MS`, and collect the young
    generation at `GC_THRESHOLDS`; returns a cancel function."""
    handle: asyncio.TimerHandle | None = None
    thresholds_before = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)

    def tick() -> None:
        nonlocal handle
        gc.freeze()
        handle = loop.call_later(FREEZE_INTERVAL_MS / 1000, tick)

    def cancel() -> None:
        if handle is not None:
            handle.cancel()
        gc.set_threshold(*thresholds_before)  # a harness process goes back to its own

    handle = loop.call_later(FREEZE_INTERVAL_MS / 1000, tick)
    return cancel
