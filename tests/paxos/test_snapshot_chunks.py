"""Snapshots on disk: sealed chunks are written once, named by content, and
dropped when no snapshot names them; a restart and a catch-up get them back."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from reference.codec import encode_value
from reference.disk.file import FileDisk
from reference.disk.sim import SimDisk
from reference.ledger.records import LedgerSnapshot
from reference.mq.messages import Payload, StoredMessage, TraceEntry
from reference.paxos import KVStore, PaxosConfig, Replica
from reference.paxos.chunks import KEY_CHUNK, Chunked, ChunkRef, ChunkStore, _is_flat
from reference.paxos.messages import Accept, CatchUpReply, CatchUpRequest, Membership
from reference.paxos.replica import KEY_SNAPSHOT
from reference.testing import RecordingContext

THREE = Membership(1, ("n2", "n1", "n3"))  # n2 first: it compacts at phase 0


class CountingDisk(SimDisk):
    def __init__(self) -> None:
        super().__init__()
        self.chunk_puts = 0

    def put(self, key: str, value: Any) -> None:
        self.chunk_puts += key.startswith(KEY_CHUNK)
        super().put(key, value)


def follow(node: Replica, ctx: RecordingContext, slots: range) -> None:
    """Accept and learn `slots`, each a batch of 8 requests."""
    for slot in slots:
        batch = tuple((f"s{slot}r{i}", ("put", f"k{i}", slot)) for i in range(8))
        node.on_message(ctx, "n1", Accept((1, "n1"), 1, slot, batch, slot - 1))


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("reference.paxos.chunks.CHUNK_MIN_BYTES", 64)
    monkeypatch.setattr("reference.paxos.replicated_state.DEDUP_CHUNK_REQUESTS", 16)


CFG = PaxosConfig(membership=THREE, snapshot_every_slots=4, dedup_max_requests=64)


def started(disk: SimDisk) -> tuple[Replica, RecordingContext]:
    """n2, a follower that has accepted and learned slots 1..5 (one compaction, at 4)."""
    ctx = RecordingContext(node_id="n2", disk=disk)
    node = Replica("n2", CFG, KVStore)
    node.on_start(ctx)
    follow(node, ctx, range(1, 6))
    return node, ctx


def test_compaction_writes_each_chunk_once_and_drops_unnamed_ones() -> None:
    cfg = CFG
    disk = CountingDisk()
    node, ctx = started(disk)
    assert node.snapshot_slot == 4
    stored = disk.get(KEY_SNAPSHOT)
    refs = [x for x in stored[1][1] if isinstance(x, ChunkRef)]
    assert len(refs) == 2 and disk.chunk_puts == 2  # 32 results: two sealed chunks of 16
    follow(node, ctx, range(6, 10))  # the second compaction, at slot 8
    assert node.snapshot_slot == 8
    assert disk.chunk_puts == 4  # only the two chunks sealed since: 64 results in all
    follow(node, ctx, range(10, 30))  # past dedup_max: the oldest chunks are forgotten
    node.sync(ctx)
    on_disk = set(disk.keys(KEY_CHUNK))
    named = {x.key for x in disk.get(KEY_SNAPSHOT)[1][1] if isinstance(x, ChunkRef)}
    assert on_disk == named and len(named) >= 64 // 16
    assert disk.chunk_puts == (node.snapshot_slot * 8) // 16  # each one written once, ever

    # A restart restores the state from the record and its chunks.
    disk.crash()
    again = Replica("n2", cfg, KVStore)
    again.on_start(RecordingContext(node_id="n2", disk=disk))
    assert again.commit_index >= node.snapshot_slot
    assert again.state.results.keys() >= {f"s{node.snapshot_slot}r{i}" for i in range(8)}

    # A lagging replica asks for a catch-up: it gets the chunks' bytes, not refs.
    node.on_message(ctx, "n3", CatchUpRequest(1))
    reply = ctx.sent[-1][1]
    assert isinstance(reply, CatchUpReply) and reply.snapshot is not None
    sealed = reply.snapshot[1][1]
    assert sealed and all(isinstance(x, bytes) for x in sealed)
    late_disk = SimDisk()
    late = Replica("n3", cfg, KVStore)
    late_ctx = RecordingContext(node_id="n3", disk=late_disk)
    late.on_start(late_ctx)
    late.on_message(late_ctx, "n2", reply)
    assert late.commit_index >= node.snapshot_slot
    assert set(late_disk.keys(KEY_CHUNK)) == on_disk  # named by content: the same keys


def test_a_snapshot_naming_a_missing_chunk_is_refused() -> None:
    disk = SimDisk()
    node, ctx = started(disk)
    node.sync(ctx)
    disk.delete(disk.keys(KEY_CHUNK)[0])
    disk.sync()
    with pytest.raises(ValueError, match="not on disk"):
        Replica("n2", CFG, KVStore).on_start(RecordingContext(node_id="n2", disk=disk))


def test_replicas_compact_at_different_slots() -> None:
    """Each replica's compactions are shifted by its rank, so a leader and the
    quorum it waits for never all pause for a snapshot at the same slot."""
    cfg = PaxosConfig(membership=THREE, snapshot_every_slots=64)
    firsts = [Replica(n, cfg, KVStore)._next_compaction_slot() for n in THREE.data]
    assert firsts == [64, 21, 42]
    node = Replica("n1", cfg, KVStore)
    node.snapshot_slot = 21
    assert node._next_compaction_slot() == 85  # then every 64 slots, same phase


def test_a_long_tuple_is_walked_alike_with_or_without_its_last_walk() -> None:
    """A long tuple's items known chunk-free from the last store are skipped
    (by the memo); the record must be what a fresh walk makes."""
    blob = b"x" * 64  # a chunk (CHUNK_MIN_BYTES is 64 here)
    old = [(f"r{i}", (i, "ok")) for i in range(40)]
    kept, fresh = ChunkStore(), ChunkStore()
    kept.store(SimDisk(), (1, tuple(old)))  # the walk `kept` remembers
    # The same entries again, a new one holding a chunk, a repeat, and new leaves.
    value = (2, (*old, ("r40", (blob,)), old[3], ("r41", (41, "ok")), "leaf"))
    stored = kept.store(SimDisk(), value)
    assert stored == fresh.store(SimDisk(), value)
    assert stored[1][40] == ("r40", (ChunkRef(kept.keys_by_id[id(blob)][1]),))
    assert stored[1][:40] == value[1][:40] and stored[1][40:] != value[1][40:]
    assert kept._chunk_free.keys() == fresh._chunk_free.keys()  # the same memo for the next


def test_a_message_of_scalars_tuples_and_flat_messages_is_not_looked_inside() -> None:
    """A broker's commit log and trace topic (messages holding a flat payload, a
    trace context, a tuple of (name, scalar) pairs) are leaves of the walk; a
    message that may hold bytes is still looked inside, and its bytes stored."""
    assert _is_flat(StoredMessage) and _is_flat(TraceEntry)
    assert not _is_flat(CatchUpReply)  # (its snapshot: `tuple[int, Any]`)
    log = tuple(
        StoredMessage(i, f"m{i}", "payments", 0, "k", Payload(f"p{i}", "u1", "m1", 5), i)
        for i in range(3)
    )
    trace = (TraceEntry("m0", "stored", 1.5, "brk", (("queue", 0), ("tagged", True))),)
    big = b"x" * 100  # over the test's 64-byte chunks
    disk = SimDisk()
    stored = ChunkStore().store(disk, (log, trace, CatchUpReply((), (3, big))))
    assert stored[0] is log and stored[1] is trace  # the same objects: nothing inside them
    chunked = stored[2]  # a ref where the message's type says bytes: stored unchecked
    assert isinstance(chunked, Chunked) and chunked.tag == "paxos.CatchUpReply"
    ref = chunked.fields[1][1]
    assert isinstance(ref, ChunkRef) and disk.get(ref.key) == big
    assert ChunkStore().load(disk, stored)[2] == CatchUpReply((), (3, big))


def test_a_ledger_snapshot_with_a_sealed_segment_is_read_back_from_a_file_disk(
    tmp_path: Path,
) -> None:
    """The codec checks each field against its type as it decodes: a LedgerSnapshot
    holding a ChunkRef where `segments` says bytes was written to a file and could
    not be read back, so a process replica whose ledger had sealed a segment did not
    restart (`d11 test ch4 --backend process`, 30 s under kill and partitions)."""
    segment = encode_value(tuple(range(200)))  # over the test's 64-byte chunks
    snapshot = LedgerSnapshot(2, 0, (), (segment,), (), (), (), ())
    disk = FileDisk(tmp_path / "n2.disk", fsync=False)
    chunks = ChunkStore()
    disk.put(KEY_SNAPSHOT, chunks.store(disk, (7, snapshot)))
    disk.sync()
    disk.close()
    again = FileDisk(tmp_path / "n2.disk", fsync=False)  # a restart reads every record
    assert ChunkStore().load(again, again.get(KEY_SNAPSHOT), recovering=True) == (7, snapshot)
    again.close()


def test_a_long_tuple_grown_from_one_walked_before_still_has_its_new_chunks_found() -> None:
    """A long tuple that begins with the last snapshot's chunk-free one is walked
    from where that one ended (a dedup table's tail): what is new is still looked at."""
    store, disk = ChunkStore(), SimDisk()
    entries = tuple((f"r{i}", (i, "ok")) for i in range(100))
    assert store.store(disk, (1, entries)) == (1, entries)  # chunk-free: stored as it is
    big = b"x" * 100
    grown = (*entries, ("r100", (100, big)), ("r101", (101, "ok")))
    stored = store.store(disk, (2, grown))
    assert stored[1][:100] == entries and stored[1][101] == grown[101]
    assert stored[1][100] == ("r100", (100, ChunkRef(KEY_CHUNK + _digest(big))))
    assert store.load(disk, stored) == (2, grown)
    # A tuple with the same first entry but another one later is not taken for it.
    changed = (entries[0], ("r1", (1, big)), *entries[2:])
    assert store.store(disk, (3, changed))[1][1] == ("r1", (1, ChunkRef(KEY_CHUNK + _digest(big))))


def _digest(chunk: bytes) -> str:
    return hashlib.sha256(chunk).hexdigest()[:32]
