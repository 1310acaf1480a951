"""Transactions as the dependency-graph checker sees them.

History vocabulary: an operation with f="txn" whose value is a list of
micro-operations, each a 3-element list:

    list-append:  ["append", key, value]   append value to the list at key
                  ["r", key, None]         on invoke; on ok: ["r", key, [v1, v2, ...]]
    rw-register:  ["w", key, value]        write value to the register at key
                  ["r", key, None]         on invoke; on ok: ["r", key, value]
                                           (None: the initial, never-written state)

The invoke carries what the client asked for; an ok completion carries the
same micro-operations with the reads filled in. A `fail` means the
transaction aborted (none of its writes may be seen); an `info` (or no
completion) means it may have committed or not. Values written to a key must
be unique per key (each append or write a fresh value), which is what lets a
read name the transaction it read from.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from checks.history import Event, HistoryError, Operation, pair_operations
from checks.values import is_integer, is_scalar, to_plain, value_key

Status = Literal["ok", "fail", "info"]
MOP_KINDS = frozenset({"append", "r", "w"})
# What the inferers know of a key and of a value appended or written: that it
# can be compared and hashed (a history's values are checked at the edge).
Key: TypeAlias = Hashable
Value: TypeAlias = Hashable


@dataclass(frozen=True, slots=True)
class Mop:
    """One micro-operation: f is append, w or r; value is a tuple for list reads."""

    f: str
    key: Key
    value: Any  # a list read's tuple, or one scalar

    def words(self) -> str:
        if self.f == "append":
            return f"append {self.value!r} to {self.key}"
        if self.f == "w":
            return f"write {self.value!r} to {self.key}"
        return f"read {self.key} = {show_value(self.value)}"


@dataclass(frozen=True, slots=True)
class Txn:
    """A transaction and what we know of its fate."""

    n: int  # T<n>: 1-based, in invoke order
    process: int | str
    status: Status
    mops: tuple[Mop, ...]
    invoke_index: int
    complete_index: int | None  # None: never completed
    invoke_time_ms: float
    complete_time_ms: float | None

    @property
    def name(self) -> str:
        return f"T{self.n}"

    @property
    def at(self) -> int:
        """The event that shows what it did: its completion, else its invoke."""
        return self.complete_index if self.complete_index is not None else self.invoke_index

    def words(self) -> str:
        return f"{self.name} [{'; '.join(m.words() for m in self.mops)}] ({self.status})"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "process": self.process,
            "status": self.status,
            "mops": [[m.f, m.key, to_plain(m.value)] for m in self.mops],
            "invoke_index": self.invoke_index,
            "complete_index": self.complete_index,
        }


SHOW_ELEMENTS_MAX = 8  # a longer list read is shown by its ends


# (key, value) -> the transaction that appended or wrote it; values are unique per key.
Writers: TypeAlias = "dict[tuple[Key, Value], Txn]"
# (transaction number, key) -> the last value that transaction appended or wrote to it.
LastWrites: TypeAlias = "dict[tuple[int, Key], Value]"


def show_value(v: object) -> str:
    """A read's value as the explanations quote it: nil, 3, [1, 2, ..., 9]."""
    if not isinstance(v, tuple):
        return "nil" if v is None else repr(v)
    if len(v) <= SHOW_ELEMENTS_MAX:
        return "[" + ", ".join(repr(x) for x in v) + "]"
    head = ", ".join(repr(x) for x in v[:2])
    tail = ", ".join(repr(x) for x in v[-3:])
    return f"[{head}, ...{len(v) - 5} more..., {tail}]"


def _key(k: Any, where: int) -> Key:
    if not (isinstance(k, str) or is_integer(k)):
        raise HistoryError(f"event {where}: a micro-op key is a string or an integer, got {k!r}")
    return k


def _value(f: str, v: Any, where: int) -> Value:
    """A micro-op's value in canonical form (Clojure's `=`: true is not 1)."""
    if f == "r" and isinstance(v, (list, tuple)):
        if not all(is_scalar(x) and x is not None for x in v):
            raise HistoryError(f"event {where}: a list read holds only scalar values: {v!r}")
        return tuple(value_key(x) for x in v)
    if not is_scalar(v):
        raise HistoryError(f"event {where}: micro-op {f} needs a scalar value, got {v!r}")
    return value_key(v)


def _mops(value: Any, where: int) -> tuple[Mop, ...]:
    if not isinstance(value, (list, tuple)):
        raise HistoryError(f"event {where}: a txn's value must be a list of micro-ops")
    out = []
    for m in value:
        if (
            not isinstance(m, (list, tuple))
            or len(m) != 3
            or not isinstance(m[0], str)
            or m[0] not in MOP_KINDS
        ):
            raise HistoryError(f"event {where}: micro-op {m!r} is not [append|r|w, key, value]")
        f, k, v = m
        out.append(Mop(str(f), _key(k, where), _value(str(f), v, where)))
    return tuple(out)


def read_txns(events: Sequence[Event]) -> list[Txn]:
    """Every f="txn" operation, as a Txn; raises HistoryError on malformed ones."""
    txns: list[Txn] = []
    for op in pair_operations(list(events)):
        if op.f != "txn":
            continue
        txns.append(_txn(len(txns) + 1, op))
    return txns


def _txn(n: int, op: Operation) -> Txn:
    done = op.completion
    status: Status = op.type  # type: ignore[assignment]
    if done is not None and status == "ok":
        mops = _mops(done.value, done.index)
        asked = _mops(op.invoke.value, op.invoke.index)
        if [(m.f, m.key) for m in mops] != [(m.f, m.key) for m in asked]:
            raise HistoryError(
                f"event {done.index}: the ok txn's micro-ops differ from its invoke's"
            )
    else:
        mops = _mops(op.invoke.value, op.invoke.index)
    return Txn(
        n,
        op.process,
        status,
        mops,
        op.invoke.index,
        done.index if done is not None else None,
        op.invoke.time_ms,
        done.time_ms if done is not None else None,
    )
