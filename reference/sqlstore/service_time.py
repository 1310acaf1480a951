"""How long a SQL store is busy per request: what gives a node its capacity.

A real database spends time parsing, locking, touching pages and flushing
the log. The model charges a fixed cost per transaction plus a cost per
statement the transaction actually ran (so a declined payment, which stops
after one read, is cheaper than a paid one), and the disk charges the sync.
The store calls `ctx.work(...)` with the result: the node is busy for that
long, requests arriving meanwhile wait in its queue, and a queue that grows
faster than it drains ends in timeouts. Nothing else limits throughput.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ServiceTime"]


# --8<-- [start:service-time]
@dataclass(frozen=True)
class ServiceTime:
    """Busy time of one store per transaction, in milliseconds."""

    txn_ms: float = 1.0  # begin, commit, connection and request overhead
    statement_ms: float = 0.5  # each SELECT / INSERT / UPDATE the procedure ran
    replicate_ms: float = 0.05  # applying one shipped write on a standby
    reject_ms: float = 0.05  # answering "expired" or "not primary" without a txn

    def __post_init__(self) -> None:
        assert self.txn_ms >= 0 and self.statement_ms >= 0, self
        assert self.replicate_ms >= 0 and self.reject_ms >= 0, self

    def cost_ms(self, statements: int) -> float:
        """Busy time for a transaction that ran `statements` statements."""
        assert statements >= 0
        return self.txn_ms + self.statement_ms * statements

    def capacity_tps(self, statements: int, sync_ms: float = 0.0) -> float:
        """Transactions per second one store sustains, for reports and sizing."""
        return 1000.0 / (self.cost_ms(statements) + sync_ms)


# --8<-- [end:service-time]
