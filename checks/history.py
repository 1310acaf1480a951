"""Jepsen-style histories: the one format every checker reads.

An operation is recorded twice: an `invoke` event when a client starts it and
a completion when it ends: `ok` (it took effect), `fail` (it certainly did
not), or `info` (unknown: it may take effect at any time after its invoke, or
never). Faults injected by a nemesis are recorded too, as events of the
process "nemesis", so reports can shade them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Container, Iterable, Iterator, Mapping, MutableSequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import is_
from pathlib import Path
from types import MappingProxyType
from typing import Any, BinaryIO, Literal, NoReturn

from checks.errors import HistoryError
from checks.values import JSONValue, check_text, check_value, is_integer

EventType = Literal["invoke", "ok", "fail", "info"]
EVENT_TYPES: frozenset[str] = frozenset({"invoke", "ok", "fail", "info"})
_TYPES: dict[str, EventType] = {t: t for t in ("invoke", "ok", "fail", "info")}

NEMESIS = "nemesis"
# Spans (chapter 7's tracing, one info event each): observations of a hop, not
# operations; like the nemesis's notes, they pair with nothing.
TRACE = "trace"
NOT_OPERATIONS = frozenset({NEMESIS, TRACE})

# The `extra` of the many events that have none: one shared, read-only map.
_NO_EXTRA: Any = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Event:
    """One line of a history."""

    type: EventType  # invoke | ok | fail | info
    process: int | str  # client process id, or "nemesis"
    f: str  # operation name: read, write, cas, transfer, txn, ...
    value: Any  # the operation's argument (invoke) or result (completion)
    time_ms: float = 0.0  # when it happened (simulated or wall time)
    index: int = -1  # position in the history, set by the reader/recorder
    extra: Mapping[str, Any] = field(default_factory=dict)  # key, node, error, ...


class _NewDict(dict[str, object]):
    """`extra` not given: a new empty dict, as the field's `default_factory=dict`
    (this one only marks it: it is never stored)."""

    def __repr__(self) -> str:
        return "<factory>"  # (what the dataclass's signature shows)


_NEW_EXTRA = _NewDict()
_event_slots = Event.__dict__  # each field's slot descriptor
_set_type, _set_process, _set_f, _set_value, _set_time_ms, _set_index, _set_extra = (
    _event_slots[name].__set__
    for name in ("type", "process", "f", "value", "time_ms", "index", "extra")
)


def _event_init(
    self: Event,
    type: EventType,
    process: int | str,
    f: str,
    value: object,
    time_ms: float = 0.0,
    index: int = -1,
    extra: Mapping[str, object] = _NEW_EXTRA,
) -> None:
    # The dataclass's own `__init__`, faster: a frozen dataclass sets each field
    # through `object.__setattr__`, looked up per field, and a run records an
    # event for each client call and each span (a rehearsal level: tens of
    # thousands per simulated second). The same fields, set by their slots.
    _set_type(self, type)
    _set_process(self, process)
    _set_f(self, f)
    _set_value(self, value)
    _set_time_ms(self, time_ms)
    _set_index(self, index)
    _set_extra(self, {} if extra is _NEW_EXTRA else extra)


_event_init.__qualname__ = "Event.__init__"
setattr(Event, "__init__", _event_init)  # noqa: B010 (mypy: no assignment to a method)


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


# Within `paired_once()`: (the events, `only`) -> their operations, paired once.
_paired: list[tuple[tuple[Event, ...], Container[str] | None, list[Operation]]] | None = None
_PAIRED_MAX = 8  # histories remembered at once (the parts of a night, each with and without spans)


@contextmanager
def paired_once() -> Iterator[None]:
    """Pair each history once while checkers judge it one after the other.

    A stage's checkers each call `pair_operations` on the history they are
    given, often a copy of it (`list(history)`) or a filtered copy holding
    the same events (a part's checkers read the history without its
    spans): a rehearsal level's checks paired the same events eleven
    times, 4.1 s of 12 s CPU. Inside this block a call whose events are the
    very same `Event` objects, in the same order, as an earlier call's (and
    whose `only` is equal) gets those operations again (a fresh list of the
    same `Operation`s: both are immutable). Events are frozen, so the same
    objects pair the same way. Outside it nothing is remembered.
    """
    global _paired
    outer = _paired
    if outer is None:
        _paired = []
    try:
        yield
    finally:
        if outer is None:
            _paired = None


def pair_operations(events: list[Event], only: Container[str] | None = None) -> list[Operation]:
    """Pair each invoke with the next completion of the same process.

    A process runs one operation at a time (as in Jepsen); a completion with
    no open invoke, or a second invoke while one is open, is an error. Nemesis
    events and spans are not operations and are skipped; so are operations whose f is
    not in `only`, when it is given (a checker that reads a few kinds of
    operation need not hold every other one in memory). Within `paired_once()`
    a history already paired is not paired again.
    """
    memo = _paired
    if memo is None:
        return _pair(events, only)
    for seen, seen_only, ops in memo:
        if len(seen) == len(events) and seen_only == only and all(map(is_, seen, events)):
            return list(ops)
    ops = _pair(events, only)
    memo.append((tuple(events), only, ops))
    del memo[:-_PAIRED_MAX]
    return list(ops)


def _pair(events: list[Event], only: Container[str] | None) -> list[Operation]:
    open_ops: dict[int | str, Event] = {}
    ops: list[Operation | None] = []
    slot: dict[int | str, int] = {}
    for ev in events:
        if ev.process in NOT_OPERATIONS:
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
            if only is None or inv.f in only:
                ops[slot[ev.process]] = Operation(ev.process, inv.f, inv, ev)
    for proc, inv in open_ops.items():
        if only is None or inv.f in only:
            ops[slot[proc]] = Operation(proc, inv.f, inv, None)
    return [op for op in ops if op is not None]


# JSON Lines: one event per line, a JSON object with the fields of `Event`
# (`extra` flattened into the object, as Jepsen flattens :key, :error, ...).
# The reader checks every line and names the first one that is wrong; it
# returns the whole history or raises `HistoryError`, never a part of it.

JSONL_FIELDS: frozenset[str] = frozenset({"type", "process", "f", "value", "time_ms", "index"})


def _jsonable(x: object) -> JSONValue:
    """Plain JSON values: tuples become lists, sets sorted lists; else an error."""
    if x is None or isinstance(x, (bool, int, str)):
        return x
    if (
        type(x) is dict
        and _STR.issuperset(map(type, x))
        and _PLAIN.issuperset(map(type, x.values()))
    ):
        return dict(x)  # a read, a payment: their names and numbers checked in C
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


_PLAIN = frozenset({str, int, bool, type(None)})  # JSON as they are (no float: NaN)
_STR = frozenset({str})


def event_to_json(ev: Event) -> dict[str, JSONValue]:
    """The JSON object of one event (its `index` is its line, so not stored)."""
    clash = JSONL_FIELDS.intersection(ev.extra)
    if clash:
        raise HistoryError(f"event {ev.index}: extra field(s) {sorted(clash)} shadow event fields")
    obj: dict[str, JSONValue] = {
        "type": ev.type,
        "process": ev.process,
        "f": ev.f,
        "value": _jsonable(ev.value),
        "time_ms": ev.time_ms,
    }
    for k, v in ev.extra.items():
        obj[str(k)] = _jsonable(v)
    return obj


def event_from_json(obj: object, index: int, where: str) -> Event:
    """Check one decoded JSON object and build its event; `where` names the line."""
    if not isinstance(obj, dict):
        raise HistoryError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    etype = obj.get("type")
    if not isinstance(etype, str) or etype not in EVENT_TYPES:
        raise HistoryError(f"{where}: type must be one of invoke/ok/fail/info, got {etype!r}")
    process = check_process(obj.get("process"), where, "process")
    f = obj.get("f")
    if not isinstance(f, str) or not f:
        raise HistoryError(f"{where}: f (the operation name) must be a non-empty string")
    check_text(f, where)
    time_ms = check_time_ms(obj.get("time_ms", 0.0), where, "time_ms")
    value = obj.get("value")
    if value is not None:
        check_value(value, where)
    extra = {k: v for k, v in obj.items() if k not in JSONL_FIELDS}
    if extra:
        check_value(extra, where)
    if value.__class__ is dict:  # share the keys between events (a read's accounts, ...)
        value = {_intern(k): _short_name(v) for k, v in value.items()}
    # One string object per name, not one per line: a long history repeats them.
    return Event(_TYPES[etype], process, _intern(f), value, time_ms, index, extra or _NO_EXTRA)


# Values an event's envelope may hold: bounded so that every later step
# (float conversion, sorting, printing) works on them.
PROCESS_ABS_MAX = 2**63  # a process id fits in 64 bits, as in Jepsen
TIME_MS_ABS_MAX = 1e15  # about 31,700 years: any later time is not a timestamp


def check_process(process: object, where: str, name: str) -> int | str:
    """A process is an integer or a non-empty name."""
    if isinstance(process, str) and process:
        check_text(process, where)
        return process
    if is_integer(process) and -PROCESS_ABS_MAX < process < PROCESS_ABS_MAX:
        return process
    raise HistoryError(
        f"{where}: {name} must be an integer (64-bit) or a name, got {_short(process)}"
    )


def check_time_ms(time_ms: object, where: str, name: str, scale: float = 1.0) -> float:
    """A finite time in milliseconds (`scale`: milliseconds per unit of `time_ms`)."""
    if isinstance(time_ms, bool) or not isinstance(time_ms, (int, float)):
        raise HistoryError(f"{where}: {name} must be a number, got {_short(time_ms)}")
    try:
        ms = float(time_ms) * scale
    except OverflowError:
        ms = float("inf")
    if not -TIME_MS_ABS_MAX <= ms <= TIME_MS_ABS_MAX:  # (NaN fails this too)
        raise HistoryError(f"{where}: {name} must be a finite time, got {_short(time_ms)}")
    return ms


def _short(x: object) -> str:
    """A value for an error message, cut so a huge one cannot flood the terminal."""
    try:
        text = repr(x) if not isinstance(x, int) or abs(x) < 10**30 else "a huge integer"
    except (ValueError, RecursionError):
        text = f"a {type(x).__name__}"
    return text if len(text) <= 80 else text[:77] + "..."


def dumps_jsonl(events: list[Event]) -> str:
    """A history as JSON Lines text (one line per event, newline-terminated)."""
    encode = _ENCODER.encode  # (json.dumps would build an encoder per line)
    return "".join([encode(event_to_json(ev)) + "\n" for ev in events])


_ENCODER = json.JSONEncoder(allow_nan=False)  # json.dumps(..., allow_nan=False)'s own


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


_intern = sys.intern
NAME_LEN_MAX = 40  # strings up to this long are shared as names (account ids, keys)


def _short_name(v: Any) -> Any:
    return _intern(v) if v.__class__ is str and len(v) <= NAME_LEN_MAX else v


def _not_json(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


# NaN and Infinity are not JSON, though Python's reader accepts them.
_DECODER = json.JSONDecoder(parse_constant=_not_json)


# --8<-- [start:read-jsonl]
def parse_jsonl(text: str, source: str = "<history>") -> list[Event]:
    """Parse JSON Lines text; blank lines are skipped, anything else must be an event."""
    events: list[Event] = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            events.append(parse_jsonl_line(line, len(events), f"{source}: line {lineno}"))
    return events


def parse_jsonl_line(line: str, index: int, where: str) -> Event:
    """One line of JSON Lines as an event, or a HistoryError naming `where`."""
    try:
        obj = _DECODER.decode(line)
    except RecursionError:
        raise HistoryError(f"{where}: JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, or an integer too long to convert
        raise HistoryError(f"{where}: not valid JSON ({exc})") from None
    return event_from_json(obj, index, where)


# --8<-- [end:read-jsonl]


def stream_lines(stream: BinaryIO, source: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of each line of a binary stream, one at a time, so
    memory never holds the whole text; a line that is not UTF-8 is an error
    naming it."""
    for lineno, raw in enumerate(stream, start=1):
        if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]  # a byte order mark is not text
        try:
            yield lineno, raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise HistoryError(f"{source}: line {lineno}: not UTF-8 text ({exc.reason})") from None


def read_jsonl_lines(
    numbered: Iterable[tuple[int, str]], source: str, lines: MutableSequence[int]
) -> list[Event]:
    """JSON Lines, a line at a time; `lines` gets the line number of each event."""
    events: list[Event] = []
    for lineno, line in numbered:
        if not line.strip():
            continue
        events.append(parse_jsonl_line(line, len(events), f"{source}: line {lineno}"))
        lines.append(lineno)
    return events


def read_jsonl(path: str | Path) -> list[Event]:
    """Read a JSON Lines history file whole, or raise HistoryError."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise HistoryError(unreadable(p, exc)) from None
    return parse_jsonl(decode_text(data, str(p)), str(p))


def unreadable(path: Path, exc: OSError) -> str:
    """Why a history file cannot be read, in one line; a folder is named as one."""
    if isinstance(exc, IsADirectoryError):
        return f"{path}: a folder with no history.jsonl in it: name a history file or a run folder"
    return f"{path}: cannot read ({exc.strerror or exc})"
