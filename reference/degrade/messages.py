"""Messages of the best-effort dependencies (notifications, loyalty, recommendations)."""

from __future__ import annotations

from reference.codec import Message, message

__all__ = ["EffortReply", "EffortRequest"]


@message
class EffortRequest(Message):
    req_id: str
    path: str  # "notify" | "loyalty" | "recommend"
    payment_id: str
    deadline_ms: float  # 0: none


@message
class EffortReply(Message):
    req_id: str
    path: str
    status: str  # "done" | "expired"
    node: str


@message
class ControlUpdate(Message):
    """Control plane -> sidecar: the rules and switches to hold from `version` on."""

    version: int
    flow_qps: float  # the critical resource's flow rule count (< 0: leave it as it is)
    forced: tuple[tuple[str, str], ...]  # (best-effort path, "on" | "off" | "plan")


@message
class ControlAck(Message):
    """Sidecar -> control plane: I hold `version` (or newer); stop re-sending."""

    version: int
    node: str
