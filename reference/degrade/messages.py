"""Messages of the best-effort dependencies (notifications, loyalty, recommendations)."""

from __future__ import annotations

from reference.codec import message

__all__ = ["EffortReply", "EffortRequest"]


@message
class EffortRequest:
    req_id: str
    path: str  # "notify" | "loyalty" | "recommend"
    payment_id: str
    deadline_ms: float  # 0: none


@message
class EffortReply:
    req_id: str
    path: str
    status: str  # "done" | "expired"
    node: str
