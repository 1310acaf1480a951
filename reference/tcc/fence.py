"""The TCC fence, exactly as Seata's `TCCFenceHandler` does it.

A participant in a TCC transaction faces three network pathologies, and one
table answers all three. Every branch has at most one fence row,
`(xid, branch_id) -> status`, written in the *same local transaction* as the
business action it guards:

- idempotence: confirm or cancel delivered twice acts once. The second
  finds the row already COMMITTED / ROLLBACKED and just says "done".
- empty rollback: a cancel for a branch whose try never arrived (it was
  lost, or is still in flight). There is nothing to undo; the cancel
  inserts the row as SUSPENDED and succeeds.
- suspension (a late try): the try that was overtaken by its own cancel
  arrives at last. Its insert of the TRIED row hits the SUSPENDED row's
  primary key and fails, so the try is refused and no money is frozen
  forever for a transaction that is already over.

The whole machine is `TRANSITIONS`, one row per (status, message): what the
fence does (runs the business action, answers "done" without acting, or
refuses) and the status it leaves. `fence_prepare`, `fence_commit` and
`fence_rollback` below are written out as Seata writes them, so each rule can
be read (and, in the workshop, removed); a test plays every row of the table
on a real SQLite table and holds the functions to it, and the book's diagram
is drawn from it (`mermaid()`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

from reference.sqlstore import Txn

__all__ = [
    "FENCE_SCHEMA",
    "STATUS_COMMITTED",
    "STATUS_ROLLBACKED",
    "STATUS_SUSPENDED",
    "STATUS_TRIED",
    "TRANSITIONS",
    "FenceRefused",
    "Transition",
    "fence_commit",
    "fence_prepare",
    "fence_rollback",
    "mermaid",
]

# Seata's numbering (TCCFenceConstant).
STATUS_TRIED = 1
STATUS_COMMITTED = 2
STATUS_ROLLBACKED = 3
STATUS_SUSPENDED = 4

Status = Literal["none", "tried", "committed", "rollbacked", "suspended"]  # "none": no row yet
STATUS_NAMES: dict[int | None, Status] = {
    None: "none",
    STATUS_TRIED: "tried",
    STATUS_COMMITTED: "committed",
    STATUS_ROLLBACKED: "rollbacked",
    STATUS_SUSPENDED: "suspended",
}


class Transition(NamedTuple):
    source: Status
    message: Literal["try", "confirm", "cancel"]
    outcome: Literal["act", "done", "refuse"]  # act: run the business action once
    target: Status
    why: str


# --8<-- [start:fence-table]
TRANSITIONS: tuple[Transition, ...] = (
    Transition("none", "try", "act", "tried", "the ordinary path: freeze, and say so"),
    Transition("tried", "try", "refuse", "tried", "a duplicate try"),
    Transition("committed", "try", "refuse", "committed", "a try after its transaction"),
    Transition("rollbacked", "try", "refuse", "rollbacked", "a try after its transaction"),
    Transition("suspended", "try", "refuse", "suspended", "suspension: the late try"),
    Transition("none", "confirm", "refuse", "none", "never sent: confirm follows a try"),
    Transition("tried", "confirm", "act", "committed", "the ordinary path"),
    Transition("committed", "confirm", "done", "committed", "idempotence"),
    Transition("rollbacked", "confirm", "refuse", "rollbacked", "cancelled already"),
    Transition("suspended", "confirm", "refuse", "suspended", "cancelled already"),
    Transition("none", "cancel", "done", "suspended", "empty rollback: fence the late try"),
    Transition("tried", "cancel", "act", "rollbacked", "the ordinary path: unfreeze"),
    Transition("committed", "cancel", "refuse", "committed", "confirmed already"),
    Transition("rollbacked", "cancel", "done", "rollbacked", "idempotence"),
    Transition("suspended", "cancel", "done", "suspended", "idempotence"),
)  # fmt: skip
# --8<-- [end:fence-table]

_TABLE = {(t.source, t.message): t for t in TRANSITIONS}
assert len(_TABLE) == len(TRANSITIONS) == 15, "one row per (status, message)"


def mermaid() -> str:
    """The state diagram of `TRANSITIONS` (the rows that change the status)."""
    lines = ["stateDiagram-v2", "    [*] --> none"]
    lines += [
        f"    {t.source} --> {t.target}: {t.message}" for t in TRANSITIONS if t.source != t.target
    ]
    return "\n".join(lines)


FENCE_SCHEMA: tuple[str, ...] = (
    """CREATE TABLE tcc_fence_log (
        xid TEXT NOT NULL,
        branch_id TEXT NOT NULL,
        action_name TEXT NOT NULL,
        status INTEGER NOT NULL,
        PRIMARY KEY (xid, branch_id))""",
)

Action = Callable[[Txn], None]
"""The business side of a phase, run in the fence's transaction."""


class FenceRefused(Exception):
    """The fence said no; `reason` says why (for the reply and the book)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _status(txn: Txn, xid: str, branch_id: str) -> int | None:
    row = txn.one(
        "SELECT status FROM tcc_fence_log WHERE xid = ? AND branch_id = ?", (xid, branch_id)
    )
    return None if row is None else int(row[0])


# --8<-- [start:fence]
def fence_prepare(txn: Txn, xid: str, branch_id: str, action_name: str, try_: Action) -> None:
    """Phase 1: insert TRIED, then run the business try. A row already there
    (SUSPENDED by an earlier cancel, or a duplicate try) refuses the try."""
    if _status(txn, xid, branch_id) is not None:
        raise FenceRefused("fence-row-exists")  # anti-suspension: cancel came first
    txn.execute(
        "INSERT INTO tcc_fence_log (xid, branch_id, action_name, status) VALUES (?, ?, ?, ?)",
        (xid, branch_id, action_name, STATUS_TRIED),
    )
    try_(txn)


def fence_commit(txn: Txn, xid: str, branch_id: str, confirm: Action) -> bool:
    """Phase 2, confirm. True: committed (now or before). False: refused."""
    status = _status(txn, xid, branch_id)
    if status is None:
        raise FenceRefused("confirm-without-try")  # the coordinator never commits this
    if status == STATUS_COMMITTED:
        return True  # idempotent: confirmed already
    if status in (STATUS_ROLLBACKED, STATUS_SUSPENDED):
        return False  # cancelled already: a confirm now would be a bug upstream
    confirm(txn)
    _set(txn, xid, branch_id, STATUS_COMMITTED)
    return True


def fence_rollback(txn: Txn, xid: str, branch_id: str, action_name: str, cancel: Action) -> bool:
    """Phase 2, cancel. True: rolled back (now, before, or empty). False: refused."""
    status = _status(txn, xid, branch_id)
    if status is None:
        # --8<-- [start:empty-rollback]
        # Empty rollback: the try never ran here. Record it, so a late try is refused.
        txn.execute(
            "INSERT INTO tcc_fence_log (xid, branch_id, action_name, status) VALUES (?, ?, ?, ?)",
            (xid, branch_id, action_name, STATUS_SUSPENDED),
        )
        return True
        # --8<-- [end:empty-rollback]
    if status in (STATUS_ROLLBACKED, STATUS_SUSPENDED):
        return True  # idempotent: cancelled already
    if status == STATUS_COMMITTED:
        return False  # confirmed already: too late to cancel
    cancel(txn)
    _set(txn, xid, branch_id, STATUS_ROLLBACKED)
    return True


# --8<-- [end:fence]


def _set(txn: Txn, xid: str, branch_id: str, status: int) -> None:
    changed = txn.execute(
        "UPDATE tcc_fence_log SET status = ? WHERE xid = ? AND branch_id = ? AND status = ?",
        (status, xid, branch_id, STATUS_TRIED),
    )
    assert changed == 1, f"fence {xid}/{branch_id} left TRIED under our feet"
