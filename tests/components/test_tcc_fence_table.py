"""The TCC fence follows its table: every (status, message) row played on a real SQLite table."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from reference.sqlstore import Txn
from reference.tcc import fence
from reference.tcc.fence import (
    FENCE_SCHEMA,
    STATUS_NAMES,
    TRANSITIONS,
    FenceRefused,
    Transition,
    mermaid,
)

PAGE = Path(__file__).resolve().parents[2] / "book" / "docs" / "ch2-sharding.md"
XID, BRANCH = "x1", "b1"


def _table_at(status: str) -> sqlite3.Connection:
    """A fence table whose one branch is at `status` ("none": no row)."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    for statement in FENCE_SCHEMA:
        conn.execute(statement)
    code = {name: code for code, name in STATUS_NAMES.items()}[status]
    if code is not None:
        conn.execute("INSERT INTO tcc_fence_log VALUES (?, ?, ?, ?)", (XID, BRANCH, "debit", code))
    return conn


def _play(conn: sqlite3.Connection, message: str) -> tuple[str, int]:
    """Send `message` through the fence in one transaction, as the store does:
    (what the fence did, how many times the business action ran)."""
    ran: list[str] = []

    def action(_txn: Txn) -> None:
        ran.append(message)

    txn = Txn(conn)
    try:
        if message == "try":
            fence.fence_prepare(txn, XID, BRANCH, "debit", action)
            ok = True
        elif message == "confirm":
            ok = fence.fence_commit(txn, XID, BRANCH, action)
        else:
            ok = fence.fence_rollback(txn, XID, BRANCH, "debit", action)
    except FenceRefused:
        ok = False
    if ok:
        txn.commit()
    else:
        txn.rollback()  # a refusal aborts the store's transaction, the action's writes too
        ran.clear()
    return ("act" if ran else "done") if ok else "refuse", len(ran)


def _status(conn: sqlite3.Connection) -> str:
    row = conn.execute("SELECT status FROM tcc_fence_log").fetchone()
    return STATUS_NAMES[None if row is None else int(row[0])]


@pytest.mark.parametrize("row", TRANSITIONS, ids=lambda t: f"{t.source}-{t.message}")
def test_the_fence_does_what_its_row_says(row: Transition) -> None:
    conn = _table_at(row.source)
    outcome, runs = _play(conn, row.message)
    assert (outcome, _status(conn)) == (row.outcome, row.target), row.why
    assert runs == (1 if row.outcome == "act" else 0)


def test_the_table_covers_every_status_and_message() -> None:
    pairs = {(t.source, t.message) for t in TRANSITIONS}
    statuses = set(STATUS_NAMES.values())
    assert pairs == {(s, m) for s in statuses for m in ("try", "confirm", "cancel")}


def test_a_fence_that_lost_a_rule_breaks_its_row(monkeypatch: pytest.MonkeyPatch) -> None:
    # The workshop's bug: confirm no longer says "done" to a duplicate.
    def forgetful_commit(txn: Txn, xid: str, branch_id: str, confirm: fence.Action) -> bool:
        confirm(txn)
        return True

    monkeypatch.setattr(fence, "fence_commit", forgetful_commit)
    row = next(t for t in TRANSITIONS if (t.source, t.message) == ("committed", "confirm"))
    assert _play(_table_at(row.source), row.message) != (row.outcome, 0)


def test_the_book_draws_the_fence_from_its_table() -> None:
    text = PAGE.read_text(encoding="utf-8")
    blocks = re.findall(r"^```mermaid\n(.*?)^```", text, re.M | re.S)
    assert len(blocks) == 1, "chapter 2 shows one fence diagram"
    assert blocks[0].strip() == mermaid().strip()
