"""The state a disk holds, and the read/write API both disks share.

A disk's state is named values plus append-only logs with absolute indices.
Every write is an op tuple applied to a `DiskState`; the simulated and the
file disk differ only in what they do with the ops between `sync()`s (keep
them in memory, or append them to a file), so they share this module and
cannot drift apart.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from reference.disk.base import DiskError


@dataclass
class DiskState:
    """Named values and logs; `apply(op)` is the only way they change."""

    values: dict[str, Any] = field(default_factory=dict)
    logs: dict[str, list[Any]] = field(default_factory=dict)
    log_first: dict[str, int] = field(default_factory=dict)  # absolute index of logs[name][0]

    def apply(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        if kind == "put":
            self.values[op[1]] = op[2]
        elif kind == "delete":
            self.values.pop(op[1], None)
        elif kind == "append":
            self.logs.setdefault(op[1], []).append(op[2])
            self.log_first.setdefault(op[1], 0)
        elif kind == "truncate_prefix":
            log, before = op[1], op[2]
            first = self.log_first.get(log, 0)
            records = self.logs.get(log, [])
            drop = max(0, min(before - first, len(records)))
            self.logs[log] = records[drop:]
            self.log_first[log] = first + drop if drop else max(first, min(before, first))
        elif kind == "log_start":  # a compacted file: a log whose first records are gone
            log, first = op[1], op[2]
            assert not self.logs.get(log), f"log_start on {log!r}, which has records"
            self.logs[log] = []
            self.log_first[log] = first
        elif kind == "truncate_suffix":
            log, from_index = op[1], op[2]
            first = self.log_first.get(log, 0)
            keep = max(0, from_index - first)
            self.logs[log] = self.logs.get(log, [])[:keep]
        else:  # pragma: no cover - the op kinds are this module's own
            raise AssertionError(f"unknown disk op {kind!r}")

    def apply_all(self, ops: list[tuple[Any, ...]]) -> None:
        """`apply` each of `ops` in order: a sync's replay of its writes.

        Puts and deletes, nearly all of them, are applied inline (as `apply`
        does), saving a call per write on the simulator's every fsync.
        """
        values, apply = self.values, self.apply
        for op in ops:
            kind = op[0]
            if kind == "put":
                values[op[1]] = op[2]
            elif kind == "delete":
                values.pop(op[1], None)
            else:
                apply(op)


class LiveDisk(ABC):
    """The Disk protocol's reads and writes over `self._live`; subclasses make writes durable."""

    _live: DiskState

    @abstractmethod
    def _write(self, op: tuple[Any, ...]) -> None:
        """Apply `op` to the live state and queue it for the next sync."""

    # -- named values -------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        return self._live.values.get(key, default)

    def put(self, key: str, value: Any) -> None:
        self._write(("put", key, value))

    def delete(self, key: str) -> None:
        self._write(("delete", key))

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(k for k in self._live.values if k.startswith(prefix))

    # -- logs ---------------------------------------------------------------
    def append(self, log: str, record: Any) -> int:
        index = self.log_bounds(log)[1]
        self._write(("append", log, record))
        return index

    def read_log(self, log: str, start: int | None = None) -> list[tuple[int, Any]]:
        first, end = self.log_bounds(log)
        begin = first if start is None else max(start, first)
        records = self._live.logs.get(log, [])
        return [(i, records[i - first]) for i in range(begin, end)]

    def log_bounds(self, log: str) -> tuple[int, int]:
        first = self._live.log_first.get(log, 0)
        return first, first + len(self._live.logs.get(log, []))

    def truncate_prefix(self, log: str, before: int) -> None:
        if before < 0:
            raise DiskError(f"truncate_prefix({log!r}, {before}): index must be >= 0")
        self._write(("truncate_prefix", log, before))

    def truncate_suffix(self, log: str, from_index: int) -> None:
        first, _ = self.log_bounds(log)
        if from_index < first:
            raise DiskError(
                f"truncate_suffix({log!r}, {from_index}): records before {first} are compacted"
            )
        self._write(("truncate_suffix", log, from_index))
