"""Jepsen-style histories: the one format every checker reads.

An operation is recorded twice: an `invoke` event when a client starts it and
a completion when it ends: `ok` (it took effect), `fail` (it certainly did
not), or `info` (unknown: it may take effect at any time after its invoke, or
never). Faults injected by a nemesis are recorded too, as events of the
process "nemesis", so reports can shade them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
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


# JSON Lines: one event per line, a JSON object with the fields of `Event`
# (`extra` flattened into the object, as Jepsen flattens :key, :error, ...).
# The reader checks every line and names the first one that is wrong; it
# returns the whole history or raises `HistoryError`, never a part of it.

JSONL_FIELDS: frozenset[str] = frozenset({"type", "process", "f", "value", "time_ms", "index"})


def _jsonable(x: Any) -> Any:
    """Plain JSON values: tuples become lists, sets sorted lists; else an error."""
    if x is None or isinstance(x, (bool, int, str)):
        return x
    if isinstance(x, float):
        if x != x or x in (float("inf"), float("-inf")):
            raise HistoryError(f"value {x!r} is not a finite number")
        return x
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (set, frozenset)):
        return [_jsonable(v) for v in sorted(x, key=repr)]
    if isinstance(x, dict):
        for k in x:
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise HistoryError(f"map key {k!r} cannot be a JSON object key")
        return {str(k): _jsonable(v) for k, v in x.items()}
    raise HistoryError(f"value {x!r} of type {type(x).__name__} has no JSON form")


def event_to_json(ev: Event) -> dict[str, Any]:
    """The JSON object of one event (its `index` is its line, so not stored)."""
    clash = JSONL_FIELDS.intersection(ev.extra)
    if clash:
        raise HistoryError(f"event {ev.index}: extra field(s) {sorted(clash)} shadow event fields")
    obj: dict[str, Any] = {
        "type": ev.type,
        "process": ev.process,
        "f": ev.f,
        "value": _jsonable(ev.value),
        "time_ms": ev.time_ms,
    }
    for k, v in ev.extra.items():
        obj[str(k)] = _jsonable(v)
    return obj


def event_from_json(obj: Any, index: int, where: str) -> Event:
    """Check one decoded JSON object and build its event; `where` names the line."""
    if not isinstance(obj, dict):
        raise HistoryError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    etype = obj.get("type")
    if etype not in EVENT_TYPES:
        raise HistoryError(f"{where}: type must be one of invoke/ok/fail/info, got {etype!r}")
    process = obj.get("process")
    if isinstance(process, bool) or not isinstance(process, (int, str)) or process == "":
        raise HistoryError(f"{where}: process must be an integer or a name, got {process!r}")
    f = obj.get("f")
    if not isinstance(f, str) or not f:
        raise HistoryError(f"{where}: f (the operation name) must be a non-empty string")
    time_ms = obj.get("time_ms", 0.0)
    if isinstance(time_ms, bool) or not isinstance(time_ms, (int, float)):
        raise HistoryError(f"{where}: time_ms must be a number, got {time_ms!r}")
    if time_ms != time_ms or time_ms in (float("inf"), float("-inf")):
        raise HistoryError(f"{where}: time_ms must be finite, got {time_ms!r}")
    extra = {k: v for k, v in obj.items() if k not in JSONL_FIELDS}
    return Event(etype, process, f, obj.get("value"), float(time_ms), index, extra)


def dumps_jsonl(events: list[Event]) -> str:
    """A history as JSON Lines text (one line per event, newline-terminated)."""
    lines = [json.dumps(event_to_json(ev), allow_nan=False) for ev in events]
    return "".join(line + "\n" for line in lines)


def write_jsonl(path: str | Path, events: list[Event]) -> None:
    """Write a history as JSON Lines (the file is written whole or not at all)."""
    text = dumps_jsonl(events)  # fails before the file is touched
    Path(path).write_text(text, encoding="utf-8")


def decode_text(data: bytes, source: str) -> str:
    """UTF-8 text of a history file, or a HistoryError naming the bad line."""
    try:
        return data.decode("utf-8-sig")  # (a byte order mark, if any, is not text)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise HistoryError(f"{source}: line {line}: not UTF-8 text ({exc.reason})") from None


# --8<-- [start:read-jsonl]
def parse_jsonl(text: str, source: str = "<history>") -> list[Event]:
    """Parse JSON Lines text; blank lines are skipped, anything else must be an event."""
    events: list[Event] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{source}: line {lineno}"
        try:
            obj = json.loads(line)
        except RecursionError:
            raise HistoryError(f"{where}: JSON nested too deeply") from None
        except ValueError as exc:  # JSONDecodeError, or an integer too long to convert
            raise HistoryError(f"{where}: not valid JSON ({exc})") from None
        events.append(event_from_json(obj, len(events), where))
    return events


# --8<-- [end:read-jsonl]


def read_jsonl(path: str | Path) -> list[Event]:
    """Read a JSON Lines history file whole, or raise HistoryError."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise HistoryError(f"{p}: cannot read ({exc.strerror or exc})") from None
    return parse_jsonl(decode_text(data, str(p)), str(p))
