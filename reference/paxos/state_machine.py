"""The pluggable state machine a Paxos group replicates, and its dedup table.

Paxos agrees on an ordered log of batches; what the log *means* is up to the
state machine: a key-value store in the tests, the double-entry ledger in
chapter 4. The contract is small and strict: `apply` must be deterministic
(same commands in the same order, same state and results on every replica),
and `restore(snapshot())` must rebuild an equal state.

Clients retry. A retry after a leader change can put the same request in two
slots, so `ReplicatedState` keeps a dedup table *inside* the replicated
state: the second copy returns the first copy's result and changes nothing.
The table is part of every snapshot, or a replica restored from a snapshot
would apply a retry twice.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any, Protocol

from reference.paxos.messages import Batch


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


class KVStore:
    """A tiny key-value store: `("put", key, value)` -> previous value,
    `("add", key, n)` -> new integer value, `("get", key)` -> value."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def apply(self, command: Any) -> Any:
        op = command[0]
        if op == "put":
            previous = self.data.get(command[1])
            self.data[command[1]] = command[2]
            return previous
        if op == "add":
            value = int(self.data.get(command[1], 0)) + int(command[2])
            self.data[command[1]] = value
            return value
        if op == "get":
            return self.data.get(command[1])
        return ("error", f"unknown command {op!r}")

    def read(self, query: Any) -> Any:
        return self.data.get(query)

    def clone(self) -> KVStore:
        other = KVStore()
        other.data = dict(self.data)
        return other

    def snapshot(self) -> Any:
        return tuple(sorted(self.data.items()))

    def restore(self, value: Any) -> None:
        self.data = dict(value)


class ReplicatedState:
    """A state machine plus the dedup table of request ids, applied slot by slot."""

    def __init__(self, machine: StateMachine, dedup_max: int) -> None:
        assert dedup_max > 0
        self.machine = machine
        self.dedup_max = dedup_max
        self.results: OrderedDict[str, Any] = OrderedDict()  # request_id -> result
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
            self.results[request_id] = result
            if len(self.results) > self.dedup_max:  # bounded: forget the oldest
                self.results.popitem(last=False)
            out.append((request_id, result))
        self.applied_index = slot
        return out

    def clone(self) -> ReplicatedState:
        other = copy.copy(self)
        clone = getattr(self.machine, "clone", None)
        other.machine = clone() if clone is not None else copy.deepcopy(self.machine)
        other.results = OrderedDict(self.results)
        return other

    def snapshot(self) -> tuple[int, Any]:
        """(last applied slot, state): what compaction writes and catch-up ships."""
        return (self.applied_index, (self.machine.snapshot(), tuple(self.results.items())))

    def restore(self, snapshot: tuple[int, Any]) -> None:
        slot, (machine_state, results) = snapshot
        assert slot >= 0
        self.machine.restore(machine_state)
        self.results = OrderedDict(results)
        self.applied_index = slot
