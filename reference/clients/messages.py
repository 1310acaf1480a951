"""What a client asks at the end of a run about the payments it never heard back about.

A payment whose every attempt timed out may have been applied, or not, or
may still be applied later by a retry sitting in some queue. The ledger's
idempotent transfer ids make the question exact: `LookupPayments` asks the
ledger, through its log, about each payment id, and the ledger either holds
the transfer ("applied") or fences the id so it can never be applied
("absent"). The client records the answer in the history, so a checker
resolves every such payment from the history alone (Jepsen's and
TigerBeetle's final lookups by id).
"""

from __future__ import annotations

from reference.codec import Message, message

__all__ = ["ABSENT", "APPLIED", "LookupPayments", "PaymentsFound"]

APPLIED = "applied"  # the ledger holds the payment's transfer: it took effect, once
ABSENT = "absent"  # it did not, and is fenced: it never will


@message(name="clients.LookupPayments")
class LookupPayments(Message):
    req_id: str
    payments: tuple[tuple[str, str], ...]  # (payment id, buyer account), buyer for routing
    deadline_ms: float  # when the client stops waiting (0: never)


@message(name="clients.PaymentsFound")
class PaymentsFound(Message):
    req_id: str
    outcomes: tuple[tuple[str, str], ...]  # (payment id, APPLIED | ABSENT), one per payment
    node: str
