"""The dedup table inside the replicated state: bounded, sealed in chunks,
and a snapshot that reuses each sealed chunk's bytes instead of re-encoding."""

from __future__ import annotations

from reference.codec import decode_value, encode_value
from reference.paxos import KVStore
from reference.paxos.replicated_state import ReplicatedState


def fill(state: ReplicatedState, requests: int, first: int = 0) -> None:
    for i in range(first, first + requests):
        state.apply_batch(state.applied_index + 1, ((f"r{i}", ("put", f"k{i % 7}", i)),))


def test_the_table_keeps_at_least_dedup_max_and_forgets_whole_old_chunks() -> None:
    state = ReplicatedState(KVStore(), dedup_max=10)
    assert state.chunk == 10
    fill(state, 35)
    assert len(state.results) >= 10
    assert all(f"r{i}" in state.results for i in range(25, 35))  # the last dedup_max
    assert "r0" not in state.results  # the oldest chunk is gone
    assert len(state.results) < 10 + 2 * state.chunk
    # A retry of a remembered request returns its first result, applies nothing.
    before = state.machine.snapshot()
    assert state.apply_batch(state.applied_index + 1, (("r30", ("put", "k2", -1)),)) == [
        ("r30", state.results["r30"])
    ]
    assert state.machine.snapshot() == before


def test_snapshots_reuse_sealed_chunks_and_restore_exactly() -> None:
    state = ReplicatedState(KVStore(), dedup_max=100_000)
    state.chunk = 4  # small chunks, so a few requests cross boundaries
    fill(state, 10)
    first = state.snapshot()
    fill(state, 3, first=10)
    second = state.snapshot()
    # The chunks sealed before the first snapshot are the very same bytes objects.
    assert first[1][1][0] is second[1][1][0] and first[1][1][1] is second[1][1][1]
    assert len(second[1][1]) == 3 and len(second[1][2]) == 1  # 12 sealed, 1 in the tail

    copy = ReplicatedState(KVStore(), dedup_max=100_000)
    copy.chunk = 4
    copy.restore(decode_value(encode_value(second)))
    assert copy.results == state.results and list(copy.results) == list(state.results)
    assert encode_value(copy.snapshot()) == encode_value(second)
    fill(copy, 5, first=13)
    fill(state, 5, first=13)
    assert encode_value(copy.snapshot()) == encode_value(state.snapshot())  # same chunking


def test_a_sealed_chunk_is_the_encoding_of_its_pairs_each_encoded_as_remembered() -> None:
    state = ReplicatedState(KVStore(), dedup_max=100_000)
    state.chunk = 3
    fill(state, 3)  # each result encoded when remembered; the seal only joins them
    pairs = tuple((f"r{i}", state.results[f"r{i}"]) for i in range(3))
    ((encoded, ids),) = state.sealed
    assert encoded == encode_value(pairs) and ids == ("r0", "r1", "r2")
    assert not state.tail and not state.tail_encoded
    fill(state, 1, first=3)  # the tail's encodings survive a restore, for the next seal
    other = ReplicatedState(KVStore(), dedup_max=100_000)
    other.chunk = 3
    other.restore(decode_value(encode_value(state.snapshot())))
    assert other.tail_encoded == state.tail_encoded == [encode_value(("r3", state.results["r3"]))]
