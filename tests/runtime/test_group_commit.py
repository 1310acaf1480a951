"""Group commit: many syncs share one fsync, and no message leaves before its fsync."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import pytest

import reference.disk.file as file_disk
import reference.runtime.host as host_module
from reference.codec import Message
from reference.disk.file import FileDisk
from reference.node import Context, Node, NodeFactory, NodeId
from reference.runtime.control import ForwardingMetrics
from reference.runtime.examples import Beat
from reference.runtime.host import Clock, NodeHost
from reference.runtime.transport import TransportConfig

WAIT_S = 5.0  # bound on every wait below


def test_group_commit_disk_is_durable_once_reported(tmp_path: Path) -> None:
    path = tmp_path / "n.disk"
    disk = FileDisk(path, group_commit=True)
    reported: list[int] = []
    disk.on_durable = reported.append
    for i in range(20):
        disk.put(f"k{i}", i)
        disk.append("log", i)
        disk.sync()
    assert disk.batches_synced == 20 and disk.get("k19") == 19  # reads see writes at once
    disk.wait_durable()
    assert disk.batches_durable == 20 and not disk.owed
    assert reported == sorted(reported) and reported[-1] == 20  # monotone, ends at the last
    assert len(reported) <= 20  # batches share fsyncs (as many as 20 if the writer kept up)
    assert disk.fsyncs == len(reported)  # each report, one fsync (timed in fsync_us)
    disk.close()
    again = FileDisk(path)
    assert [again.get(f"k{i}") for i in range(20)] == list(range(20))
    assert [r for _, r in again.read_log("log")] == list(range(20))
    again.close()


def test_a_closed_group_commit_disk_drops_what_it_has_not_written(tmp_path: Path) -> None:
    path = tmp_path / "n.disk"
    disk = FileDisk(path, group_commit=True)
    disk.put("kept", 1)
    disk.sync()
    disk.wait_durable()
    disk.put("unsynced", 2)  # never synced: lost in a crash, as with SimDisk
    disk.close()
    again = FileDisk(path)
    assert again.get("kept") == 1 and again.get("unsynced") is None
    again.close()


def _hosted(
    factory: NodeFactory, disk: FileDisk, metrics: ForwardingMetrics | None = None
) -> NodeHost:
    """Node "n" on `disk`, its one peer never dialed (tests replace `send`)."""
    config = TransportConfig("n", "127.0.0.1", 0, "c", None, addrs={"peer": ("127.0.0.1", 9)})
    return NodeHost(
        factory,
        config,
        disk=disk,
        clock=Clock(time.monotonic()),
        seed=1,
        incarnation=0,
        metrics=metrics if metrics is not None else ForwardingMetrics(),
        on_fatal=lambda exc: pytest.fail(f"node crashed: {exc!r}"),
    )


class _SyncThenSend(Node):
    """On start: write, sync, then send; the send must wait for the fsync."""

    def __init__(self, node_id: NodeId) -> None:
        self.node_id = node_id

    def on_start(self, ctx: Context) -> None:
        ctx.send("peer", Beat(0))  # before any sync: leaves at once
        ctx.disk.put("vote", 1)
        ctx.disk.sync()
        ctx.send("peer", Beat(1))  # after the sync: only once it is on disk

    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        pass

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        pass


def test_a_message_sent_after_sync_waits_for_the_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The writer thread's fsync, held back while the loop goes on (a mode that
    # writes on the loop, the default "acks" here, would block the loop itself).
    monkeypatch.setenv(host_module.DISK_WRITER_ENV, "thread")
    fsync_may_finish = threading.Event()
    real_write = file_disk._write_durably  # the write that is the fsync (O_DSYNC)

    def slow_fsync(file: Any, data: bytes) -> None:
        assert fsync_may_finish.wait(WAIT_S), "test bug: fsync never released"
        real_write(file, data)

    async def scenario() -> None:
        disk = FileDisk(tmp_path / "n.disk", group_commit=True)
        monkeypatch.setattr(file_disk, "_write_durably", slow_fsync)
        metrics = ForwardingMetrics()
        host = _hosted(_SyncThenSend, disk, metrics)
        sent: list[Message] = []
        monkeypatch.setattr(host.transport, "send", lambda dst, msg: sent.append(msg))
        await host.start()
        await asyncio.sleep(0.05)
        assert sent == [Beat(0)], "a message left before the sync it follows was fsynced"
        assert not disk.batches_durable
        fsync_may_finish.set()
        deadline = time.monotonic() + WAIT_S
        while len(sent) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        assert sent == [Beat(0), Beat(1)] and disk.batches_durable == 1
        # The wait is counted per message type (the bench's budget reads it):
        # one Beat held, for at least the 50 ms the fsync was held back.
        assert metrics.counts["fsync_held.Beat"] == 1
        assert metrics.counts["fsync_held_us.Beat"] >= 40_000
        host.stop()

    asyncio.run(scenario())


class _ThreeSyncsThenSend(_SyncThenSend):
    """On start: three writes, each synced, then one send."""

    def on_start(self, ctx: Context) -> None:
        for i in range(3):
            ctx.disk.put(f"k{i}", i)
            ctx.disk.sync()
        ctx.send("peer", Beat(1))


def test_the_syncs_of_one_turn_go_to_the_writer_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hosted disk hands its batches to the writer once per turn of the loop, at
    the turn's end: three syncs in one handler, one hand-off, one fsync."""

    async def scenario() -> None:
        disk = FileDisk(tmp_path / "n.disk", group_commit=True)
        host = _hosted(_ThreeSyncsThenSend, disk)
        sent: list[Message] = []
        monkeypatch.setattr(host.transport, "send", lambda dst, msg: sent.append(msg))
        await host.start()  # on_start ran; the loop has not turned since
        assert disk.batches_synced == 3 and disk.fsyncs == 0 and not sent
        deadline = time.monotonic() + WAIT_S
        while not sent and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        assert sent == [Beat(1)] and disk.batches_durable == 3
        assert disk.fsyncs == 1  # the three batches, one record each, one fsync
        host.stop()

    asyncio.run(scenario())


def test_batches_are_reported_durable_while_a_compaction_copies_the_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compaction copies the whole state; with group commit it must not hold the
    batches synced meanwhile (in `d11 bench mq` a 4 MB broker file's compaction, done
    by the writer, held every send for 50-84 ms: the whole p99). The new file's
    snapshot write is held here until the end; batches go on being reported."""
    monkeypatch.setattr(file_disk, "COMPACT_MIN_BYTES", 2_000)
    copy_may_finish = threading.Event()
    real_open = open

    def held_open(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if mode == "wb" and str(path).endswith(".compact"):  # the snapshot's new file
            assert copy_may_finish.wait(WAIT_S), "test bug: the copy was never released"
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(file_disk, "open", held_open, raising=False)
    path = tmp_path / "n.disk"
    disk = FileDisk(path, group_commit=True)
    durable = threading.Condition()
    reported = [0]  # the highest batch reported durable
    disk.on_durable = lambda n: _note(durable, reported, n)
    try:
        for i in range(100):  # some 8,000 bytes of records, a state of about 1,000
            disk.put(f"k{i % 7}", ("x" * 60, i))
            disk.append("log", i)
            disk.sync()
            with durable:
                done = durable.wait_for(lambda: reported[0] >= disk.batches_synced, 2.0)
            assert done, f"batch {disk.batches_synced} waited for the compaction"
        rewrite = disk._rewrite
        assert rewrite is not None and rewrite.thread.is_alive()  # begun, and still copying
    finally:
        copy_may_finish.set()
    rewrite.thread.join(WAIT_S)
    disk.put("k0", ("x" * 60, 100))
    disk.sync()  # the writer finishes the rewrite after this batch's report
    disk.wait_durable()
    disk.close()
    assert disk._snapshot_bytes > 0  # the new file replaced the old
    again = FileDisk(path)
    assert again.get("k0") == ("x" * 60, 100) and again.get("k6") == ("x" * 60, 97)
    assert [r for _, r in again.read_log("log")] == list(range(100))
    again.close()


def _note(cond: threading.Condition, reported: list[int], batch: int) -> None:
    with cond:
        reported[0] = batch
        cond.notify_all()


def test_a_crash_while_a_compaction_copies_keeps_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closed (as a crash closes it) before the new file is renamed over the old: the
    old file holds every batch reported durable, and the half-written new file is
    neither read nor in the way of the next compaction."""
    monkeypatch.setattr(file_disk, "COMPACT_MIN_BYTES", 2_000)
    copy_may_finish = threading.Event()
    real_open = open

    def held_open(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        f = real_open(path, mode, *args, **kwargs)
        if mode == "wb" and str(path).endswith(".compact"):
            f.write(b"half a snapshot")  # what a crash mid-copy leaves
            f.flush()
            assert copy_may_finish.wait(WAIT_S), "test bug: the copy was never released"
        return f

    monkeypatch.setattr(file_disk, "open", held_open, raising=False)
    path = tmp_path / "n.disk"
    disk = FileDisk(path, group_commit=True)
    for i in range(60):
        disk.append("log", ("x" * 60, i))
        disk.sync()
        disk.wait_durable()
    assert disk._rewrite is not None  # copying, held
    copy_may_finish.set()  # the copy goes on, but the crash comes before the rename
    disk._rewrite.thread.join(WAIT_S)
    disk.close()
    monkeypatch.setattr(file_disk, "open", real_open, raising=False)
    again = FileDisk(path, group_commit=True)
    assert [r[1] for _, r in again.read_log("log")] == list(range(60))
    for i in range(60, 120):  # and compacts again, over the stale new file
        again.append("log", ("x" * 60, i))
        again.sync()
        again.wait_durable()
    again.close()
    assert [r[1] for _, r in FileDisk(path).read_log("log")] == list(range(120))


class _SyncThenZeroTimer(_SyncThenSend):
    """On start: write and sync, then a timer due at once (a follower's learn timer)."""

    def __init__(self, node_id: NodeId) -> None:
        super().__init__(node_id)
        self.order: list[str] = []

    def on_start(self, ctx: Context) -> None:
        ctx.disk.put("vote", 1)
        ctx.disk.sync()
        ctx.set_timer(0.0, "learn")

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        self.order.append(f"timer {tag}")


@pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
def test_a_zero_delay_timer_fires_after_the_turns_disk_hand_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loop_name: str
) -> None:
    """A timer set for 0 ms fires after the disk's hand-off its turn queued before it:
    a follower syncs an Accept, then arms its learn timer (`learn_delay_ms` 0), and the
    previous slot's apply must run while that fsync is under way, not before it begins.
    Both loops keep that order (uvloop runs a 0 ms `call_later` as a `call_soon`; the
    standard loop runs it after the next poll); this pins it."""
    if loop_name == "uvloop":
        uvloop = pytest.importorskip("uvloop", reason="no uvloop here (pyproject: not on Windows)")
        factory = uvloop.new_event_loop
    else:
        factory = asyncio.new_event_loop
    node = _SyncThenZeroTimer("n")
    real_wake = FileDisk._wake

    def wake(self: FileDisk) -> None:
        if self._turn:
            node.order.append("disk hand-off")
        real_wake(self)

    monkeypatch.setattr(FileDisk, "_wake", wake)

    async def scenario() -> None:
        host = _hosted(lambda node_id: node, FileDisk(tmp_path / "n.disk", group_commit=True))
        await host.start()
        deadline = time.monotonic() + WAIT_S
        while len(node.order) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        assert node.order == ["disk hand-off", "timer learn"]
        host.stop()

    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(scenario())


class _SyncOnly(_SyncThenSend):
    """On start: send, then write and sync (a leader's Accepts leave before its vote's
    sync): nothing waits for the fsync. With `size`, the write is that many bytes."""

    size = 1

    def on_start(self, ctx: Context) -> None:
        ctx.send("peer", Beat(0))
        ctx.disk.put("vote", "v" * self.size)
        ctx.disk.sync()


class _BigSyncThenSend(_SyncThenSend):
    """On start: a write larger than LOOP_WRITE_BYTES_MAX, synced, then a send."""

    def on_start(self, ctx: Context) -> None:
        ctx.disk.put("vote", "v" * (host_module.LOOP_WRITE_BYTES_MAX + 1))
        ctx.disk.sync()
        ctx.send("peer", Beat(1))


@pytest.mark.parametrize(
    ("mode", "factory", "on_loop"),
    [
        ("thread", _SyncThenSend, False),  # the writer thread, always
        ("acks", _SyncThenSend, True),  # a message waits for this turn's sync alone
        ("acks", _SyncOnly, False),  # none waits: the loop goes on, the writer writes
        ("acks", _BigSyncThenSend, False),  # a large record: its apply is worth overlapping
        ("loop", _SyncOnly, True),  # every turn on the loop
    ],
)
def test_who_writes_a_turns_syncs(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    factory: NodeFactory,
    on_loop: bool,
) -> None:
    """D11_DISK_WRITER: the loop writes a turn's batches itself (no writer thread is
    ever started) only when the mode says so; either way every send still waits for
    the fsync before it, and the batch is durable and counted."""
    monkeypatch.setenv(host_module.DISK_WRITER_ENV, mode)

    async def scenario() -> None:
        disk = FileDisk(tmp_path / "n.disk", group_commit=True)
        host = _hosted(factory, disk)
        sent: list[Message] = []
        monkeypatch.setattr(host.transport, "send", lambda dst, msg: sent.append(msg))
        await host.start()
        deadline = time.monotonic() + WAIT_S
        while disk.batches_durable < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.01)  # the loop hears a writer thread's report
        assert disk.batches_durable == 1 and disk.fsyncs == 1 and not host._unsent
        assert (disk._writer is None) == on_loop
        assert sent in ([Beat(0)], [Beat(1)], [Beat(0), Beat(1)])
        host.stop()

    asyncio.run(scenario())


def test_batches_written_on_the_loop_and_by_the_writer_keep_their_order(tmp_path: Path) -> None:
    """A turn written on the loop takes first what the writer thread has not taken yet,
    and the two never write at once: the file's records stay in sync order."""
    path = tmp_path / "n.disk"
    disk = FileDisk(path, group_commit=True)
    turns: list[Callable[[], None]] = []
    here = [False]
    reported: list[int] = []
    disk.on_durable = reported.append
    disk.wake_once_per_turn(turns.append, lambda first, size: here[0], reported.append)
    for i in range(40):
        here[0] = i % 3 == 0  # every third turn on the "loop" (this thread)
        disk.put("k", i)
        disk.append("log", i)
        disk.sync()
        turns.pop()()  # the turn's end
    disk.wait_durable()
    assert disk.batches_durable == 40 and max(reported) == 40
    disk.close()
    again = FileDisk(path)
    assert again.get("k") == 39 and [r for _, r in again.read_log("log")] == list(range(40))
    again.close()


def test_the_default_writer_is_acks_and_a_misspelt_one_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unset, D11_DISK_WRITER means "acks" (a follower's small vote written on its own
    loop); a value that is no mode stops the host at start, naming the modes, rather
    than silently running (and measuring) another one."""
    monkeypatch.delenv(host_module.DISK_WRITER_ENV, raising=False)
    assert host_module.DISK_WRITER_DEFAULT == "acks"

    async def writes_on_the_loop() -> bool:
        disk = FileDisk(tmp_path / "a.disk", group_commit=True)
        host = _hosted(_SyncThenSend, disk)
        monkeypatch.setattr(host.transport, "send", lambda dst, msg: None)
        await host.start()
        deadline = time.monotonic() + WAIT_S
        while disk.batches_durable < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        on_loop = disk.batches_durable == 1 and disk._writer is None
        host.stop()
        return on_loop

    assert asyncio.run(writes_on_the_loop())

    monkeypatch.setenv(host_module.DISK_WRITER_ENV, "ack")

    async def refused() -> None:
        host = _hosted(_SyncThenSend, FileDisk(tmp_path / "b.disk", group_commit=True))
        with pytest.raises(host_module.DiskWriterError, match="expected one of acks, thread, loop"):
            await host.start()

    asyncio.run(refused())
