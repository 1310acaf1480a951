"""The disk interface every node sees as `ctx.disk`.

Two kinds of durable state cover every node in the book: named values (a
Paxos promise, a snapshot, a fence record) and append-only logs with absolute
indices (a write-ahead log). Nothing written is durable until `sync()`: a
crash loses every write made since the last sync. Values must be encodable
by `reference.codec` and are treated as immutable once written.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


class DiskError(RuntimeError):
    """Misuse of a disk (bad index, unknown log) or a corrupt record on it."""


# --8<-- [start:disk]
@runtime_checkable
class Disk(Protocol):
    # Named values.
    def get(self, key: str, default: Any = None) -> Any: ...
    def put(self, key: str, value: Any) -> None: ...
    def delete(self, key: str) -> None: ...
    def keys(self, prefix: str = "") -> list[str]: ...

    # Append-only logs; indices are absolute and survive prefix truncation.
    def append(self, log: str, record: Any) -> int:
        """Append `record`; returns its index."""
        ...

    def read_log(self, log: str, start: int | None = None) -> list[tuple[int, Any]]:
        """(index, record) pairs from `start` (default: the first kept) to the end."""
        ...

    def log_bounds(self, log: str) -> tuple[int, int]:
        """(first kept index, next index to append); equal when empty."""
        ...

    def truncate_prefix(self, log: str, before: int) -> None:
        """Drop records with index < `before` (compaction after a snapshot)."""
        ...

    def truncate_suffix(self, log: str, from_index: int) -> None:
        """Drop records with index >= `from_index` (overwriting a log tail)."""
        ...

    def sync(self) -> None:
        """Make every write so far durable. Costs the node sync latency."""
        ...


# --8<-- [end:disk]
