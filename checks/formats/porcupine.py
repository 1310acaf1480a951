"""Porcupine's etcd test logs: `jepsen.util` log lines from Jepsen's etcd test.

    INFO  jepsen.util - 2	:invoke	:cas	[3 0]
    INFO  jepsen.util - 2	:fail	:cas	[3 0]
    INFO  jepsen.util - 4	:info	:write	:timed-out

Each line is `<process> <type> <f> <value>` after the logger's prefix; the
value is EDN (vectors are read as tuples). The files have no timestamps, so
an event's time is its line number. (Porcupine's other format,
`kv/cNN-*.txt`, is EDN maps one per line: `checks.formats.jepsen` reads it.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, MutableSequence
from typing import Any

from checks.formats.edn import EdnError, Keyword, read_one
from checks.history import EVENT_TYPES, Event, HistoryError, check_process
from checks.values import check_value, value_key

VALUES_SHARED_MAX = 10_000  # distinct values read once and shared; past it, read each time
# The value runs to the end of the line; its trailing blanks are stripped
# after the match (a lazy `(\S.*?)\s*$` would retry `$` at every character).
LINE_RE = re.compile(r"^INFO\s+jepsen\.util\s+-\s+(\d+)\s+:(\S+)\s+:(\S+)\s+(\S.*)$")
PROCESS_DIGITS_SAFE = 18  # up to 18 digits is below 2**63: no range check needed


def parse_etcd_log(text: str, source: str = "<history>") -> tuple[list[Event], list[int]]:
    """Events of a Porcupine/Jepsen etcd log, with the line of each."""
    lines: list[int] = []
    events = parse_etcd_lines(enumerate(text.split("\n"), start=1), source, lines)
    return events, lines


def parse_etcd_lines(
    numbered: Iterable[tuple[int, str]], source: str, lines: MutableSequence[int]
) -> list[Event]:
    """Events of an etcd log given a line at a time; `lines` gets each one's line."""
    events: list[Event] = []
    values: dict[str, Any] = {}  # the same few values recur: read each once
    for lineno, line in numbered:
        m = LINE_RE.match(line)
        if m is None:
            if not line.strip():
                continue
            raise HistoryError(
                f"{source}: line {lineno}: not a jepsen.util log line "
                "('INFO  jepsen.util - <process> :<type> :<f> <value>')"
            )
        process, etype, f, raw = m.groups()
        raw = raw.rstrip()
        if etype not in EVENT_TYPES:
            raise HistoryError(
                f"{source}: line {lineno}: type must be :invoke, :ok, :fail or :info, got :{etype}"
            )
        if raw in values:
            value = values[raw]
        else:
            value = _value(raw, f"{source}: line {lineno}")
            if len(values) < VALUES_SHARED_MAX:
                values[raw] = value
        if len(process) <= PROCESS_DIGITS_SAFE:
            pid: int | str = int(process)  # digits only (the pattern): a valid process
        else:
            where = f"{source}: line {lineno}"
            pid = check_process(int(process) if len(process) <= 20 else None, where, "the process")
        events.append(Event(etype, pid, f, value, float(lineno), len(events)))  # type: ignore[arg-type]
        lines.append(lineno)
    return events


def _value(raw: str, where: str) -> Any:
    """An immutable value (vectors become tuples, as they are shared between events)."""
    try:
        value = read_one(raw)
    except EdnError as exc:
        raise HistoryError(f"{where}: bad value {raw!r} ({exc.message})") from None
    check_value(value, where)
    if isinstance(value, Keyword):
        return str(value)  # :timed-out and friends: plain names
    return value_key(value)  # (a map stays a map: never a tuple of pairs read as [old new])
