"""The payment service's requests and replies.

`req_id` names one attempt on one hop (a client's retry gets a new one);
`payment_id` is chosen by the client once per payment and makes every retry
of it idempotent. `deadline_ms` is when the caller stops waiting (0: never).
"""

from __future__ import annotations

from reference.codec import Message, message
from reference.tracing.context import TraceContext

__all__ = [
    "Balances",
    "LegReply",
    "LegRequest",
    "PayReply",
    "PayRequest",
    "Payments",
    "ReadBalances",
    "ReadPayments",
    "RefundReply",
    "RefundRequest",
]


@message
class PayRequest(Message):
    req_id: str
    payment_id: str
    buyer: str
    merchant: str
    amount_cents: int
    deadline_ms: float
    trace: TraceContext | None = None  # chapter 7: trace ids and the load-test tag


@message
class PayReply(Message):
    req_id: str
    payment_id: str
    status: str  # "paid" | "declined" | "failed" (a coordinator gave up; no effect)
    reason: str
    node: str  # the store (or coordinator) that decided


@message
class RefundRequest(Message):
    req_id: str
    payment_id: str
    deadline_ms: float


@message
class RefundReply(Message):
    req_id: str
    payment_id: str
    status: str  # "refunded" | "not-found" | "not-paid" | "declined"
    node: str


@message
class ReadBalances(Message):
    req_id: str
    accounts: tuple[str, ...] | None  # None: every account
    deadline_ms: float
    trace: TraceContext | None = None  # tagged: the shadow balances, never production's


@message
class Balances(Message):
    req_id: str
    balances: dict[str, int]  # account -> balance in cents (held funds included)
    node: str


@message
class ReadPayments(Message):
    """Which payments (and transfer legs) this store holds as applied."""

    req_id: str
    deadline_ms: float


@message
class Payments(Message):
    req_id: str
    applied: tuple[str, ...]  # payment ids paid here, and TCC/naive leg ids applied here
    node: str


@message
class LegRequest(Message):
    """One side of a cross-shard transfer, the naive way: add `delta_cents`."""

    req_id: str
    leg_id: str
    account: str
    delta_cents: int  # < 0 debit, > 0 credit
    deadline_ms: float


@message
class LegReply(Message):
    req_id: str
    leg_id: str
    status: str  # "applied" | "declined"
    node: str
