"""Group commit: many syncs share one fsync, and no message leaves before its fsync."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Hashable
from pathlib import Path

import pytest

import reference.disk.file as file_disk
from reference.codec import Message
from reference.disk.file import FileDisk
from reference.node import Context, Node, NodeId
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
    fsync_may_finish = threading.Event()
    real_fsync = file_disk.os.fsync

    def slow_fsync(fd: int) -> None:
        assert fsync_may_finish.wait(WAIT_S), "test bug: fsync never released"
        real_fsync(fd)

    async def scenario() -> None:
        disk = FileDisk(tmp_path / "n.disk", group_commit=True)
        monkeypatch.setattr(file_disk.os, "fsync", slow_fsync)  # after the file's creation
        config = TransportConfig("n", "127.0.0.1", 0, "c", None, addrs={"peer": ("127.0.0.1", 9)})
        host = NodeHost(
            _SyncThenSend,
            config,
            disk=disk,
            clock=Clock(time.monotonic()),
            seed=1,
            incarnation=0,
            metrics=ForwardingMetrics(),
            on_fatal=lambda exc: pytest.fail(f"node crashed: {exc!r}"),
        )
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
        host.stop()

    asyncio.run(scenario())
