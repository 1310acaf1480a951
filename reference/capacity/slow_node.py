"""A planted bottleneck for a rehearsal: any node, each message costing it more work.

The rehearsal is trusted because it finds a bottleneck planted in a component
and names it (`d11 rehearse --slow NODE`); the component is the node itself,
wrapped, so its protocol and state are untouched and only its work grows.
"""

from __future__ import annotations

from collections.abc import Hashable

from reference.node import Context, Message, Node, NodeId

__all__ = ["SlowNode"]


class SlowNode(Node):
    """`inner`, each message costing it `extra_ms` more work first (its replies
    leave that much later, and what arrives meanwhile queues)."""

    def __init__(self, inner: Node, extra_ms: float) -> None:
        assert extra_ms >= 0.0, extra_ms
        self.inner = inner
        self.extra_ms = extra_ms

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)  # the deployment reads its state as ever

    def on_start(self, ctx: Context) -> None:
        self.inner.on_start(ctx)

    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        ctx.work(self.extra_ms)
        self.inner.on_message(ctx, src, msg)

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        self.inner.on_timer(ctx, tag)
