"""The sans-IO node contract that every server in the system implements.

A node is a plain object that reacts to three kinds of events and performs no
I/O of its own, in the style of etcd's raft library: whatever it wants done
(send a message, arm a timer, write to disk, spend CPU time) it asks of the
`Context` it is handed. The same node class therefore runs unchanged in the
deterministic simulator (`reference.runtime.sim.SimRuntime`) and as a real OS
process (`reference.runtime.process.ProcessRuntime`).

Crash and recovery: a crash throws the node object away. On restart the
runtime builds a fresh object from the node's factory and calls `on_start`
again; the only thing that survived is what the node had synced to
`ctx.disk`. Recovery is therefore simply "read the disk in `on_start`".

Time is in milliseconds (float) everywhere; names carry the unit.

A message a node does not handle is not a bug of that node: anyone who can
reach it may send it any registered message. The node says so by raising
`UnhandledMessage` for the message it was handed (the base `on_message`
does), and every runtime logs it, counts it (`unhandled_messages`) and drops
it. Any other exception out of a handler is a bug, and crashes the node.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from reference.codec import Message, decode, encode, message, registered_types

if TYPE_CHECKING:
    from reference.disk.base import Disk

__all__ = [
    "Context",
    "Message",
    "Node",
    "NodeFactory",
    "NodeId",
    "UnhandledMessage",
    "decode",
    "encode",
    "message",
    "registered_types",
]

NodeId = str

UNHANDLED_COUNTER = "unhandled_messages"


# --8<-- [start:unhandled]
class UnhandledMessage(TypeError):
    """Raised by `on_message` for a message this node does not handle.

    The runtime drops the message (logged, counted) only if `msg` is the very
    message it delivered: the same exception escaping for any other message
    (a command nested in it, say) is a bug, and crashes the node.
    """

    def __init__(self, node: object, msg: object) -> None:
        super().__init__(f"{type(node).__name__} does not handle {type(msg).__name__}")
        self.msg = msg


def is_unhandled(exc: BaseException, msg: object) -> bool:
    """Did the handler refuse `msg` itself (drop it), rather than fail (crash)?"""
    return isinstance(exc, UnhandledMessage) and exc.msg is msg


# --8<-- [end:unhandled]


# --8<-- [start:context]
@runtime_checkable
class Context(Protocol):
    """Everything a node may ask of the world. The runtime implements it."""

    node_id: NodeId
    random: random.Random  # per-node stream, derived from the run's seed
    disk: Disk  # survives a crash up to the last sync()

    def now_ms(self) -> float:
        """The node's own clock: true time plus this node's skew and drift."""
        ...

    def send(self, dst: NodeId, msg: Message) -> None:
        """Hand a message to the network. Delivery is not guaranteed."""
        ...

    def set_timer(self, delay_ms: float, tag: Hashable) -> None:
        """Arm (or re-arm) the timer `tag`; `on_timer(ctx, tag)` fires later."""
        ...

    def cancel_timer(self, tag: Hashable) -> None:
        """Disarm the timer `tag` if it is armed; no error if it is not."""
        ...

    def work(self, duration_ms: float) -> None:
        """Spend service time: the node is busy for `duration_ms`.

        Messages sent after this call leave when the work is done, and the
        node handles its next event only then. This is how a node gets a
        capacity: offered load above it queues, and queues time out.
        """
        ...

    def count(self, name: str, n: int = 1) -> None:
        """Add `n` to this node's counter `name`."""
        ...

    def observe(self, name: str, value: float) -> None:
        """Record one sample of the histogram `name` (e.g. a latency in ms)."""
        ...

    def trace(self, kind: str, **fields: object) -> None:
        """Emit a structured trace event (leader elected, rule changed, ...)."""
        ...


# --8<-- [end:context]


# --8<-- [start:node]
class Node:
    """Base class of every server. Override the handlers you need.

    Handlers must be deterministic given their inputs and `ctx.random`: no
    wall clock, no global random, no threads, no sockets, no files.
    """

    def on_start(self, ctx: Context) -> None:
        """Called at boot and after every restart: recover from `ctx.disk`."""

    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        """Called for every message delivered to this node; raise
        `UnhandledMessage(self, msg)` for one it does not handle."""
        raise UnhandledMessage(self, msg)

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        """Called when the timer `tag` fires."""
        raise TypeError(f"{type(self).__name__} armed no timer {tag!r}")


# --8<-- [end:node]


NodeFactory = Callable[[NodeId], Node]
"""Builds a fresh node object; called at boot and at every restart."""
