"""Small nodes and messages the platform tests drive the runtime with."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from reference.codec import message
from reference.net.sim import NetConfig
from reference.net.topology import Topology
from reference.node import Context, Node, NodeId
from reference.runtime.sim import DiskConfig, SimRuntime


@message(name="platform_test.Note")
class Note:
    seq: int
    body: str = ""


def two_city_topology() -> Topology:
    """a, b in hz-1; c in hz-2; d, e in sh-1."""
    return Topology.build(
        {
            "hangzhou": {"hz-1": ["a", "b"], "hz-2": ["c"]},
            "shanghai": {"sh-1": ["d", "e"]},
        }
    )


class Recorder(Node):
    """Records every message and timer with the node's clock; does nothing else."""

    def __init__(self, node_id: NodeId) -> None:
        self.node_id = node_id
        self.log: list[tuple[str, Any, Any, float]] = []  # (kind, src/tag, msg, now_ms)
        self.ctx: Context | None = None

    def on_start(self, ctx: Context) -> None:
        self.ctx = ctx
        self.log.append(("start", None, None, ctx.now_ms()))

    def on_message(self, ctx: Context, src: NodeId, msg: Any) -> None:
        self.log.append(("msg", src, msg, ctx.now_ms()))

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        self.log.append(("timer", tag, None, ctx.now_ms()))

    def messages(self) -> list[tuple[str, Any]]:
        return [(src, msg) for kind, src, msg, _ in self.log if kind == "msg"]


def runtime(
    seed: int = 1,
    net: NetConfig | None = None,
    disk: DiskConfig | None = None,
    factory: Any = Recorder,
    topology: Topology | None = None,
) -> SimRuntime:
    topo = topology or two_city_topology()
    rt = SimRuntime(topology=topo, seed=seed, net=net, disk=disk, strict=True)
    for node_id in topo.nodes():
        rt.add_node(node_id, factory)
    rt.start()
    return rt


def send(rt: SimRuntime, src: NodeId, dst: NodeId, msg: Any) -> None:
    """Make `src` send, from outside a handler (as a harness would)."""
    ctx = rt.context(src)
    assert ctx is not None, f"{src} is down"
    ctx.send(dst, msg)


def recorder(rt: SimRuntime, node_id: NodeId) -> Recorder:
    node = rt.node(node_id)
    assert isinstance(node, Recorder)
    return node
