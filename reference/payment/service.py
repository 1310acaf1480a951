"""The payment service: accounts, orders, pay, refund, balance reads.

Each function is a *procedure*: it runs inside one SQL transaction of a
`reference.sqlstore.SqlStore` and returns the reply. Money is integer cents.
A payment is idempotent by its client-chosen id: the first outcome (paid or
declined) is stored with the order, and a retry returns it unchanged, so a
client that timed out can simply ask again.

The balance a read returns is the money an account owns: its available
balance plus funds held by a pending transfer (chapter 2's TCC freezes the
buyer's money between try and confirm).

An order's status moves as `ORDER_TRANSITIONS` says, one row per (status,
request, condition): the answer the client gets and the status left behind.
`pay` and `refund` are written out step by step, and a test plays every row
of the table against them on SQLite.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, NamedTuple

from reference.payment.messages import (
    Balances,
    LegReply,
    LegRequest,
    Payments,
    PayReply,
    PayRequest,
    ReadBalances,
    ReadPayments,
    RefundReply,
    RefundRequest,
)
from reference.sqlstore import Abort, Call, Procedure, Txn
from reference.tracing.shadow import is_shadow

__all__ = ["ORDER_TRANSITIONS", "PAYMENT_PROCEDURES", "PAYMENT_SCHEMA", "open_accounts"]

OPEN_ROWS_PER_STATEMENT = 250  # rows per INSERT when opening accounts

PAYMENT_SCHEMA: tuple[str, ...] = (
    """CREATE TABLE accounts (
        id TEXT PRIMARY KEY,
        balance_cents INTEGER NOT NULL CHECK (balance_cents >= 0),
        frozen_cents INTEGER NOT NULL DEFAULT 0 CHECK (frozen_cents >= 0))""",
    """CREATE TABLE orders (
        id TEXT PRIMARY KEY,
        buyer TEXT NOT NULL,
        merchant TEXT NOT NULL,
        amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
        status TEXT NOT NULL)""",
    """CREATE TABLE legs (
        id TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        delta_cents INTEGER NOT NULL,
        status TEXT NOT NULL)""",
)


OrderStatus = Literal["none", "paid", "declined", "refunded"]  # "none": no order row yet


class OrderTransition(NamedTuple):
    source: OrderStatus
    request: Literal["pay", "refund"]
    when: str  # the condition that picks this row among the same (source, request)
    answer: str  # the reply's status
    target: OrderStatus


ORDER_TRANSITIONS: tuple[OrderTransition, ...] = (
    OrderTransition("none", "pay", "the buyer's balance covers it", "paid", "paid"),
    OrderTransition("none", "pay", "the buyer's balance is short", "declined", "declined"),
    OrderTransition("none", "pay", "an account does not exist", "declined", "none"),
    OrderTransition("paid", "pay", "a retry", "paid", "paid"),
    OrderTransition("declined", "pay", "a retry", "declined", "declined"),
    OrderTransition("refunded", "pay", "a retry", "refunded", "refunded"),
    OrderTransition("none", "refund", "no such order", "not-found", "none"),
    OrderTransition("paid", "refund", "the merchant still holds it", "refunded", "refunded"),
    OrderTransition("paid", "refund", "the merchant paid it out", "declined", "paid"),
    OrderTransition("declined", "refund", "never paid", "not-paid", "declined"),
    OrderTransition("refunded", "refund", "a retry", "refunded", "refunded"),
)  # fmt: skip


def open_accounts(txn: Txn, balances: Mapping[str, int]) -> None:
    """Create accounts with opening balances (a store's first transaction)."""
    rows = sorted(balances.items())
    assert all(b >= 0 for _, b in rows), "opening balances are never negative"
    for start in range(0, len(rows), OPEN_ROWS_PER_STATEMENT):
        chunk = rows[start : start + OPEN_ROWS_PER_STATEMENT]
        values = ", ".join("(?, ?)" for _ in chunk)
        params = [x for row in chunk for x in row]
        txn.execute(f"INSERT INTO accounts (id, balance_cents) VALUES {values}", params)


# --8<-- [start:pay]
def pay(txn: Txn, req: PayRequest, call: Call) -> PayReply:
    """Debit the buyer, credit the merchant, record the order: all or nothing."""
    assert req.amount_cents > 0, req
    first = txn.one("SELECT status FROM orders WHERE id = ?", (req.payment_id,))
    if first is not None:  # a retry: answer what we answered the first time
        return PayReply(req.req_id, req.payment_id, first[0], "duplicate", call.node_id)
    buyer = txn.one("SELECT balance_cents FROM accounts WHERE id = ?", (req.buyer,))
    merchant = txn.one("SELECT 1 FROM accounts WHERE id = ?", (req.merchant,))
    if buyer is None or merchant is None:
        raise Abort(PayReply(req.req_id, req.payment_id, "declined", "no-account", call.node_id))
    if buyer[0] < req.amount_cents:
        status, reason = "declined", "insufficient-funds"
    else:
        txn.execute(
            "UPDATE accounts SET balance_cents = balance_cents - ? WHERE id = ?",
            (req.amount_cents, req.buyer),
        )
        txn.execute(
            "UPDATE accounts SET balance_cents = balance_cents + ? WHERE id = ?",
            (req.amount_cents, req.merchant),
        )
        status, reason = "paid", ""
    # The decline is recorded too: a retry must not turn it into a payment later.
    txn.execute(
        "INSERT INTO orders (id, buyer, merchant, amount_cents, status) VALUES (?, ?, ?, ?, ?)",
        (req.payment_id, req.buyer, req.merchant, req.amount_cents, status),
    )
    return PayReply(req.req_id, req.payment_id, status, reason, call.node_id)


# --8<-- [end:pay]


# --8<-- [start:refund]
def refund(txn: Txn, req: RefundRequest, call: Call) -> RefundReply:
    """Give a paid order's money back; refunding twice is refunding once."""
    order = txn.one(
        "SELECT buyer, merchant, amount_cents, status FROM orders WHERE id = ?",
        (req.payment_id,),
    )
    if order is None:
        return RefundReply(req.req_id, req.payment_id, "not-found", call.node_id)
    buyer, merchant, amount_cents, status = order
    if status == "refunded":
        return RefundReply(req.req_id, req.payment_id, "refunded", call.node_id)
    if status != "paid":
        return RefundReply(req.req_id, req.payment_id, "not-paid", call.node_id)
    changed = txn.execute(
        "UPDATE accounts SET balance_cents = balance_cents - ? WHERE id = ? AND balance_cents >= ?",
        (amount_cents, merchant, amount_cents),
    )
    if changed == 0:  # the merchant has already paid the money out
        raise Abort(RefundReply(req.req_id, req.payment_id, "declined", call.node_id))
    txn.execute(
        "UPDATE accounts SET balance_cents = balance_cents + ? WHERE id = ?", (amount_cents, buyer)
    )
    txn.execute("UPDATE orders SET status = 'refunded' WHERE id = ?", (req.payment_id,))
    return RefundReply(req.req_id, req.payment_id, "refunded", call.node_id)


# --8<-- [end:refund]


def read_balances(txn: Txn, req: ReadBalances, call: Call) -> Balances:
    """Balances of `req.accounts` (or all): one transaction, so one instant."""
    rows = txn.query("SELECT id, balance_cents + frozen_cents FROM accounts ORDER BY id")
    wanted = None if req.accounts is None else set(req.accounts)
    # A production read never returns a shadow row, a tagged one only shadow rows
    # (chapter 7; without load-test traffic there are no shadow rows).
    shadow = req.trace is not None and req.trace.load_test
    balances = {a: b for a, b in rows if (wanted is None or a in wanted) and is_shadow(a) == shadow}
    return Balances(req.req_id, balances, call.node_id)


def read_payments(txn: Txn, req: ReadPayments, call: Call) -> Payments:
    """Ids of the payments paid here and of the transfer legs applied here."""
    paid = txn.query("SELECT id, buyer FROM orders WHERE status IN ('paid', 'refunded')")
    legs = txn.query("SELECT id, account FROM legs WHERE status = 'applied'")
    # Production's payments only: a load test's shadow orders are not production's.
    ids = [r[0] for r in paid + legs if not is_shadow(r[1])]
    applied = tuple(sorted(ids))
    return Payments(req.req_id, applied, call.node_id)


# --8<-- [start:leg]
def apply_leg(txn: Txn, req: LegRequest, call: Call) -> LegReply:
    """Add `delta_cents` to one account, once per leg id (the naive transfer's step)."""
    first = txn.one("SELECT status FROM legs WHERE id = ?", (req.leg_id,))
    if first is not None:
        return LegReply(req.req_id, req.leg_id, first[0], call.node_id)
    changed = txn.execute(
        "UPDATE accounts SET balance_cents = balance_cents + ? "
        "WHERE id = ? AND balance_cents + ? >= 0",
        (req.delta_cents, req.account, req.delta_cents),
    )
    status = "applied" if changed == 1 else "declined"
    txn.execute(
        "INSERT INTO legs (id, account, delta_cents, status) VALUES (?, ?, ?, ?)",
        (req.leg_id, req.account, req.delta_cents, status),
    )
    return LegReply(req.req_id, req.leg_id, status, call.node_id)


# --8<-- [end:leg]


PAYMENT_PROCEDURES: dict[type, Procedure] = {
    PayRequest: pay,
    RefundRequest: refund,
    ReadBalances: read_balances,
    ReadPayments: read_payments,
    LegRequest: apply_leg,
}
