"""The file disk: the Disk protocol on a real file, with fsync.

Same semantics as `SimDisk`, by construction: the live state is the very
same state machine (`DiskState` in reference/disk/state.py), and writes are
queued until `sync()`. What differs is where durability lives:

    sync()   = append ONE record holding every queued write, then fsync
    recovery = replay the records in order, stopping at the first torn one

A record is `u32 length | u32 crc32 | payload`, the payload the codec bytes
of a list of writes. One record per sync makes a sync atomic: after a crash
mid-write the last record is torn (short or failing its checksum), it is
dropped and the file truncated back to the last whole record. Nothing a
`sync()` had returned from is lost, and torn bytes are never read as data.

A bad record *followed by whole ones* is not a torn tail but corruption of
synced data, and recovery refuses it with a `DiskError` rather than silently
dropping what was acknowledged.

Group commit (opt-in, for a host that gates its node's messages): with
`group_commit`, `sync()` only numbers its batch of writes; the batches are
encoded and handed to a writer thread (once per turn of the host's loop,
see `wake_once_per_turn`), which appends every batch handed over meanwhile
in one write to the file opened O_DSYNC (durable on return, as after an
fsync: one system call, `_write_durably`), then reports the highest batch number
now durable through `on_durable`. The host holds every message its node sent
after a `sync()` until that sync's batch is reported durable (host.py), so
nothing is acknowledged before it is on disk, as with a plain `sync()`; but
many syncs share one fsync, and the node's loop never waits for the fsync.
(What follows a large record, a snapshot say, is still acknowledged only
once that record is on disk: records stay in sync order.)
Written values must not be mutated afterwards (the Disk protocol's rule
already): they are encoded later, at the end of the loop's turn.

The file grows with every sync; when it holds far more than the state, it
is compacted: the whole durable state is written as one record to a new
file, fsynced, and renamed over the old one (then the directory is fsynced),
so a crash at any point leaves either the old file or the new one. That
record is an ordinary batch of writes, the very bytes each write was encoded
to when it was synced (kept per key, `_Encoded`): compaction copies bytes and
never encodes the state again, so its cost is the disk's, not the codec's.

With group commit the writer thread does not rewrite the file itself, as
Redis rewrites its append-only file beside it: a second thread writes and
fsyncs the snapshot to the new file while the writer goes on appending
batches to the old one and keeping their records; once the snapshot is
down, the writer appends those records to the new file, fsyncs it and
renames it over the old. A batch's durability never waits for the whole
state to be copied: measured in `d11 bench mq`, a compaction of a broker's
4 MB file done by the writer held every message the node sent for 50 to 84
ms, the whole of the bench's p99.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reference.codec import CodecError, Message, decode_value, encode, encode_value
from reference.disk.base import DiskError
from reference.disk.state import DiskState, LiveDisk

_Write = tuple[Any, ...]  # ("put", key, value), ("append", log, record), ...
# A batch handed to the writer: its number, its writes, their bytes, its record,
# and when it was handed over (time.perf_counter(), for `handoff_us`).
_Handed = tuple[int, list[_Write], list[bytes], bytes, float]
_HEADER = struct.Struct(">II")  # length, crc32 of the payload
RECORD_BYTES_MAX = 256 << 20  # a length beyond this is garbage, not a record
COMPACT_MIN_BYTES = 1 << 20  # never compact a small file
COMPACT_RATIO = 4  # compact when the file is 4x the size of a snapshot


class FileDisk(LiveDisk):
    """A durable disk in one file; see the module docstring."""

    def __init__(self, path: str | Path, *, fsync: bool = True, group_commit: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync  # tests of logic may skip the (slow) fsync; crash tests never do
        # Group commit: the host fsyncs (see the module docstring). Without fsync
        # there is nothing to group.
        self.group_commit = group_commit and fsync
        # Group commit: batches numbered by sync(); the host calls `mark_durable`
        # (on its own thread) once `on_durable` reported them fsynced.
        self.batches_synced = 0
        self.batches_durable = 0
        self.on_durable: Callable[[int], None] | None = None  # called on the writer thread
        self.on_error: Callable[[BaseException], None] | None = None  # idem
        # Set by a host that may write a turn's batches on its own thread (see
        # `wake_once_per_turn`); `_write_lock` keeps one writer at a time, so the
        # records stay in sync order whoever writes them.
        self._write_here: Callable[[int, int], bool] | None = None
        self._durable_here: Callable[[int], None] | None = None
        self._write_lock = threading.Lock()
        # Batches synced this turn of the host's loop, then handed to the writer
        # encoded, through `_handed` and a byte down a pipe; see `_wake`.
        self._turn: list[tuple[int, list[_Write]]] = []
        self._handed: deque[_Handed] = deque()  # encoded, for the writer to take
        self._wake_r, self._wake_w = -1, -1  # the writer's wake-up pipe, made with it
        self._call_soon: Callable[[Callable[[], None]], object] | None = None
        self._cond = threading.Condition()  # guards _fsynced_upto, for wait_durable
        self._writer: threading.Thread | None = None
        self._closing = False
        self._failed = False
        self._fsynced_upto = 0  # writer side, guarded by _cond
        self.syncs = 0
        # Group commit: the writer's fsyncs and the time spent in them, to set
        # beside how long the host held its messages (telemetry; written by the
        # writer thread only, read by the host after on_durable).
        self.fsyncs = 0
        self.fsync_us = 0
        # And the hand-offs around each: from the loop handing a write's first
        # batch over to the writer beginning that write (the writer's wake-up, its
        # wait for the GIL, or for its previous write), summed over fsyncs; and the
        # last report, (batches durable, time.perf_counter() when reported), which
        # the host times to its loop hearing it.
        self.handoff_us = 0
        self.last_report: tuple[int, float] = (0, 0.0)
        self.torn_bytes_dropped = 0  # what recovery cut off the tail (telemetry, tests)
        self._pending: list[tuple[tuple[Any, ...], bytes]] = []  # (write, its bytes) since sync
        self._durable = DiskState()
        self._encoded = _Encoded()  # the durable state as the encoded writes that rebuild it
        self._snapshot_bytes = 0  # size of the state as of the last compaction
        self._rewrite: _Rewrite | None = None  # group commit: a compaction under way
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        self._recover()
        self._live = copy.deepcopy(self._durable)
        self._file = self._open_append()  # held open for the disk's life
        if created:
            self._fsync_dir()  # the new file's name must survive a power cut too

    # -- durability ---------------------------------------------------------
    # --8<-- [start:sync]
    def sync(self) -> None:
        """Append one checksummed record of every queued write, then fsync."""
        self.syncs += 1
        if self.group_commit:
            self._hand_over()
            return
        if self._pending:
            payload = b"[" + b",".join(raw for _, raw in self._pending) + b"]"
            self._file.write(_HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
            self._file.flush()
            if self.fsync:
                os.fsync(self._file.fileno())
            for op, raw in self._pending:
                self._make_durable(op, raw)
            self._pending.clear()
        if self._file.tell() > max(COMPACT_MIN_BYTES, COMPACT_RATIO * self._snapshot_bytes):
            self._compact()

    # --8<-- [end:sync]

    # -- group commit ---------------------------------------------------------
    @property
    def owed(self) -> bool:
        """Group commit: a synced batch is not yet reported durable."""
        return self.batches_durable < self.batches_synced

    def mark_durable(self, batches: int) -> None:
        """The host, on its thread: `on_durable(batches)` was reported."""
        assert batches <= self.batches_synced, (batches, self.batches_synced)
        self.batches_durable = max(self.batches_durable, batches)

    def wait_durable(self) -> None:
        """Block until every synced batch is durable (the host's bound on held sends)."""
        target = self.batches_synced
        self._wake()  # a batch waiting for the turn's wake-up goes now
        with self._cond:
            while self._fsynced_upto < target and not (self._closing or self._failed):
                self._cond.wait()
            if self._fsynced_upto >= target:
                self.mark_durable(target)

    def wake_once_per_turn(
        self,
        call_soon: Callable[[Callable[[], None]], object],
        write_here: Callable[[int, int], bool] | None = None,
        durable_here: Callable[[int], None] | None = None,
    ) -> None:
        """Hand batches to the writer once per turn of the caller's loop, not per `sync()`.

        `sync()` then only queues its batch; the first batch of a turn asks
        `call_soon` (the loop's) for `_wake`, which passes every batch of that
        turn to the writer at once, after the handlers of the turn and the
        sends they made (a leader's Accepts leave before its writer runs).

        With `write_here`, the host may keep a turn's batches: at the turn's
        end `write_here(first batch number, record bytes)` is asked, and if
        it says so (and the writer thread is not writing), they are written
        on the loop's own thread and reported to `durable_here` there, with
        no thread hand-off either way (see host.py's `DISK_WRITER_ENV`).
        """
        self._call_soon = call_soon
        self._write_here = write_here
        self._durable_here = durable_here

    def _hand_over(self) -> None:
        if not self._pending:
            return
        self.batches_synced += 1
        self._turn.append((self.batches_synced, [op for op, _ in self._pending]))
        self._pending.clear()
        if self._call_soon is None:
            self._wake()
        elif len(self._turn) == 1:  # the turn's first batch: wake the writer at its end
            self._call_soon(self._wake)

    def _wake(self) -> None:
        """Encode the batches synced since the last wake-up, and wake the writer for them.

        The records are encoded here, on the syncing thread, so that the
        writer holds the GIL as little as it can: the two threads share one
        interpreter, and each moment the writer runs Python while the loop
        wants to (or the reverse) costs a hand-off of the GIL, with its
        system calls and its wait of up to the switch interval. The writer is
        woken by a byte down a pipe, and that write lets go of the GIL while
        the writer wakes, where a lock's release (a `Condition`, a `queue`)
        keeps it held: measured (py-spy --gil, `d11 bench process --batch 1`),
        5-16% of a replica's time with the GIL went to `Condition.notify`.
        """
        if not self._turn or self._closing:
            return
        batches, self._turn = self._turn, []
        try:
            for n, ops in batches:
                raws = [encode_write(op) for op in ops]
                payload = b"[" + b",".join(raws) + b"]"
                record = _HEADER.pack(len(payload), zlib.crc32(payload)) + payload
                self._handed.append((n, ops, raws, record, time.perf_counter()))
        except BaseException as exc:  # a value the codec refuses: the disk cannot keep it
            self._writer_failed(exc)
            return
        if (
            self._write_here is not None
            and self._write_here(batches[0][0], sum(len(h[3]) for h in self._handed))
            and self._write_lock.acquire(blocking=False)
        ):
            try:  # what the writer has not taken yet goes first: sync order
                handed = list(self._handed)
                self._handed.clear()
                self._write_batches(handed, self._durable_here)
            finally:
                self._write_lock.release()
            return
        if self._writer is None:
            self._wake_r, self._wake_w = os.pipe()
            os.set_blocking(self._wake_w, False)
            self._writer = threading.Thread(
                target=self._write_loop, name=f"disk-{self.path.name}", daemon=True
            )
            self._writer.start()
        self._poke()

    def _poke(self) -> None:
        with contextlib.suppress(BlockingIOError):  # full: the writer has wake-ups to read
            os.write(self._wake_w, b"!")

    def _write_loop(self) -> None:
        """The writer thread: every batch handed over meanwhile, one fsync."""
        while True:
            os.read(self._wake_r, 4096)  # waits without the GIL
            if self._closing:
                return
            with self._write_lock:
                batches = []
                while self._handed:
                    batches.append(self._handed.popleft())
                if batches and not self._write_batches(batches, self.on_durable):
                    return

    def _write_batches(self, batches: list[_Handed], report: Callable[[int], None] | None) -> bool:
        """Append `batches`' records, fsync once, `report`; False if the disk failed."""
        try:
            fsync_start_s = time.perf_counter()
            _write_durably(self._file, b"".join(batch[3] for batch in batches))
            fsync_end_s = time.perf_counter()
            self.fsync_us += int((fsync_end_s - fsync_start_s) * 1e6)
            self.handoff_us += int((fsync_start_s - batches[0][4]) * 1e6)
            self.fsyncs += 1
        except BaseException as exc:  # a disk that cannot write promises nothing
            self._writer_failed(exc)
            return False
        with self._cond:
            self._fsynced_upto = batches[-1][0]
            self._cond.notify_all()
        self.last_report = (batches[-1][0], fsync_end_s)
        if report is not None:
            report(batches[-1][0])
        # After the report, what a compaction needs: the durable state, and the
        # records the new file needs too if one is being written.
        for _, ops, raws, record, _ in batches:
            if self._rewrite is not None:
                self._rewrite.tail.append(record)
            for op, raw in zip(ops, raws, strict=True):
                self._make_durable(op, raw)
        try:  # what was just fsynced never waits for a compaction
            self._compact_beside()
        except BaseException as exc:
            self._writer_failed(exc)
            return False
        return True

    def _writer_failed(self, exc: BaseException) -> None:
        with self._cond:
            self._failed = True
            self._cond.notify_all()
        if self.on_error is not None:
            self.on_error(exc)

    def _compact_beside(self) -> None:
        """The writer thread, between batches: start a rewrite when the file has grown
        `COMPACT_RATIO` times the last snapshot; finish one whose snapshot is written
        (its records since appended, fsynced, renamed over the old file)."""
        rewrite = self._rewrite
        if rewrite is None:
            if self._file.tell() > max(COMPACT_MIN_BYTES, COMPACT_RATIO * self._snapshot_bytes):
                writes = self._encoded.writes(self._durable)  # the state as of now
                self._rewrite = _Rewrite(self.path.with_suffix(self.path.suffix + ".compact"))
                self._rewrite.start(writes, fsync=self.fsync)
            return
        if rewrite.thread.is_alive():
            return  # still copying the snapshot: the next batch looks again
        self._rewrite = None
        if rewrite.error is not None:
            raise rewrite.error
        with open(rewrite.tmp, "ab") as f:
            f.writelines(rewrite.tail)
            f.flush()
            if self.fsync:
                os.fsync(f.fileno())
        os.replace(rewrite.tmp, self.path)
        self._fsync_dir()
        self._file.close()
        self._file = self._open_append()
        self._snapshot_bytes = rewrite.snapshot_bytes

    def _make_durable(self, op: tuple[Any, ...], raw: bytes) -> None:
        self._durable.apply(op)
        self._encoded.apply(op, raw, self._durable)

    @property
    def unsynced_writes(self) -> int:
        return len(self._pending)

    def close(self) -> None:
        """Close the file; unsynced writes are lost, exactly as in a crash."""
        self._pending.clear()
        self._turn.clear()  # not written: lost, as a crash would lose them
        with self._cond:
            self._closing = True  # and so is what the writer has not taken yet
            self._cond.notify_all()
        if self._writer is not None:
            self._poke()
            self._writer.join()  # it finishes the batch it holds first
            os.close(self._wake_r)
            os.close(self._wake_w)
        if self._rewrite is not None:  # never renamed: the old file stays whole
            self._rewrite.thread.join()
            self._rewrite = None
        self._file.close()

    def _write(self, op: tuple[Any, ...]) -> None:
        if self.group_commit:  # the writer thread encodes (see the module docstring)
            self._live.apply(op)
            self._pending.append((op, b""))
            return
        try:
            raw = encode_write(op)  # encode now: a bad value fails at put, not at sync
        except CodecError as exc:
            raise DiskError(f"{op[0]} on {op[1]!r}: value cannot be stored: {exc}") from None
        self._live.apply(op)
        self._pending.append((op, raw))

    # -- recovery -----------------------------------------------------------
    def _recover(self) -> None:
        """Replay whole records; drop a torn tail; refuse corruption before the tail."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        offset = 0
        while offset < len(data):
            record = _parse_record(data, offset)
            if record is None:  # torn: short, impossible length or bad checksum
                if _has_whole_record_after(data, offset):
                    raise DiskError(
                        f"{self.path}: corrupt record at byte {offset} followed by whole "
                        "records; synced data is damaged, refusing to guess"
                    )
                self.torn_bytes_dropped = len(data) - offset
                with open(self.path, "r+b") as f:
                    f.truncate(offset)
                    f.flush()
                    os.fsync(f.fileno())
                break
            payload, offset = record
            self._apply_record(payload)
        self._snapshot_bytes = offset

    def _apply_record(self, payload: bytes) -> None:
        try:
            value = decode_value(payload)
        except CodecError as exc:  # the checksum matched, so the writer wrote this
            raise DiskError(f"{self.path}: record does not decode: {exc}") from None
        if not isinstance(value, list):
            raise DiskError(f"{self.path}: record is not a batch of writes")
        for item in value:
            op = _op_from(item)
            self._make_durable(op, encode_value(list(op)))

    def _open_append(self) -> io.FileIO | io.BufferedWriter:
        """The file, to append to. With group commit, unbuffered and opened O_DSYNC:
        each write is durable when it returns (`_write_durably`)."""
        if self.group_commit:
            return open(self.path, "ab", buffering=0, opener=_dsync_opener)
        return open(self.path, "ab")

    def _fsync_dir(self) -> None:
        if not self.fsync:
            return
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _compact(self) -> None:
        """Rewrite the file as one record of the state's writes (atomically, by rename)."""
        payload = self._encoded.record(self._durable)
        tmp = self.path.with_suffix(self.path.suffix + ".compact")
        with open(tmp, "wb") as f:
            f.write(_HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
            f.flush()
            if self.fsync:
                os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self._fsync_dir()
        self._file.close()
        self._file = self._open_append()
        self._snapshot_bytes = self._file.tell()


class _Rewrite:
    """A compaction beside the writer (group commit): a thread writes and fsyncs the
    snapshot record to `tmp`; the writer keeps, in `tail`, every record it appends to
    the old file meanwhile, and finishes the rewrite once the thread is done."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.tail: list[bytes] = []
        self.snapshot_bytes = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=lambda: None)  # replaced by start()

    def start(self, writes: list[bytes], *, fsync: bool) -> None:
        def write() -> None:
            # The record `_Encoded.record` would make, written piece by piece: one
            # buffer of the whole state (megabytes, freshly mapped) cost 20-45 ms of
            # page faults with the GIL held, a stall of every thread in the process.
            try:
                pieces = [b"[", *_joined(writes, b","), b"]"]
                length, crc = 0, 0
                for piece in pieces:
                    length += len(piece)
                    crc = zlib.crc32(piece, crc)
                with open(self.tmp, "wb") as f:
                    f.write(_HEADER.pack(length, crc))
                    f.writelines(pieces)
                    f.flush()
                    if fsync:
                        os.fsync(f.fileno())
                self.snapshot_bytes = _HEADER.size + length
            except BaseException as exc:  # the writer raises it, as its own
                self.error = exc

        self.thread = threading.Thread(target=write, name=f"compact-{self.tmp.name}", daemon=True)
        self.thread.start()


def _dsync_opener(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_DSYNC)


def _write_durably(file: io.FileIO | io.BufferedWriter, data: bytes) -> None:
    """Append `data` to a file opened O_DSYNC: on disk when this returns.

    One system call where a write and an fsync are two: the writer thread
    lets go of the GIL for each and must take it back after each, and when
    the loop is busy each taking back waits up to the switch interval.
    O_DSYNC makes every write durable as `fdatasync` would, the data and
    what reading it needs (the file's new size): what the fsync was for.
    """
    view = memoryview(data)
    while view:
        written = file.write(view)
        if not written:  # a raw file writes at least a byte, or raises
            raise OSError(f"write to {file.name!r} wrote nothing")
        view = view[written:]


def _joined(items: list[bytes], sep: bytes) -> list[bytes]:
    """`sep.join(items)` as pieces, nothing copied."""
    out: list[bytes] = []
    for i, item in enumerate(items):
        if i:
            out.append(sep)
        out.append(item)
    return out


def _parse_record(data: bytes, offset: int) -> tuple[bytes, int] | None:
    """(payload, next offset) of the whole record at `offset`, or None if torn."""
    if offset + _HEADER.size > len(data):
        return None
    length, crc = _HEADER.unpack_from(data, offset)
    start = offset + _HEADER.size
    if length > RECORD_BYTES_MAX or start + length > len(data):
        return None
    payload = data[start : start + length]
    if zlib.crc32(payload) != crc:
        return None
    return payload, start + length


def _has_whole_record_after(data: bytes, offset: int) -> bool:
    """Is there a valid record anywhere after a bad one? Then it is not a torn tail.

    A crash tears only the last write, so everything after the bad record must
    be that same write's bytes. If a well-formed record starts at a later
    offset, something damaged data that had been synced before it.
    """
    if offset + _HEADER.size <= len(data):
        length, _ = _HEADER.unpack_from(data, offset)
        if length <= RECORD_BYTES_MAX and offset + _HEADER.size + length < len(data):
            # The bad record's own extent ends before the file does: look past it.
            return _parse_record(data, offset + _HEADER.size + length) is not None
    return False


def encode_write(op: tuple[Any, ...]) -> bytes:
    """The codec bytes of one write, `encode_value(list(op))`.

    Encode once: a put of a message goes through `encode`, which remembers
    the bytes of the messages a node sent or received lately (a Paxos vote is
    the Accept itself, sent or received) and, put first, lets the send reuse
    them. They are spliced into the list by hand: JSON's `[a,b,c]` is its
    items' bytes joined by commas, so the record is what the codec writes.
    """
    if op[0] == "put" and isinstance(op[2], Message):
        return b'["put",' + encode_value(op[1]) + b"," + encode(op[2]) + b"]"
    return encode_value(list(op))


def _op_from(value: Any) -> tuple[Any, ...]:
    if not isinstance(value, list) or not value or not isinstance(value[0], str):
        raise DiskError(f"malformed disk write {value!r:.80}")
    return tuple(value)


class _Encoded:
    """The durable state as encoded writes: for each key the put that set it,
    for each log its first index and the appends it still holds. Replayed on
    an empty disk, `record()` rebuilds the state exactly."""

    def __init__(self) -> None:
        self.puts: dict[str, bytes] = {}
        self.logs: dict[str, list[bytes]] = {}

    def apply(self, op: tuple[Any, ...], raw: bytes, after: DiskState) -> None:
        """Follow `op` (encoded as `raw`), already applied to `after`."""
        kind, name = op[0], op[1]
        if kind == "put":
            self.puts[name] = raw
        elif kind == "delete":
            self.puts.pop(name, None)
        elif kind == "append":
            self.logs.setdefault(name, []).append(raw)
        else:  # truncate_prefix, truncate_suffix, log_start: keep what `after` kept
            kept = len(after.logs.get(name, []))
            raws = self.logs.get(name, [])
            self.logs[name] = raws[:kept] if kind == "truncate_suffix" else raws[len(raws) - kept :]
        assert len(self.logs.get(name, ())) == len(after.logs.get(name, ())), op[:2]

    def record(self, state: DiskState) -> bytes:
        return b"[" + b",".join(self.writes(state)) + b"]"

    def writes(self, state: DiskState) -> list[bytes]:
        """The encoded writes `record` joins: a new list, the bytes themselves shared."""
        raws = list(self.puts.values())
        for log, appends in self.logs.items():
            raws.append(encode_value(["log_start", log, state.log_first.get(log, 0)]))
            raws.extend(appends)
        return raws
