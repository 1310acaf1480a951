"""SimDisk crash semantics: synced survives, unsynced is lost, a torn write shows."""

from __future__ import annotations

from reference.disk.sim import SimDisk, TornRecord


def test_synced_writes_survive_a_crash_and_unsynced_ones_do_not() -> None:
    disk = SimDisk()
    disk.put("promise", 3)
    disk.append("wal", "e0")
    disk.sync()
    disk.put("promise", 4)
    disk.append("wal", "e1")
    disk.delete("promise")
    assert disk.unsynced_writes == 3
    disk.crash()
    assert disk.get("promise") == 3
    assert disk.read_log("wal") == [(0, "e0")]
    assert disk.unsynced_writes == 0


def test_truncations_are_writes_too() -> None:
    disk = SimDisk()
    for i in range(5):
        disk.append("wal", i)
    disk.sync()
    disk.truncate_prefix("wal", 2)
    disk.truncate_suffix("wal", 4)
    assert disk.log_bounds("wal") == (2, 4)
    disk.crash()
    assert disk.log_bounds("wal") == (0, 5)


def test_a_torn_append_is_visible_to_the_reader_after_a_crash() -> None:
    disk = SimDisk(tear_on_crash=True)
    disk.append("wal", "e0")
    disk.sync()
    disk.append("wal", "e1")
    disk.append("wal", "e2")
    disk.crash()
    records = disk.read_log("wal")
    assert records == [(0, "e0"), (1, TornRecord("wal", 1))]
    assert disk.torn == 1
    # Recovery: cut the log at the torn record, as a WAL with checksums would.
    disk.truncate_suffix("wal", 1)
    disk.sync()
    disk.crash()
    assert disk.read_log("wal") == [(0, "e0")]


def test_no_tear_when_the_first_unsynced_write_is_not_an_append() -> None:
    disk = SimDisk(tear_on_crash=True)
    disk.put("k", 1)
    disk.append("wal", "e0")
    disk.crash()
    assert disk.read_log("wal") == [] and disk.get("k") is None and disk.torn == 0


def test_sync_charges_its_latency_to_the_bound_node() -> None:
    charged: list[float] = []
    disk = SimDisk(sync_latency_ms=0.7)
    disk.sync()  # unbound: free
    disk.bind(charged.append)
    disk.sync()
    disk.sync()
    assert charged == [0.7, 0.7] and disk.syncs == 3
