"""A SQL store node: SQLite with real transactions, a commit log, a capacity.

Each request that names a procedure runs as one SQLite transaction. What the
transaction wrote (its redo record, see `txn.py`) is appended to the commit
log on `ctx.disk` and synced *before* the reply leaves: an acknowledged
write survives a crash. On restart the node opens an empty database and
replays the log, which is how every database with a write-ahead log recovers.

Capacity comes from `ServiceTime`: each transaction keeps the node busy
(`ctx.work`) in proportion to the statements it ran, plus the disk sync.

Asynchronous replication (chapter 3): a primary with a `standby` ships its
log records on a timer, without waiting for them to arrive; a reply to the
client never waits for the standby. Whatever was committed but not yet
shipped when the primary's city dies is gone from the standby: the recovery
point objective is the shipping lag, not zero. A standby applies the records
in log order and answers nothing else until it is promoted.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reference.codec import Message
from reference.node import Context, Node, NodeId
from reference.sqlstore.messages import (
    Promote,
    PromoteAck,
    ReplicateAck,
    ReplicateBatch,
    StoreRejected,
)
from reference.sqlstore.service_time import ServiceTime
from reference.sqlstore.txn import Abort, Txn, apply_writes
from reference.tracing.context import emit_span
from reference.tracing.shadow import is_shadow, shadow_request, written_accounts

__all__ = ["Call", "Procedure", "SqlStore", "StoreConfig"]

COMMIT_LOG = "commits"
SHIP_BATCH_MAX = 256  # log records per ReplicateBatch
_SHIP_TIMER = "ship"


@dataclass(frozen=True)
class Call:
    """What a procedure may know about the call besides its request."""

    node_id: NodeId
    now_ms: float


Procedure = Callable[[Txn, Any, Call], Message]
"""Runs inside one transaction; returns the reply, or raises Abort(reply)."""


@dataclass(frozen=True)
class StoreConfig:
    schema: Sequence[str]  # CREATE TABLE statements
    procedures: Mapping[type, Procedure]  # request type -> procedure
    init: Callable[[Txn], None] | None = None  # the first transaction of a fresh primary
    service: ServiceTime = field(default_factory=ServiceTime)
    db_path: str = ":memory:"  # a file under the process runtime
    standby: NodeId | None = None  # ship the log there (asynchronous replication)
    is_standby: bool = False  # start as a standby (until promoted)
    ship_interval_ms: float = 20.0
    shed_expired: bool = False  # reject requests whose deadline has passed (cheaply)
    traced: bool = False  # chapter 7: a `span` trace event for every request served


class SqlStore(Node):
    """See the module docstring. One instance per store node (and per restart)."""

    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        self.conn: sqlite3.Connection | None = None
        self.primary = not config.is_standby
        self.shipped_next = 0  # first log index the standby has not acknowledged

    # -- recovery -------------------------------------------------------------
    def on_start(self, ctx: Context) -> None:
        self.conn = sqlite3.connect(self.config.db_path, isolation_level=None)
        self._reset_schema(self.conn)
        role = ctx.disk.get("role")
        if role is not None:
            self.primary = role == "primary"  # a promoted standby stays promoted
        replayed = 0
        for _index, writes in ctx.disk.read_log(COMMIT_LOG):
            apply_writes(self.conn, writes)
            replayed += 1
        ctx.count("replayed_txns", replayed)
        if replayed == 0 and self.primary and self.config.init is not None:
            txn = Txn(self.conn)
            self.config.init(txn)
            self._commit(ctx, txn)
        if self.config.standby is not None and self.primary:
            ctx.set_timer(self.config.ship_interval_ms, _SHIP_TIMER)

    def _reset_schema(self, conn: sqlite3.Connection) -> None:
        # The commit log is the truth; a database file is only a cache of it.
        tables = conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
        for (name,) in tables:
            conn.execute(f'DROP TABLE "{name}"')
        for statement in self.config.schema:
            conn.execute(statement)

    # -- requests -------------------------------------------------------------
    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        procedure = self.config.procedures.get(type(msg))
        if procedure is not None:
            self._serve(ctx, src, msg, procedure)
        elif isinstance(msg, ReplicateBatch):
            self._follow(ctx, src, msg)
        elif isinstance(msg, ReplicateAck):
            self.shipped_next = max(self.shipped_next, msg.next_index)
        elif isinstance(msg, Promote):
            self._promote(ctx, src, msg)
        else:
            super().on_message(ctx, src, msg)

    # --8<-- [start:store-serve]
    def _serve(self, ctx: Context, src: NodeId, msg: Any, procedure: Procedure) -> None:
        service = self.config.service
        if not self.primary:
            ctx.work(service.reject_ms)
            ctx.send(src, StoreRejected(msg.req_id, "not-primary", ctx.node_id))
            return
        deadline_ms = getattr(msg, "deadline_ms", 0.0)
        if self.config.shed_expired and deadline_ms and ctx.now_ms() > deadline_ms:
            # Its client has given up: doing the work now would only delay the next one.
            ctx.count("expired")
            ctx.work(service.reject_ms)
            ctx.send(src, StoreRejected(msg.req_id, "expired", ctx.node_id))
            return
        assert self.conn is not None
        # A load-test request works on shadow rows: the data layer decides (chapter 7).
        msg = shadow_request(msg)
        txn = Txn(self.conn)
        try:
            reply = procedure(txn, msg, Call(ctx.node_id, ctx.now_ms()))
        except Abort as abort:
            txn.rollback()
            reply = abort.reply
        if self.config.traced:
            self._span(ctx, msg, reply, txn)
        # The node is busy for what the transaction cost: this is its capacity.
        ctx.work(service.cost_ms(txn.statements))
        if self.conn.in_transaction:
            self._commit(ctx, txn)  # appends the redo record and syncs
        ctx.count("txns")
        ctx.send(src, reply)  # only after the sync: an acknowledged write is durable

    # --8<-- [end:store-serve]

    def _span(self, ctx: Context, msg: Any, reply: Any, txn: Txn) -> None:
        balances = getattr(reply, "balances", None)
        shadow_rows = sum(1 for a in balances if is_shadow(a)) if balances else 0
        emit_span(
            ctx,
            getattr(msg, "trace", None),
            type(msg).__name__,
            payment=getattr(msg, "payment_id", None) or getattr(msg, "xid", ""),
            writes=written_accounts(txn.writes),
            shadow_rows_read=shadow_rows,
            outcome=getattr(reply, "status", ""),
        )

    def _commit(self, ctx: Context, txn: Txn) -> None:
        # --8<-- [start:commit-durable]
        writes = txn.commit()
        if writes:
            ctx.disk.append(COMMIT_LOG, tuple(writes))
            ctx.disk.sync()
        # --8<-- [end:commit-durable]

    # -- asynchronous replication ----------------------------------------------
    # --8<-- [start:async-replication]
    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        if tag != _SHIP_TIMER:
            super().on_timer(ctx, tag)
            return
        standby = self.config.standby
        assert standby is not None
        _first, end = ctx.disk.log_bounds(COMMIT_LOG)
        if self.primary and self.shipped_next < end:
            # Fire and forget: the client already has its answer. Whatever is
            # committed here but not yet on the standby is lost if we die now.
            records = ctx.disk.read_log(COMMIT_LOG, self.shipped_next)[:SHIP_BATCH_MAX]
            batch = tuple(writes for _index, writes in records)
            ctx.send(standby, ReplicateBatch(self.shipped_next, batch))
        if self.primary:
            ctx.set_timer(self.config.ship_interval_ms, _SHIP_TIMER)

    def _follow(self, ctx: Context, src: NodeId, msg: ReplicateBatch) -> None:
        assert self.conn is not None
        if self.primary:
            return  # promoted: the old primary's stream no longer applies
        _first, next_index = ctx.disk.log_bounds(COMMIT_LOG)
        skip = next_index - msg.start_index
        if skip < 0:
            ctx.send(src, ReplicateAck(next_index))  # a gap: ask again from here
            return
        fresh = msg.records[skip:]
        for writes in fresh:
            apply_writes(self.conn, writes)
            ctx.disk.append(COMMIT_LOG, writes)
        if fresh:
            ctx.disk.sync()
            ctx.work(self.config.service.replicate_ms * len(fresh))
        ctx.send(src, ReplicateAck(next_index + len(fresh)))

    # --8<-- [end:async-replication]

    def _promote(self, ctx: Context, src: NodeId, msg: Promote) -> None:
        if not self.primary:
            self.primary = True
            ctx.disk.put("role", "primary")
            ctx.disk.sync()
            ctx.trace("promoted", reason=msg.reason)
        ctx.send(src, PromoteAck(ctx.node_id, ctx.disk.log_bounds(COMMIT_LOG)[1]))

    # -- reads for tests and reports -----------------------------------------------
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Read the database directly (tests, final-state inspection)."""
        assert self.conn is not None
        return self.conn.execute(sql, tuple(params)).fetchall()
