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
from dataclasses import dataclass
from typing import Any

from reference.disk.state import DiskState, LiveDisk


@dataclass(frozen=True, slots=True)
class TornRecord:
    """What a log holds where a write was torn by a crash: not the record."""

    log: str
    index: int

    def __repr__(self) -> str:
        return f"TornRecord({self.log!r}, {self.index})"


class SimDisk(LiveDisk):
    """In-memory disk with crash semantics; see the module docstring."""

    def __init__(self, sync_latency_ms: float = 0.0, tear_on_crash: bool = False) -> None:
        assert sync_latency_ms >= 0, sync_latency_ms
        self._live = DiskState()
        self._durable = DiskState()
        self._pending: list[tuple[Any, ...]] = []
        self.syncs = 0  # how many times sync() was called (telemetry, tests)
        self.sync_latency_ms = sync_latency_ms
        self.tear_on_crash = tear_on_crash
        self.torn = 0  # how many records crashes have torn
        self._charge: Callable[[float], None] | None = None

    def bind(self, charge: Callable[[float], None] | None) -> None:
        """Charge each sync's latency to `charge(ms)` (the runtime's ctx.work)."""
        self._charge = charge

    # -- durability ---------------------------------------------------------
    # --8<-- [start:disk-crash]
    def sync(self) -> None:
        self._durable.apply_all(self._pending)
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

    # Puts and deletes are nearly every write (a replica's votes and log
    # records, and their truncation at each compaction): they change the live
    # values here, as `DiskState.apply` would, without its two calls.
    def put(self, key: str, value: Any) -> None:
        self._live.values[key] = value
        self._pending.append(("put", key, value))

    def delete(self, key: str) -> None:
        self._live.values.pop(key, None)
        self._pending.append(("delete", key))
