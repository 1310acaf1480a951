"""TCC messages between the coordinator (a gateway) and the participants (shards)."""

from __future__ import annotations

from reference.codec import Message, message
from reference.tracing.context import TraceContext

__all__ = ["TccPhase2", "TccPhase2Reply", "TccTry", "TccTryReply"]


@message
class TccTry(Message):
    req_id: str
    xid: str  # the global transaction (= the payment id)
    branch_id: str  # "debit" | "credit": one branch per participant action
    action: str  # the business action: "debit" or "credit"
    account: str
    amount_cents: int
    deadline_ms: float
    trace: TraceContext | None = None  # chapter 7: the payment's trace and load-test tag


@message
class TccTryReply(Message):
    req_id: str
    xid: str
    branch_id: str
    ok: bool
    reason: str
    node: str


@message
class TccPhase2(Message):
    """Confirm (commit=True) or cancel (commit=False) one branch. Retried until acked."""

    req_id: str
    xid: str
    branch_id: str
    action: str
    account: str
    amount_cents: int
    commit: bool
    trace: TraceContext | None = None  # chapter 7: the payment's trace and load-test tag


@message
class TccPhase2Reply(Message):
    req_id: str
    xid: str
    branch_id: str
    commit: bool
    ok: bool  # False: the fence refused (e.g. confirm after cancel); do not retry
    reason: str
    node: str
