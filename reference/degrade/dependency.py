"""A best-effort dependency: notifications, loyalty points, recommendations.

It does a little work per request and answers. A scenario can make it slow
(`DependencyPlan.slow`): for those windows every answer is delayed by the
extra latency, the way a dependency behind a saturated pool of its own
answers late without being busy here.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

from reference.codec import Message
from reference.degrade.messages import EffortReply, EffortRequest
from reference.node import Context, Node, NodeId

__all__ = ["BestEffortService", "DependencyPlan"]

PENDING_MAX = 50_000  # delayed answers held; beyond it, answer at once (never unbounded)


@dataclass
class DependencyPlan:
    """Shared data a scenario writes: when this dependency is slow, and by how much."""

    service_ms: float = 1.0
    slow: list[tuple[float, float, float]] = field(default_factory=list)  # (from, to, extra)
    enforce_deadline: bool = False  # answer "expired" without working on late requests

    def extra_ms(self, now_ms: float) -> float:
        return max((x for a, b, x in self.slow if a <= now_ms < b), default=0.0)


class BestEffortService(Node):
    def __init__(self, plan: DependencyPlan) -> None:
        self.plan = plan
        self.delayed = 0

    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        if not isinstance(msg, EffortRequest):
            super().on_message(ctx, src, msg)
            return
        now_ms = ctx.now_ms()
        if self.plan.enforce_deadline and msg.deadline_ms and now_ms >= msg.deadline_ms:
            ctx.send(src, EffortReply(msg.req_id, msg.path, "expired", ctx.node_id))
            return
        ctx.work(self.plan.service_ms)
        ctx.count(f"effort_{msg.path}")
        extra_ms = self.plan.extra_ms(now_ms)
        if extra_ms > 0 and self.delayed < PENDING_MAX:
            self.delayed += 1
            ctx.set_timer(extra_ms, ("answer", src, msg.req_id, msg.path))
            return
        ctx.send(src, EffortReply(msg.req_id, msg.path, "done", ctx.node_id))

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        if isinstance(tag, tuple) and tag[0] == "answer":
            _, src, req_id, path = tag
            self.delayed -= 1
            ctx.send(src, EffortReply(req_id, path, "done", ctx.node_id))
        else:
            super().on_timer(ctx, tag)
