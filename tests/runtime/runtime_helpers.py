"""A recording client node and a polling helper, shared by the runtime tests."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from typing import Any

from reference.codec import Message
from reference.node import Context, Node, NodeId
from reference.runtime.examples import AskHeard, Counted, Heard, Incr, beacon


class Recorder(Node):
    """A client: whatever it receives, it keeps, in order."""

    def __init__(self) -> None:
        self.inbox: list[tuple[NodeId, Message]] = []

    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        self.inbox.append((src, msg))

    def replies(self, kind: type) -> list[Any]:
        return [msg for _, msg in self.inbox if isinstance(msg, kind)]


def recorder(node_id: str) -> Recorder:
    return Recorder()


class Divider(Node):
    """A node with a bug: it answers an `Incr` with 100 // amount, so amount 0 crashes it."""

    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        if not isinstance(msg, Incr):
            super().on_message(ctx, src, msg)  # refused: UnhandledMessage
        ctx.send(src, Counted(msg.req_id, 100 // msg.amount))


def divider(node_id: str) -> Divider:
    return Divider()


def wait_for(rt: Any, predicate: Callable[[], bool], timeout_ms: float = 5_000.0) -> bool:
    """Run the runtime in short slices until `predicate()` holds or time runs out."""
    deadline_ms = rt.now_ms + timeout_ms
    while not predicate():
        if rt.now_ms >= deadline_ms:
            return False
        rt.run_for(10.0)
    return True


def send_from(rt: Any, client: str, dst: str, msg: Message) -> None:
    """Have the local node `client` send `msg`, from the runtime's loop."""

    def go() -> None:
        ctx = rt.context(client)
        assert ctx is not None, f"{client} is not up"
        ctx.send(dst, msg)

    rt.call_after(0.0, go)


def heard(
    rt: Any, client: str, nodes: list[str], timeout_ms: float = 5_000.0
) -> dict[str, dict[str, int]]:
    """Ask every beacon in `nodes` what it has heard; {node: {sender: beats}}."""
    box = rt.node(client)
    start = len(box.inbox)
    req_id = start
    for node in nodes:
        send_from(rt, client, node, AskHeard(req_id))
    got = lambda: [m for _, m in box.inbox[start:] if isinstance(m, Heard)]  # noqa: E731
    assert wait_for(rt, lambda: len(got()) == len(nodes), timeout_ms), "beacons did not answer"
    return {m.node: dict(m.counts) for m in got()}


def start_beacons(nodes: list[str], seed: int = 7) -> Any:
    """A started ProcessRuntime: a beacon process per node (every 10 ms) and a
    local `client` recorder. The caller closes it (use it as a context manager)."""
    from reference.runtime.process import ProcessRuntime

    rt = ProcessRuntime(seed=seed)
    for node in nodes:
        rt.add_node(node, functools.partial(beacon, peers=nodes, period_ms=10.0))
    rt.add_local_node("client", recorder)
    rt.start()
    return rt


def link_counts(rt: Any, nodes: list[str]) -> Counter[str]:
    """Every counter of the nodes' outgoing links, summed over nodes and links
    (0 for a counter no link has yet: a fresh process has links once it sends)."""
    total: Counter[str] = Counter()
    for node in nodes:
        for counts in rt.stats(node)["links"].values():
            total.update(counts)
    return total
