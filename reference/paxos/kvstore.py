"""A tiny key-value store: the state machine the Paxos tests and the explorer replicate."""

from __future__ import annotations

from typing import Any


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
