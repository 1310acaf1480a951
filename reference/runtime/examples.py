"""Small nodes that exercise a runtime: an echo, a durable counter, a beacon.

They live in `reference/` (not in tests) because a process node's factory
must be importable by name in the child: `"reference.runtime.examples:counter"`.
The runtime tests and `d11 bench process` smoke runs use them.
"""

from __future__ import annotations

from collections.abc import Hashable

from reference.codec import Message, message
from reference.node import Context, Node, NodeId, UnhandledMessage

COUNTER_KEY = "count"


@message(name="runtime.Echo")
class Echo(Message):
    req_id: int
    text: str


@message(name="runtime.Incr")
class Incr(Message):
    req_id: int
    amount: int


@message(name="runtime.Counted")
class Counted(Message):
    req_id: int
    value: int  # the counter after the increment, durable when this is sent


@message(name="runtime.Beat")
class Beat(Message):
    seq: int


@message(name="runtime.AskHeard")
class AskHeard(Message):
    req_id: int


@message(name="runtime.Heard")
class Heard(Message):
    req_id: int
    node: str
    counts: dict[str, int]  # beats received, per sender


class EchoNode(Node):
    """Sends every Echo back to its sender."""

    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        if not isinstance(msg, Echo):
            raise UnhandledMessage(self, msg)
        ctx.count("echoed")
        ctx.send(src, msg)


class CounterNode(Node):
    """A counter that acknowledges an increment only once it is synced to disk."""

    def __init__(self) -> None:
        self.value = 0

    def on_start(self, ctx: Context) -> None:
        self.value = ctx.disk.get(COUNTER_KEY, 0)  # recovery: whatever was synced
        ctx.trace("recovered", value=self.value)

    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        if not isinstance(msg, Incr):
            raise UnhandledMessage(self, msg)
        self.value += msg.amount
        ctx.disk.put(COUNTER_KEY, self.value)
        ctx.disk.append("ops", (msg.req_id, msg.amount))
        ctx.disk.sync()  # durable before acknowledged
        ctx.send(src, Counted(msg.req_id, self.value))


class BeaconNode(Node):
    """Sends a Beat to every peer every `period_ms`; counts the beats it hears."""

    def __init__(self, peers: list[str], period_ms: float) -> None:
        assert period_ms > 0
        self.peers = peers
        self.period_ms = period_ms
        self.seq = 0
        self.heard: dict[str, int] = {}

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer(self.period_ms, "beat")

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        self.seq += 1
        for peer in self.peers:
            if peer != ctx.node_id:
                ctx.send(peer, Beat(self.seq))
        ctx.set_timer(self.period_ms, "beat")

    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        if isinstance(msg, Beat):
            self.heard[src] = self.heard.get(src, 0) + 1
        elif isinstance(msg, AskHeard):
            ctx.send(src, Heard(msg.req_id, ctx.node_id, dict(self.heard)))
        else:
            raise UnhandledMessage(self, msg)


def echo(node_id: str) -> EchoNode:
    return EchoNode()


def counter(node_id: str) -> CounterNode:
    return CounterNode()


def beacon(node_id: str, peers: list[str], period_ms: float = 20.0) -> BeaconNode:
    return BeaconNode(peers, period_ms)
