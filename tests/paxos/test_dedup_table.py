"""The dedup table inside the replicated state: bounded, sealed in chunks,
and a snapshot that reuses each sealed chunk's bytes instead of re-encoding."""

from __future__ import annotations

import pytest

import reference.paxos.replicated_state as replicated_state
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


def test_a_sealed_chunk_is_the_encoding_of_its_pairs_encoded_as_the_tail_fills() -> None:
    state = ReplicatedState(KVStore(), dedup_max=100_000)
    state.chunk, state.encode_every = 7, 3  # two whole batches and a rest of one
    fill(state, 6)
    assert len(state.tail_encoded) == 2 and not state.sealed  # encoded before the seal
    fill(state, 1, first=6)
    pairs = tuple((f"r{i}", state.results[f"r{i}"]) for i in range(7))
    ((encoded, ids),) = state.sealed
    assert encoded == encode_value(pairs) and ids == tuple(f"r{i}" for i in range(7))
    assert not state.tail and not state.tail_encoded
    fill(state, 4, first=7)  # the tail's batches survive a restore, for the next seal
    other = ReplicatedState(KVStore(), dedup_max=100_000)
    other.chunk, other.encode_every = 7, 3
    other.restore(decode_value(encode_value(state.snapshot())))
    assert other.tail_encoded == state.tail_encoded and len(other.tail_encoded) == 1
    fill(state, 3, first=11)
    fill(other, 3, first=11)
    assert state.sealed[-1][0] == other.sealed[-1][0]
    assert state.sealed[-1][0] == encode_value(
        tuple((f"r{i}", state.results[f"r{i}"]) for i in range(7, 14))
    )


def test_a_chunk_restored_again_is_not_decoded_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each replica of a group restores the same chunk bytes: decoded once per process."""
    decoded: list[bytes] = []
    monkeypatch.setattr(replicated_state, "_chunks_known", {})
    real = replicated_state.decode_value
    monkeypatch.setattr(replicated_state, "decode_value", lambda b: decoded.append(b) or real(b))
    state = ReplicatedState(KVStore(), dedup_max=100_000)
    state.chunk = 4
    fill(state, 10)
    snapshot = state.snapshot()
    copies = []
    for _ in range(2):
        copy = ReplicatedState(KVStore(), dedup_max=100_000)
        copy.chunk = 4
        copy.restore(snapshot)
        copies.append(copy)
    assert len(decoded) == 2  # the two sealed chunks, by the first restore only
    assert copies[0].results == copies[1].results == state.results
    assert copies[1].snapshot() == snapshot


def test_the_chunks_remembered_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replicated_state, "_chunks_known", {})
    for n in range(replicated_state.CHUNKS_REMEMBERED + 5):
        replicated_state._decoded_chunk(encode_value(((f"r{n}", n),)))
    assert len(replicated_state._chunks_known) == replicated_state.CHUNKS_REMEMBERED
