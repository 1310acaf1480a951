"""The control plane: rule and switch changes pushed to every sidecar until acknowledged.

An operator (a `d11` command, a drill, the TUI) changes the desired state
in the shared `ControlDesk`: a new flow rule count for the critical
resource, a best-effort path pinned on or off, or handed back to the plan.
Each change is a new version. The `ControlPlane` node pushes the newest
version to every sidecar and re-sends it, with a doubling pause, to each one
that has not acknowledged it (chapter 3's routing rules travel the same
way), so a lost push or a sidecar that was down does not keep an old rule.
A sidecar applies a version newer than its own, records the change in the
history, and always acknowledges.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from reference.codec import Message
from reference.degrade.messages import ControlAck, ControlUpdate
from reference.node import Context, Node, NodeId

__all__ = ["ControlDesk", "ControlPlane"]

RESEND_FIRST_MS = 100.0
RESEND_MAX_MS = 1_600.0
TICK_MS = 50.0  # how often the plane looks at the desk
_TICK = "tick"


@dataclass
class ControlDesk:
    """Shared data an operator writes: the desired controls, one version per change."""

    version: int = 0
    flow_qps: float = -1.0
    forced: dict[str, str] = field(default_factory=dict)
    record: Callable[[dict[str, Any]], None] | None = None

    def change(self, now_ms: float, *, flow_qps: float | None = None,
               switch: tuple[str, str] | None = None) -> int:  # fmt: skip
        """One operator change; returns its version. Recorded in the history."""
        if flow_qps is not None:
            assert flow_qps >= 0, flow_qps
            self.flow_qps = flow_qps
        if switch is not None:
            path, state = switch
            assert state in ("on", "off", "plan"), state
            self.forced[path] = state
        self.version += 1
        if self.record is not None:
            value = {"version": self.version, "flow_qps": flow_qps, "switch": switch}
            self.record({"type": "info", "process": "nemesis", "f": "degrade:change",
                         "value": value, "time_ms": now_ms})  # fmt: skip
        return self.version

    def update(self) -> ControlUpdate:
        return ControlUpdate(self.version, self.flow_qps, tuple(sorted(self.forced.items())))


class ControlPlane(Node):
    def __init__(self, desk: ControlDesk, targets: tuple[NodeId, ...]) -> None:
        assert targets, "a control plane pushes to at least one sidecar"
        self.desk = desk
        self.targets = targets
        self.acked: dict[NodeId, int] = {t: 0 for t in targets}
        self.next_ms: dict[NodeId, float] = {t: 0.0 for t in targets}
        self.pause_ms: dict[NodeId, float] = {t: RESEND_FIRST_MS for t in targets}
        self.pushed: dict[NodeId, int] = {t: 0 for t in targets}

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer(TICK_MS, _TICK)

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        if tag != _TICK:
            super().on_timer(ctx, tag)
            return
        now_ms = ctx.now_ms()
        version = self.desk.version
        for t in self.targets:
            if self.acked[t] >= version:
                continue
            if self.pushed[t] < version:  # a new change: push at once, pause afresh
                self.pushed[t] = version
                self.pause_ms[t] = RESEND_FIRST_MS
                self.next_ms[t] = now_ms
            if now_ms >= self.next_ms[t]:
                ctx.send(t, self.desk.update())
                self.next_ms[t] = now_ms + self.pause_ms[t]
                self.pause_ms[t] = min(2 * self.pause_ms[t], RESEND_MAX_MS)
        ctx.set_timer(TICK_MS, _TICK)

    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        if isinstance(msg, ControlAck):
            if src in self.acked:
                self.acked[src] = max(self.acked[src], msg.version)
        else:
            super().on_message(ctx, src, msg)
