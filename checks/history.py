"""Jepsen-style histories: the one format every checker reads.

An operation is recorded twice: an `invoke` event when a client starts it and
a completion when it ends: `ok` (it took effect), `fail` (it certainly did
not), or `info` (unknown: it may take effect at any time after its invoke, or
never). Faults injected by a nemesis are recorded too, as events of the
process "nemesis", so reports can shade them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

EventType = Literal["invoke", "ok", "fail", "info"]
EVENT_TYPES: frozenset[str] = frozenset({"invoke", "ok", "fail", "info"})

NEMESIS = "nemesis"


# --8<-- [start:event]
@dataclass(frozen=True, slots=True)
class Event:
    """One line of a history."""

    type: EventType  # invoke | ok | fail | info
    process: int | str  # client process id, or "nemesis"
    f: str  # operation name: read, write, cas, transfer, txn, ...
    value: Any  # the operation's argument (invoke) or result (completion)
    time_ms: float = 0.0  # when it happened (simulated or wall time)
    index: int = -1  # position in the history, set by the reader/recorder
    extra: dict[str, Any] = field(default_factory=dict)  # key, node, error, ...


# --8<-- [end:event]


@dataclass(frozen=True, slots=True)
class Operation:
    """An invoke paired with its completion (None: it never completed)."""

    process: int | str
    f: str
    invoke: Event
    completion: Event | None

    @property
    def type(self) -> str:
        """ok, fail, or info (an operation that never completed is info)."""
        return self.completion.type if self.completion is not None else "info"


class HistoryError(ValueError):
    """A history that cannot be read or does not make sense as a history."""


# --8<-- [start:pair]
def pair_operations(events: list[Event]) -> list[Operation]:
    """Pair each invoke with the next completion of the same process.

    A process runs one operation at a time (as in Jepsen); a completion with
    no open invoke, or a second invoke while one is open, is an error. Nemesis
    events are not operations and are skipped.
    """
    open_ops: dict[int | str, Event] = {}
    ops: list[Operation | None] = []
    slot: dict[int | str, int] = {}
    for ev in events:
        if ev.process == NEMESIS:
            continue
        if ev.type == "invoke":
            if ev.process in open_ops:
                raise HistoryError(
                    f"event {ev.index}: process {ev.process} invoked {ev.f} while "
                    f"{open_ops[ev.process].f} (event {open_ops[ev.process].index}) is open"
                )
            open_ops[ev.process] = ev
            slot[ev.process] = len(ops)
            ops.append(None)
        else:
            inv = open_ops.pop(ev.process, None)
            if inv is None:
                raise HistoryError(
                    f"event {ev.index}: {ev.type} {ev.f} by process {ev.process} has no invoke"
                )
            ops[slot[ev.process]] = Operation(ev.process, inv.f, inv, ev)
    for proc, inv in open_ops.items():
        ops[slot[proc]] = Operation(proc, inv.f, inv, None)
    return [op for op in ops if op is not None]


# --8<-- [end:pair]
