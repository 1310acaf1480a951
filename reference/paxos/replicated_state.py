"""The contract of what a Paxos group replicates, and the dedup table around it.

Paxos agrees on an ordered log of batches; what the log *means* is up to the
state machine: a key-value store in the tests (`kvstore.KVStore`), the
double-entry ledger in chapter 4 (`reference.ledger.machine.LedgerMachine`).
The contract is small and strict: `apply` must be deterministic (same
commands in the same order, same state and results on every replica), and
`restore(snapshot())` must rebuild an equal state.

Clients retry. A retry after a leader change can put the same request in two
slots, so `ReplicatedState` keeps a dedup table *inside* the replicated
state: the second copy returns the first copy's result and changes nothing.
The table is part of every snapshot, or a replica restored from a snapshot
would apply a retry twice.
"""

from __future__ import annotations

import copy
from collections import deque
from operator import itemgetter
from typing import Any, Protocol

from reference.codec import decode_value, encode_value
from reference.memos import remember
from reference.paxos.messages import Batch

# Dedup results sealed per chunk (see ReplicatedState): large enough that a
# snapshot holds few chunks, small enough that the unsealed tail, encoded on
# every snapshot, stays cheap.
DEDUP_CHUNK_REQUESTS = 1024
# Answers encoded together while the tail fills: a chunk encoded whole in the
# apply that filled it stalled every replica at once (see ReplicatedState), and
# each answer encoded alone cost 3.5 us against 0.85 us in a batch (per call
# overhead), which the simulator pays on every replica of every group.
DEDUP_ENCODE_REQUESTS = 64
# A chunk is the encoding of a tuple of (request_id, result) pairs: the codec
# writes a tuple as {"$t":[item,item,...]}, so the chunk is its batches' items
# joined (a test checks the bytes are encode_value's).
_CHUNK_OPEN, _CHUNK_SEP, _CHUNK_CLOSE = b'{"$t":[', b",", b"]}"
_REQUEST_ID = itemgetter(0)  # of a (request id, result) entry


# --8<-- [start:state-machine]
class StateMachine(Protocol):
    """What a Paxos group replicates. Deterministic; no I/O, no clock."""

    def apply(self, command: Any) -> Any:
        """Execute one command; return its result (sent back to the client)."""
        ...

    def read(self, query: Any) -> Any:
        """Answer a read-only query from the current state (a lease read)."""
        ...

    def snapshot(self) -> Any:
        """The whole state as one codec-encodable value."""
        ...

    def restore(self, value: Any) -> None:
        """Replace the state with one made by `snapshot()`."""
        ...


# --8<-- [end:state-machine]


class ReplicatedState:
    """A state machine plus the dedup table of request ids, applied slot by slot.

    The table remembers at least the last `dedup_max` requests. It is kept in
    chunks of `chunk` requests, each encoded once when it fills (`sealed`), so
    a snapshot costs the chunks' bytes, not an encoding of the whole table:
    compaction runs every few dozen slots, and re-encoding 100,000 results
    each time stalled the replica for longer than a commit takes. Chunks
    fill in apply order, so every replica seals the same ones, and the
    oldest are forgotten a whole chunk at a time.

    Results are encoded as the tail fills, `DEDUP_ENCODE_REQUESTS` at a
    time, and a chunk sealed by joining those bytes: encoding a whole chunk
    in the apply that filled it stalled every replica at once, at the same
    slot (`d11 bench mq`: 1,024 answers of 64 messages each, 195 ms of codec
    on each replica every 65,536 messages, its longest pause in
    deliveries). The same bytes, the cost spread over the requests.
    """

    def __init__(self, machine: StateMachine, dedup_max: int) -> None:
        assert dedup_max > 0
        self.machine = machine
        self.dedup_max = dedup_max
        self.chunk = min(DEDUP_CHUNK_REQUESTS, dedup_max)
        self.results: dict[str, Any] = {}  # request_id -> result, every one remembered
        self.sealed: deque[tuple[bytes, tuple[str, ...]]] = deque()  # (encoding, ids), oldest first
        self.tail: list[tuple[str, Any]] = []  # remembered, not yet in a sealed chunk
        self.encode_every = DEDUP_ENCODE_REQUESTS
        self.tail_encoded: list[bytes] = []  # the tail's whole batches' items, for the seal
        self.applied_index = 0  # every slot <= this is applied

    def apply_batch(self, slot: int, batch: Batch) -> list[tuple[str, Any]]:
        """Apply the batch chosen for `slot` (the next one); returns (request_id, result)."""
        assert slot == self.applied_index + 1, f"apply slot {slot} after {self.applied_index}"
        out: list[tuple[str, Any]] = []
        for request_id, command in batch:
            if request_id in self.results:  # a retry that was chosen twice
                out.append((request_id, self.results[request_id]))
                continue
            result = self.machine.apply(command)
            self._remember(request_id, result)
            out.append((request_id, result))
        self.applied_index = slot
        return out

    def _remember(self, request_id: str, result: Any) -> None:
        self._add_to_tail(request_id, result)
        if len(self.tail) >= self.chunk:
            ids = tuple(map(_REQUEST_ID, self.tail))  # (in C: a chunk is a thousand entries)
            rest = self.tail[len(self.tail_encoded) * self.encode_every :]
            parts = self.tail_encoded + ([_items(rest)] if rest else [])
            self.sealed.append((_CHUNK_OPEN + _CHUNK_SEP.join(parts) + _CHUNK_CLOSE, ids))
            self.tail, self.tail_encoded = [], []
        # Bounded: forget the oldest chunk once the rest still covers dedup_max.
        while self.sealed and len(self.results) - len(self.sealed[0][1]) >= self.dedup_max:
            for forgotten in self.sealed.popleft()[1]:
                del self.results[forgotten]
        assert len(self.results) < self.dedup_max + 2 * self.chunk, len(self.results)

    def clone(self) -> ReplicatedState:
        other = copy.copy(self)
        clone = getattr(self.machine, "clone", None)
        other.machine = clone() if clone is not None else copy.deepcopy(self.machine)
        other.results, other.sealed = dict(self.results), deque(self.sealed)
        other.tail, other.tail_encoded = list(self.tail), list(self.tail_encoded)
        return other

    def snapshot(self) -> tuple[int, Any]:
        """(last applied slot, state): what compaction writes and catch-up ships.

        The state is (machine snapshot, sealed chunks' bytes, unsealed results).
        """
        sealed = tuple(encoded for encoded, _ in self.sealed)
        return (self.applied_index, (self.machine.snapshot(), sealed, tuple(self.tail)))

    def restore(self, snapshot: tuple[int, Any]) -> None:
        slot, (machine_state, sealed, tail) = snapshot
        assert slot >= 0
        self.machine.restore(machine_state)
        self.results, self.sealed, self.tail, self.tail_encoded = {}, deque(), [], []
        for encoded in sealed:
            pairs, ids = _decoded_chunk(encoded)
            assert len(pairs) == self.chunk, "bad dedup chunk"
            self.sealed.append((encoded, ids))
            self.results.update(pairs)
        for request_id, result in tail:
            self._add_to_tail(request_id, result)
        self.applied_index = slot

    def _add_to_tail(self, request_id: str, result: object) -> None:
        """Remember one result, unsealed; encode the tail's last batch once it is whole."""
        self.results[request_id] = result
        self.tail.append((request_id, result))
        if len(self.tail) % self.encode_every == 0:
            self.tail_encoded.append(_items(self.tail[-self.encode_every :]))


def _items(pairs: list[tuple[str, object]]) -> bytes:
    """The items of `encode_value(tuple(pairs))`, without the tuple's brackets."""
    encoded = encode_value(tuple(pairs))
    assert encoded.startswith(_CHUNK_OPEN) and encoded.endswith(_CHUNK_CLOSE), encoded[:16]
    return encoded[len(_CHUNK_OPEN) : -len(_CHUNK_CLOSE)]


# Sealed chunks this process decoded, by their bytes, most recently used last.
# The simulator restores the same chunks on each replica of a group after
# each crash: decoding them again was a third of a restore's time (chapter 4
# under faults, a minute: 1.9 % of the simulation). Safe to share: the bytes
# are immutable, and so are the decoded pairs (tuples of ids and results).
# Bounded: a chunk's bytes are some 60 kB.
CHUNKS_REMEMBERED = 128
_Decoded = tuple[tuple[tuple[str, object], ...], tuple[str, ...]]  # (pairs, their ids)
_chunks_known: dict[bytes, _Decoded] = {}


def _decoded_chunk(encoded: bytes) -> _Decoded:
    """A sealed chunk's (request id, result) pairs and its ids; `AssertionError` if malformed."""
    kept = type(encoded) is bytes  # (hashable, immutable: a key)
    known = _chunks_known.get(encoded) if kept else None
    if known is None:
        pairs = decode_value(encoded)
        assert isinstance(pairs, tuple), "bad dedup chunk"
        known = (pairs, tuple(map(_REQUEST_ID, pairs)))
    if kept:
        remember(_chunks_known, encoded, known, CHUNKS_REMEMBERED)
    return known
