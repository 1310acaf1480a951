"""Jepsen and Knossos EDN histories, and Porcupine's key-value test files.

Jepsen writes an operation as a map: `{:type :invoke, :f :cas, :value [1 2],
:process 3, :time 1234}` (time in nanoseconds). A history file is either one
vector (or list) of such maps, as Knossos' test data is, or one map per line,
as Jepsen's `history.edn` and Porcupine's `kv/cNN-*.txt` are. Keys other
than type/f/value/process/time/index (`:key`, `:error`, `:node`, ...) are
kept in `Event.extra` under their names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, MutableSequence
from typing import Any

from checks.formats.edn import EdnError, Keyword, Reader, keyword
from checks.history import (
    _NO_EXTRA,
    _TYPES,
    EVENT_TYPES,
    NEMESIS,
    Event,
    HistoryError,
    _intern,
    _short,
    _short_name,
    check_process,
    check_time_ms,
)
from checks.values import INT_DIGITS_MAX, check_value

NS_PER_MS = 1_000_000
_FIELDS = frozenset({"type", "f", "value", "process", "time", "index"})


def event_from_map(m: Any, index: int, where: str, scalars_checked: bool = False) -> Event:
    """One Jepsen operation map as an Event; `where` names its line."""
    if not isinstance(m, dict):
        raise HistoryError(f"{where}: expected an operation map, got {_kind(m)}")
    for k in m:
        if not isinstance(k, Keyword):
            raise HistoryError(f"{where}: map key {k!r} is not a keyword")
    etype = m.get("type")
    if not isinstance(etype, str) or etype not in EVENT_TYPES:
        raise HistoryError(
            f"{where}: :type must be :invoke, :ok, :fail or :info, got {_short(etype)}"
        )
    process = check_process(m.get("process"), where, ":process")
    if isinstance(process, str):
        process = NEMESIS if process == NEMESIS else str(process)
    f = m.get("f")
    if not isinstance(f, str) or not f:
        raise HistoryError(f"{where}: :f must be a keyword naming the operation, got {_short(f)}")
    time_ms = check_time_ms(m.get("time", 0), where, ":time (nanoseconds)", 1 / NS_PER_MS)
    value = m.get("value")
    if not scalars_checked:  # (a flat map read by `_flat_map` holds only checked scalars)
        check_value(value, where)
    if value.__class__ is dict:  # share short names between events, as the JSON reader does
        value = {k: _short_name(v) for k, v in value.items()}
    extra = {str(k): v for k, v in m.items() if k not in _FIELDS}
    if extra and not scalars_checked:
        check_value(extra, where)
    # One string object per name (str() of a keyword would copy it for every event).
    return Event(_TYPES[etype], process, _intern(str(f)), value, time_ms, index, extra or _NO_EXTRA)


# A flat map on one line, of simple values: what most history files hold.
_SCALAR = r'(?:"[^"\\\n]*"|:[^\s,{}\[\]()"]+|nil|true|false|-?\d+)'
_FLAT_MAP = re.compile(r"\{\s*(?::[^\s,\"{}\[\]()]+\s+" + _SCALAR + r"\s*,?\s*)*\}")
_PAIR = re.compile(r":([^\s,\"{}\[\]()]+)\s+(" + _SCALAR + ")")


def parse_edn_history(text: str, source: str = "<history>") -> tuple[list[Event], list[int]]:
    """Events of an EDN history (a vector of maps, or maps one after another), with lines."""
    fast = _parse_flat_lines(text, source)
    if fast is not None:
        return fast
    reader = Reader(text)
    events: list[Event] = []
    lines: list[int] = []
    try:
        first = reader.peek()
        if first in ("[", "("):
            reader.pos += 1
            forms = reader.items("]" if first == "[" else ")")
        else:
            forms = _top_level(reader)
        for line, form in forms:
            events.append(event_from_map(form, len(events), f"{source}: line {line}"))
            lines.append(line)
        if not reader.at_end():
            raise HistoryError(f"{source}: line {reader.line}: unexpected text after the history")
    except EdnError as exc:
        raise HistoryError(f"{source}: {exc}") from None
    return events, lines


def read_edn_lines(
    numbered: Iterable[tuple[int, str]], source: str, lines: MutableSequence[int]
) -> list[Event] | None:
    """One operation map per line (Jepsen's history.edn), a line at a time, so
    memory holds the events and never the whole text. None when the text is
    laid out otherwise (a vector, a map over several lines): the caller reads
    it whole, and that reader names any error."""
    events: list[Event] = []
    for lineno, raw in numbered:
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        if not line.startswith("{"):
            return None
        where = f"{source}: line {lineno}"
        m = flat = _flat_map(line)
        if m is None:
            reader = Reader(line)
            try:
                m = reader.read()
                if not reader.at_end():
                    return None
            except EdnError:
                return None
        events.append(event_from_map(m, len(events), where, scalars_checked=flat is not None))
        lines.append(lineno)
    return events


def _flat_map(line: str) -> dict[Keyword, Any] | None:
    """A flat map of simple values read by regular expression (fast); None otherwise."""
    if _FLAT_MAP.fullmatch(line) is None:
        return None
    m: dict[Keyword, Any] = {}
    for key, raw in _PAIR.findall(line):
        k = keyword(key)
        if k in m:
            return None
        try:
            m[k] = _scalar(raw)
        except ValueError:  # an integer too long to convert: the reader names it
            return None
    return m


def _parse_flat_lines(text: str, source: str) -> tuple[list[Event], list[int]] | None:
    """A fast path for one flat map per line; None when the text is anything else."""
    events: list[Event] = []
    lines: list[int] = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.strip()
        if not line:
            continue
        m = _flat_map(line)
        if m is None:
            return None  # let the full reader read it (and name any error)
        events.append(event_from_map(m, len(events), f"{source}: line {lineno}", True))
        lines.append(lineno)
    return events, lines


def _scalar(raw: str) -> Any:
    if raw[0] == '"':
        return raw[1:-1]
    if raw[0] == ":":
        return keyword(raw[1:])
    if raw == "nil":
        return None
    if raw in ("true", "false"):
        return raw == "true"
    if len(raw) > INT_DIGITS_MAX:  # (the reader reads it, and check_value refuses it)
        raise ValueError(f"{raw[:10]}...: an integer too long for the fast path")
    return int(raw)


def _top_level(reader: Reader) -> Any:
    while not reader.at_end():
        line = reader.line
        yield line, reader.read()


def _kind(x: Any) -> str:
    if isinstance(x, list):
        return "a sequence"
    if x is None:
        return "nil"
    return type(x).__name__
