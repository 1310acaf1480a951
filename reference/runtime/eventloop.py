"""Which asyncio event loop the real runtime runs on: uvloop when it is installed.

A node process spends a large share of its CPU in the event loop itself:
polling, reading and writing sockets, running callbacks. uvloop implements
the same `asyncio` loop on libuv, in C, so the nodes' code is unchanged (it
only ever speaks `asyncio`), and what the loop costs shrinks: measured on
`d11 bench process` and `d11 bench mq` (see `d11 bench process`'s CPU per
transfer, per replica), old and new loop in one sitting.

uvloop is an ordinary dependency, but the runtime does not need it: when it
cannot be imported (a platform without a wheel) the standard loop runs, and
`D11_EVENT_LOOP=asyncio` asks for the standard loop anyway (to compare the
two, or to rule the loop out when something misbehaves). Node processes
inherit the variable, so one setting covers the harness and every node.

One difference matters to a reader of the timings: uvloop's `loop.time()`
and its timers have millisecond resolution (libuv's), where the standard
loop's have the monotonic clock's. The nodes read time from their
`Context`, on `time.monotonic()`, so only sub-millisecond timers differ:
they fire on the loop's next turn instead.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

EVENT_LOOP_ENV = "D11_EVENT_LOOP"  # "uvloop" (the default when installed) or "asyncio"


def loop_name() -> str:
    """The loop this process will run: "uvloop" or "asyncio"."""
    if os.environ.get(EVENT_LOOP_ENV, "uvloop") == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """What makes a new loop of the chosen kind (for `asyncio.Runner`)."""
    if loop_name() == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new loop of the chosen kind."""
    return loop_factory()()
