"""A small world to watch: a replicated counter across two cities.

Five nodes each count their own increments and gossip what they know (a
grow-only counter, the simplest CRDT: the total is the sum of each node's own
count, and merging two views takes the maximum per node). Every node syncs
its own count to disk before gossiping it, so a crash loses nothing it told
anyone. Each node also tracks which peers it has heard from lately, and
traces when one goes silent and when it is heard again.

The scenario `run_demo(seed)` drives: start; crash a Shanghai node and
restart it (it recovers its count from disk); cut Hangzhou from Shanghai;
heal; let gossip converge. `d11 sim demo` prints the timeline and a summary.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from reference.codec import Message, message
from reference.net.sim import LinkStats, NetConfig
from reference.net.topology import Topology
from reference.node import Context, Node, NodeId
from reference.runtime.sim import DiskConfig, SimRuntime
from reference.telemetry import TraceEvent

__all__ = ["CounterNode", "DemoResult", "Gossip", "demo_topology", "run_demo"]

TICK_MS = 50.0  # a node increments and gossips this often
SILENT_MS = 200.0  # a peer unheard for this long is reported silent


@message(name="demo.Gossip")
class Gossip(Message):
    """A node's view of every node's own count."""

    counts: tuple[tuple[str, int], ...]


class CounterNode(Node):
    """One replica of a grow-only counter (see the module docstring)."""

    def __init__(self, node_id: NodeId, peers: list[NodeId], count_until_ms: float) -> None:
        self.node_id = node_id
        self.count_until_ms = count_until_ms  # after this, only gossip (to converge)
        self.peers = [p for p in peers if p != node_id]
        self.counts: dict[str, int] = {}
        self.last_heard_ms: dict[str, float] = {}
        self.silent: set[str] = set()

    def on_start(self, ctx: Context) -> None:
        own = ctx.disk.get("own", 0)  # recovery: the only state that survived
        self.counts[self.node_id] = own
        if own:
            ctx.trace("recovered", count=own)
        now_ms = ctx.now_ms()
        self.last_heard_ms = {p: now_ms for p in self.peers}
        ctx.set_timer(ctx.random.uniform(0, TICK_MS), "tick")

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        assert tag == "tick", tag
        if ctx.now_ms() < self.count_until_ms:
            own = self.counts[self.node_id] + 1
            self.counts[self.node_id] = own
            ctx.disk.put("own", own)
            ctx.disk.sync()  # durable before anyone hears of it
            ctx.count("increments")
        state = Gossip(tuple(sorted(self.counts.items())))
        for peer in self.peers:
            ctx.send(peer, state)
        self._check_silence(ctx)
        ctx.set_timer(TICK_MS, "tick")

    def on_message(self, ctx: Context, src: NodeId, msg: Any) -> None:
        if not isinstance(msg, Gossip):
            super().on_message(ctx, src, msg)
        ctx.count("gossip_received")
        for node, count in msg.counts:
            if count > self.counts.get(node, 0):
                self.counts[node] = count
        self.last_heard_ms[src] = ctx.now_ms()
        if src in self.silent:
            self.silent.discard(src)
            ctx.trace("heard_again", peer=src)

    def _check_silence(self, ctx: Context) -> None:
        now_ms = ctx.now_ms()
        quiet = {p for p, t in self.last_heard_ms.items() if now_ms - t > SILENT_MS}
        newly = sorted(quiet - self.silent)
        if newly:
            ctx.trace("silent", peers=newly)
        self.silent |= quiet

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def demo_topology() -> Topology:
    return Topology.build(
        {
            "hangzhou": {"hz-1": ["hz-a", "hz-b"], "hz-2": ["hz-c"]},
            "shanghai": {"sh-1": ["sh-d", "sh-e"]},
        }
    )


@dataclass
class DemoResult:
    seed: int
    events: list[TraceEvent]  # the timeline: runtime faults and node traces
    totals: dict[str, int]  # each node's view of the counter at the end
    by_class: dict[str, LinkStats]
    events_processed: int
    digest: str
    end_ms: float


def run_demo(seed: int = 7, end_ms: float = 4_000.0) -> DemoResult:
    """Run the two-city scenario; see the module docstring."""
    topo = demo_topology()
    nodes = topo.nodes()
    rt = SimRuntime(topo, seed=seed, net=NetConfig(loss=0.01), disk=DiskConfig())
    for node_id in nodes:
        rt.add_node(node_id, lambda nid: CounterNode(nid, nodes, count_until_ms=end_ms - 500))
    # The fault schedule, at fixed times so the story reads the same each run.
    rt.call_at(600.0, lambda: rt.crash("sh-d"))
    rt.call_at(1_200.0, lambda: rt.restart("sh-d"))
    rt.call_at(1_800.0, lambda: rt.net.partition([["hangzhou"], ["shanghai"]]))
    rt.call_at(2_800.0, rt.net.heal)

    def look(label: str) -> None:  # the harness reads every node's view of the total
        views = {n: node.total for n in nodes if isinstance(node := rt.node(n), CounterNode)}
        rt.telemetry.trace("", "views", at=label, totals=views)

    rt.call_at(1_750.0, lambda: look("before the partition"))
    rt.call_at(2_750.0, lambda: look("inside the partition"))
    rt.call_at(end_ms, lambda: look("at the end"))
    rt.start()
    rt.run_until(end_ms)
    totals = {}
    for node_id in nodes:
        node = rt.node(node_id)
        assert isinstance(node, CounterNode)
        totals[node_id] = node.total
    return DemoResult(
        seed=seed,
        events=list(rt.telemetry.events),
        totals=totals,
        by_class=rt.net.stats_by_class(),
        events_processed=rt.events_processed,
        digest=rt.trace_digest(),
        end_ms=rt.now_ms,
    )
