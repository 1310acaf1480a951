"""The replicated ledger: the domain ledger as a Paxos `StateMachine`.

Paxos replicates an ordered log of commands; this adapter is what a replica
applies them to. It adds nothing to the ledger's rules, only the four
methods the replica calls: `apply` for each committed command, `read` for a
query the leader answers locally under its lease, and `snapshot`/`restore`
for log compaction and catching up a replica that fell behind.
"""

from __future__ import annotations

from typing import Any

from reference.ledger.commands import Rejected, apply, query
from reference.ledger.domain import Ledger
from reference.ledger.records import LedgerSnapshot

__all__ = ["LedgerMachine"]


class LedgerMachine:
    """`apply(command) -> result`, `read(query)`, `snapshot()`, `restore(value)`."""

    def __init__(self, *, audit: bool = False) -> None:
        self.ledger = Ledger(audit=audit)

    def apply(self, command: Any) -> Any:
        return apply(self.ledger, command)

    def read(self, query_command: Any) -> tuple[Any, ...] | Rejected:
        return query(self.ledger, query_command)

    def snapshot(self) -> LedgerSnapshot:
        return self.ledger.snapshot()

    def restore(self, value: LedgerSnapshot) -> None:
        self.ledger.restore(value)
