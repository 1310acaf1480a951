"""An order's status follows its table: every row played against `pay` and `refund` on SQLite."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from reference.payment.messages import PayRequest, RefundRequest
from reference.payment.service import (
    ORDER_TRANSITIONS,
    PAYMENT_PROCEDURES,
    PAYMENT_SCHEMA,
    OrderTransition,
    open_accounts,
)
from reference.sqlstore import Abort, Call, Txn

AMOUNT_CENTS = 300
# The condition each row names, as the accounts it starts from.
OPENING_CENTS: dict[str, dict[str, int]] = {
    "the buyer's balance covers it": {"u1": 1_000, "m1": 0},
    "the buyer's balance is short": {"u1": 100, "m1": 0},
    "an account does not exist": {"u1": 1_000},
    "a retry": {"u1": 1_000, "m1": 1_000},
    "no such order": {"u1": 1_000, "m1": 1_000},
    "the merchant still holds it": {"u1": 1_000, "m1": 1_000},
    "the merchant paid it out": {"u1": 1_000, "m1": 0},
    "never paid": {"u1": 1_000, "m1": 1_000},
}


def _store(row: OrderTransition) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    for statement in PAYMENT_SCHEMA:
        conn.execute(statement)
    txn = Txn(conn)
    open_accounts(txn, OPENING_CENTS[row.when])
    if row.source != "none":
        txn.execute(
            "INSERT INTO orders (id, buyer, merchant, amount_cents, status) VALUES (?, ?, ?, ?, ?)",
            ("p1", "u1", "m1", AMOUNT_CENTS, row.source),
        )
    txn.commit()
    return conn


def _ask(conn: sqlite3.Connection, request: str) -> Any:
    """One request through its procedure, in one transaction, as the store runs it."""
    if request == "pay":
        msg: Any = PayRequest("r1", "p1", "u1", "m1", AMOUNT_CENTS, 0.0)
    else:
        msg = RefundRequest("r1", "p1", 0.0)
    txn = Txn(conn)
    try:
        reply = PAYMENT_PROCEDURES[type(msg)](txn, msg, Call("shard", 0.0))
    except Abort as abort:
        txn.rollback()
        return abort.reply
    txn.commit()
    return reply


def _status(conn: sqlite3.Connection) -> str:
    row = conn.execute("SELECT status FROM orders WHERE id = 'p1'").fetchone()
    return "none" if row is None else str(row[0])


@pytest.mark.parametrize("row", ORDER_TRANSITIONS, ids=lambda t: f"{t.source}-{t.request}")
def test_an_order_moves_as_its_row_says(row: OrderTransition) -> None:
    conn = _store(row)
    reply = _ask(conn, row.request)
    assert (reply.status, _status(conn)) == (row.answer, row.target), row.when


def test_the_table_covers_every_status_and_request() -> None:
    pairs = {(t.source, t.request) for t in ORDER_TRANSITIONS}
    statuses = ("none", "paid", "declined", "refunded")
    assert pairs == {(s, r) for s in statuses for r in ("pay", "refund")}
    assert set(OPENING_CENTS) == {t.when for t in ORDER_TRANSITIONS}
