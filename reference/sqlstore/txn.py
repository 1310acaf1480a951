"""One SQL transaction, recorded: the statements that changed the database.

A procedure (pay, refund, a TCC try) runs against a `Txn`. Reads go straight
to SQLite; writes go to SQLite *and* into `self.writes`, the transaction's
redo record. The store appends that record to its commit log on disk and
syncs it before replying, so a restart can rebuild the database by replaying
the log, and a standby can follow by applying the same records.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

__all__ = ["Abort", "Txn", "WriteRecord"]

SqlParam = int | str | None
WriteRecord = tuple[str, tuple[SqlParam, ...]]
"""(sql, params): one write statement, replayable on any copy of the schema."""

WRITES_PER_TXN_MAX = 64  # a payment is a handful of rows; more is a bug


class Abort(Exception):
    """Raised by a procedure to roll its transaction back and answer `reply`."""

    def __init__(self, reply: Any) -> None:
        super().__init__(repr(reply))
        self.reply = reply


class Txn:
    """A window on the store's connection for the length of one transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        assert conn.in_transaction is False, "a transaction is already open"
        self._conn = conn
        self.writes: list[WriteRecord] = []
        self.statements = 0  # reads and writes: the service-time model charges them
        conn.execute("BEGIN IMMEDIATE")

    def query(self, sql: str, params: Sequence[SqlParam] = ()) -> list[tuple[Any, ...]]:
        self.statements += 1
        return self._conn.execute(sql, tuple(params)).fetchall()

    def one(self, sql: str, params: Sequence[SqlParam] = ()) -> tuple[Any, ...] | None:
        rows = self.query(sql, params)
        assert len(rows) <= 1, f"{sql!r} returned {len(rows)} rows"
        return rows[0] if rows else None

    def execute(self, sql: str, params: Sequence[SqlParam] = ()) -> int:
        """Run one write; returns the number of rows it changed."""
        self.statements += 1
        assert len(self.writes) < WRITES_PER_TXN_MAX, "runaway transaction"
        cursor = self._conn.execute(sql, tuple(params))
        self.writes.append((sql, tuple(params)))
        return cursor.rowcount

    def commit(self) -> list[WriteRecord]:
        self._conn.execute("COMMIT")
        return self.writes

    def rollback(self) -> None:
        self._conn.execute("ROLLBACK")
        self.writes = []


def apply_writes(conn: sqlite3.Connection, writes: Sequence[WriteRecord]) -> None:
    """Replay one committed transaction's writes (recovery, or a standby following)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for sql, params in writes:
            conn.execute(sql, tuple(params))
    except sqlite3.Error:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
