"""The simulated disk: writes are volatile until `sync()`; a crash loses them.

Two copies of the state are kept: `live` (what the node reads and writes) and
`durable` (what survives a crash). Writes go to `live` and are queued; `sync()`
replays the queue onto `durable`. `crash()` throws `live` away and rebuilds it
from `durable`, which is exactly what a power cut does to a page cache.

Two options model what real disks do beyond that. `sync_latency_ms` makes
`sync()` cost time: the runtime binds a charge function (its `ctx.work`), so a
node that fsyncs on every write has less capacity, as it would for real.
`tear_on_crash` models a power cut in the middle of a write: if the earliest
unsynced write was a log append, it reaches the platter half-written, and
after the crash the log ends in a `TornRecord`. A recovering reader must
notice it and cut it off (`truncate_suffix`), as a WAL checks its CRCs.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reference.disk.base import DiskError


@dataclass(frozen=True, slots=True)
class TornRecord:
    """What a log holds where a write was torn by a crash: not the record."""

    log: str
    index: int

    def __repr__(self) -> str:
        return f"TornRecord({self.log!r}, {self.index})"


@dataclass
class _State:
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
        elif kind == "truncate_suffix":
            log, from_index = op[1], op[2]
            first = self.log_first.get(log, 0)
            keep = max(0, from_index - first)
            self.logs[log] = self.logs.get(log, [])[:keep]
        else:  # pragma: no cover - the op kinds are this module's own
            raise AssertionError(f"unknown disk op {kind!r}")


class SimDisk:
    """In-memory disk with crash semantics; see the module docstring."""

    def __init__(self, sync_latency_ms: float = 0.0, tear_on_crash: bool = False) -> None:
        assert sync_latency_ms >= 0, sync_latency_ms
        self._live = _State()
        self._durable = _State()
        self._pending: list[tuple[Any, ...]] = []
        self.syncs = 0  # how many times sync() was called (telemetry, tests)
        self.sync_latency_ms = sync_latency_ms
        self.tear_on_crash = tear_on_crash
        self.torn = 0  # how many records crashes have torn
        self._charge: Callable[[float], None] | None = None

    def bind(self, charge: Callable[[float], None] | None) -> None:
        """Charge each sync's latency to `charge(ms)` (the runtime's ctx.work)."""
        self._charge = charge

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

    # -- durability ---------------------------------------------------------
    # --8<-- [start:disk-crash]
    def sync(self) -> None:
        for op in self._pending:
            self._durable.apply(op)
        self._pending.clear()
        self.syncs += 1
        if self._charge is not None and self.sync_latency_ms > 0:
            self._charge(self.sync_latency_ms)  # the node is busy while it fsyncs

    @property
    def unsynced_writes(self) -> int:
        return len(self._pending)

    def crash(self) -> None:
        """Lose every unsynced write: the live state becomes the durable one.

        With `tear_on_crash`, an unsynced append that was first in line to
        reach the disk lands torn: the log ends in a `TornRecord`.
        """
        if self.tear_on_crash and self._pending and self._pending[0][0] == "append":
            log = self._pending[0][1]
            first = self._durable.log_first.get(log, 0)
            index = first + len(self._durable.logs.get(log, []))
            self._durable.apply(("append", log, TornRecord(log, index)))
            self.torn += 1
        self._pending.clear()
        self._live = copy.deepcopy(self._durable)

    # --8<-- [end:disk-crash]

    def _write(self, op: tuple[Any, ...]) -> None:
        self._live.apply(op)
        self._pending.append(op)
