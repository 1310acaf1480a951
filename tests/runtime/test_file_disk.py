"""FileDisk: SimDisk's semantics on a real file; torn tails dropped, synced data kept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference.disk.base import Disk, DiskError
from reference.disk.file import FileDisk
from reference.disk.sim import SimDisk


def _view(disk: Any) -> tuple[Any, ...]:
    logs = ("a", "b")
    return (
        {k: disk.get(k) for k in disk.keys("")},
        {log: (disk.log_bounds(log), disk.read_log(log)) for log in logs},
    )


_values = st.one_of(st.integers(-5, 5), st.text(max_size=3), st.tuples(st.integers(0, 3)))
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.sampled_from("xyz"), _values),
        st.tuples(st.just("delete"), st.sampled_from("xyz")),
        st.tuples(st.just("append"), st.sampled_from("ab"), _values),
        st.tuples(st.just("truncate_prefix"), st.sampled_from("ab"), st.integers(0, 6)),
        st.tuples(st.just("truncate_suffix"), st.sampled_from("ab"), st.integers(0, 6)),
        st.tuples(st.just("sync")),
        st.tuples(st.just("crash")),
    ),
    max_size=40,
)


@settings(max_examples=60)
@given(ops=_ops)
def test_file_disk_behaves_like_sim_disk_across_syncs_and_crashes(
    ops: list[tuple[Any, ...]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    _same_as_sim_disk(ops, tmp_path_factory)


@settings(max_examples=60)
@given(ops=_ops)
def test_compaction_at_every_sync_changes_nothing(
    ops: list[tuple[Any, ...]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Compaction rewrites the file from the writes' stored bytes (log starts,
    truncated logs, deleted keys and all); recovery from it is exact."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("reference.disk.file.COMPACT_MIN_BYTES", 0)
        patch.setattr("reference.disk.file.COMPACT_RATIO", 0)
        _same_as_sim_disk(ops, tmp_path_factory)


def _same_as_sim_disk(ops: list[tuple[Any, ...]], tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("disk") / "n.disk"
    sim, real = SimDisk(), FileDisk(path, fsync=False)
    assert isinstance(real, Disk)
    for op in ops:
        if op[0] == "crash":
            sim.crash()
            real.close()
            real = FileDisk(path, fsync=False)  # recovery from the file alone
        elif op[0] == "truncate_suffix" and op[2] < sim.log_bounds(op[1])[0]:
            with pytest.raises(DiskError):
                real.truncate_suffix(op[1], op[2])
        else:
            getattr(sim, op[0])(*op[1:])
            getattr(real, op[0])(*op[1:])
        assert _view(real) == _view(sim)
    real.close()


def test_torn_tail_is_dropped_and_synced_records_survive(tmp_path: Path) -> None:
    path = tmp_path / "n.disk"
    disk = FileDisk(path)
    for i in range(5):
        disk.append("wal", {"i": i, "pad": "x" * 100})
        disk.sync()
    synced_bytes = path.stat().st_size
    disk.append("wal", {"i": 5, "pad": "y" * 100})
    disk.sync()
    disk.close()
    whole = path.read_bytes()
    for cut in (synced_bytes + 3, synced_bytes + 20, len(whole) - 1):  # torn mid-header, mid-body
        path.write_bytes(whole[:cut])
        recovered = FileDisk(path)
        assert [r["i"] for _, r in recovered.read_log("wal")] == [0, 1, 2, 3, 4]
        assert recovered.torn_bytes_dropped == cut - synced_bytes
        assert path.stat().st_size == synced_bytes  # the torn bytes are gone from the file
        recovered.append("wal", {"i": 99})  # and appending after recovery works
        recovered.sync()
        recovered.close()
        assert [r["i"] for _, r in FileDisk(path).read_log("wal")] == [0, 1, 2, 3, 4, 99]


def test_garbage_in_the_last_record_is_never_read_as_data(tmp_path: Path) -> None:
    path = tmp_path / "n.disk"
    disk = FileDisk(path)
    disk.put("k", "synced")
    disk.sync()
    size = path.stat().st_size
    disk.put("k", "torn")
    disk.sync()
    disk.close()
    data = bytearray(path.read_bytes())
    data[size + 12] ^= 0xFF  # flip a bit in the last record's payload: checksum fails
    path.write_bytes(bytes(data))
    assert FileDisk(path).get("k") == "synced"


def test_corruption_before_the_tail_is_refused_not_skipped(tmp_path: Path) -> None:
    path = tmp_path / "n.disk"
    disk = FileDisk(path)
    for i in range(3):
        disk.put(f"k{i}", i)
        disk.sync()
    disk.close()
    data = bytearray(path.read_bytes())
    data[10] ^= 0xFF  # inside the first record, with whole records after it
    path.write_bytes(bytes(data))
    with pytest.raises(DiskError, match="corrupt record at byte 0"):
        FileDisk(path)


def test_compaction_keeps_the_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("reference.disk.file.COMPACT_MIN_BYTES", 2_000)
    path = tmp_path / "n.disk"
    disk = FileDisk(path, fsync=False)
    for i in range(200):
        disk.append("wal", i)
        disk.put("last", i)
        if i % 10 == 9:
            disk.truncate_prefix("wal", i - 5)
        disk.sync()
    assert path.stat().st_size < 2_000 * 4  # compacted, not 200 records long
    before = _view_wal(disk)
    disk.close()
    assert _view_wal(FileDisk(path)) == before


def _view_wal(disk: FileDisk) -> tuple[Any, ...]:
    return disk.get("last"), disk.log_bounds("wal"), disk.read_log("wal")


def test_unencodable_value_fails_at_put(tmp_path: Path) -> None:
    disk = FileDisk(tmp_path / "n.disk")
    with pytest.raises(DiskError, match="cannot be stored"):
        disk.put("k", object())
    assert disk.unsynced_writes == 0


_WRITER = textwrap.dedent(
    """
    import sys
    from reference.disk.file import FileDisk
    disk = FileDisk(sys.argv[1])
    i = disk.get("i", -1) + 1
    while True:
        disk.put("i", i)
        disk.append("wal", "x" * 20_000)  # big records: a kill lands mid-write often
        disk.sync()
        print(i, flush=True)  # only after sync() returned
        i += 1
    """
)


def test_a_process_killed_mid_write_loses_nothing_it_synced(tmp_path: Path) -> None:
    path = tmp_path / "n.disk"
    for round_ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        acked = int(proc.stdout.readline())  # at least one sync done this round
        time.sleep(0.05 + 0.03 * round_)
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        lines = out.split()
        acked = int(lines[-1]) if lines else acked
        disk = FileDisk(path)
        assert disk.get("i") >= acked, f"synced {acked} but recovered {disk.get('i')}"
        first, end = disk.log_bounds("wal")
        assert end - first == disk.get("i") + 1  # the value and the log agree: syncs are atomic
        disk.close()


def test_a_put_of_a_message_shares_its_bytes_with_the_wire(tmp_path: Path) -> None:
    """Encode once: a message's record and its frame hold the same bytes, encoded
    once, and the record is byte for byte what encoding the write gives."""
    from reference.codec import decode, encode, encode_value
    from reference.disk.file import encode_write
    from reference.paxos.messages import Accept

    # Big enough to be remembered (codec.KNOWN_BYTES_MIN): a batch of requests.
    batch = tuple((f"r{i}", ("put", f"x{i}", i)) for i in range(20))
    accept = Accept((2, "n1"), 1, 7, batch, 6)
    op = ("put", "paxos/acc/000000000007", accept)
    record = encode_write(op)  # put first (the leader's vote), then sent
    assert record == encode_value(list(op))
    wire = encode(accept)
    assert record == b'["put","paxos/acc/000000000007",' + wire + b"]"
    assert encode(accept) is wire  # remembered: the disk and every peer share one encoding
    requests = ",".join(f'{{"$t":["r{i}",{{"$t":["put","x",{i}]}}]}}' for i in range(20))
    received = decode(
        b'{"$m":"paxos.Accept", "f":[{"$t":[2,"n1"]},1,7,{"$t":[%s]},6]}' % requests.encode()
    )
    spliced = encode_write(("put", "k", received))
    assert b'"$m":"paxos.Accept", "f"' in spliced  # the peer's own bytes, spacing and all
    disk = FileDisk(tmp_path / "d", fsync=False)
    disk.put("a", accept)
    disk.put("r", received)
    disk.sync()
    disk.close()
    again = FileDisk(tmp_path / "d", fsync=False)
    assert again.get("a") == accept and again.get("r") == received
    again.close()
