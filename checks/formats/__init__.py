"""Reading histories from files: JSON Lines, Jepsen EDN, Porcupine's logs.

`load_history(path)` tells the formats apart by their content (or takes
`fmt`), reads the whole file, checks that invokes and completions pair up,
and returns the events; on any problem it raises `HistoryError` naming the
file, the line and what is wrong. It never returns part of a history.
"""

from __future__ import annotations

import os
import re
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from checks.formats.jepsen import parse_edn_history, read_edn_lines
from checks.formats.limits import ENV_HISTORY_MB_MAX, history_mb_max
from checks.formats.porcupine import parse_etcd_lines, parse_etcd_log
from checks.history import (
    NOT_OPERATIONS,
    Event,
    HistoryError,
    Operation,
    decode_text,
    pair_operations,
    parse_jsonl,
    read_jsonl_lines,
    stream_lines,
    unreadable,
)

# Format names accepted by `--format`; porcupine-kv files are EDN maps.
FORMATS: tuple[str, ...] = ("jsonl", "edn", "porcupine-etcd", "porcupine-kv")


@dataclass(frozen=True, slots=True)
class LoadedHistory:
    """A history read whole, the format it was read as, and each event's line."""

    source: str
    format: str
    events: list[Event]
    lines: Sequence[int]  # lines[i]: the line event i starts on (1-based)

    def operations(self) -> list[Operation]:
        """The events paired into operations (checked when the history was loaded)."""
        return pair_operations(self.events)


def detect_format(text: str) -> str | None:
    """The format of a history by its first significant character(s), or None."""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith("INFO") and "jepsen.util" in line:
            return "porcupine-etcd"
        if line[0] in "[(":
            return "edn"
        if line[0] == "{":
            rest = line[1:].lstrip()
            if rest[:1] in ('"', "}"):
                return "jsonl"
            if rest[:1] == ":":
                return "edn"
        return None
    return None


def parse_history(text: str, fmt: str | None = None, source: str = "<history>") -> LoadedHistory:
    """Parse history text in `fmt` (detected when None) and check its pairing."""
    if fmt is None:
        fmt = detect_format(text)
        if fmt is None:
            if not text.strip():
                raise HistoryError(f"{source}: empty history (no events)")
            raise HistoryError(
                f"{source}: cannot tell the format (expected JSON Lines, Jepsen EDN or a "
                f"jepsen.util log); name it with --format ({', '.join(FORMATS)})"
            )
    if fmt == "jsonl":
        events = parse_jsonl(text, source)
        lines = [i + 1 for i, line in enumerate(text.split("\n")) if line.strip()]
    elif fmt in ("edn", "porcupine-kv"):
        events, lines = parse_edn_history(text, source)
    elif fmt == "porcupine-etcd":
        events, lines = parse_etcd_log(text, source)
    else:
        raise HistoryError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    assert len(lines) == len(events)
    if not events:
        raise HistoryError(f"{source}: empty history (no events)")
    check_pairing(events, lines, source)
    return LoadedHistory(source, fmt, events, lines)


_SNIFF_BYTES = 1 << 16  # enough to tell the formats apart


def load_history(
    path: str | Path, fmt: str | None = None, mb_max: int | None = None
) -> LoadedHistory:
    """Read a history file whole (see `parse_history`), refusing one over
    `mb_max` megabytes (default: `history_mb_max()`). JSON Lines, EDN of one
    map a line (Jepsen's history.edn) and etcd logs are read a line at a time,
    so memory holds the events, never the text as well."""
    p = Path(path)
    cap = (history_mb_max() if mb_max is None else mb_max) * 1_000_000
    too_big = HistoryError(
        f"{p}: bigger than {cap // 1_000_000} MB; raise the cap with --max-mb "
        f"(or {ENV_HISTORY_MB_MAX}) if the machine has about 4x that in memory to spare"
    )
    try:
        with p.open("rb") as stream:
            if p.is_file() and os.fstat(stream.fileno()).st_size > cap:
                raise too_big
            head = stream.read(_SNIFF_BYTES)
            if fmt is None:
                fmt = detect_format(head.decode("utf-8-sig", errors="ignore"))
            if p.is_file() and fmt in ("jsonl", "porcupine-etcd", "edn", "porcupine-kv"):
                streamed = _read_streamed(stream, fmt, str(p))
                if streamed is not None:
                    return streamed
                stream.seek(0)  # laid out otherwise: read whole, as below
                head = b""
            data = head + stream.read(cap + 1 - len(head))
            if len(data) > cap:
                raise too_big
    except OSError as exc:
        raise HistoryError(unreadable(p, exc)) from None
    return parse_history(decode_text(data, str(p)), fmt, str(p))


_EVENT_AT = re.compile(r"^event (\d+): ")


def locate(exc: HistoryError, loaded: LoadedHistory) -> str:
    """A checker's error about one event ("event 12: ...") as the file and line
    a person opens ("h.jsonl: line 25: ..."); any other error names the file."""
    message = str(exc)
    if message.startswith(loaded.source):
        return message
    m = _EVENT_AT.match(message)
    if m is not None and int(m.group(1)) < len(loaded.lines):
        line = loaded.lines[int(m.group(1))]
        return f"{loaded.source}: line {line}: {message[m.end() :]}"
    return f"{loaded.source}: {message}"


def _read_streamed(stream: BinaryIO, fmt: str, source: str) -> LoadedHistory | None:
    """Read a line-oriented history a line at a time (memory holds the events,
    never the text too); None for an EDN file that is not one map a line."""
    stream.seek(0)
    numbered = stream_lines(stream, source)
    lines: array[int] = array("q")  # 8 bytes an event, not a list of int objects
    if fmt == "jsonl":
        events: list[Event] | None = read_jsonl_lines(numbered, source, lines)
    elif fmt == "porcupine-etcd":
        events = parse_etcd_lines(numbered, source, lines)
    else:
        events = read_edn_lines(numbered, source, lines)
        if events is None:
            return None
    if not events:
        raise HistoryError(f"{source}: empty history (no events)")
    check_pairing(events, lines, source)
    return LoadedHistory(source, fmt, events, lines)


# --8<-- [start:check-pairing]
def check_pairing(events: list[Event], lines: Sequence[int], source: str) -> None:
    """Each process runs one operation at a time; completions match their invoke.

    `pair_operations` enforces the same rule; checking it here lets the error
    name the line, which is what a person fixing the file needs.
    """
    open_at: dict[int | str, int] = {}  # process -> index of its open invoke
    for i, ev in enumerate(events):
        if ev.process in NOT_OPERATIONS:
            continue
        where = f"{source}: line {lines[i]}"
        if ev.type == "invoke":
            if ev.process in open_at:
                j = open_at[ev.process]
                raise HistoryError(
                    f"{where}: process {ev.process} invokes {ev.f} while its {events[j].f} "
                    f"(line {lines[j]}) has not completed"
                )
            open_at[ev.process] = i
            continue
        j = open_at.pop(ev.process, -1)
        if j < 0:
            raise HistoryError(f"{where}: {ev.type} {ev.f} of process {ev.process} has no invoke")
        if events[j].f != ev.f:
            raise HistoryError(
                f"{where}: {ev.type} {ev.f} completes process {ev.process}'s "
                f"{events[j].f} (line {lines[j]})"
            )


# --8<-- [end:check-pairing]
