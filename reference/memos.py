"""Bounded memos: plain dicts kept in use order, the least recently used first.

The simulator runs every replica of a group in one process, and replicas
that restore or seal the same immutable bytes (a ledger's segments, a dedup
table's chunks) need not decode or encode them once each: a process-wide
memo remembers the last few. Bounded, so that a long run holds a fixed
number of them, whatever it stores.
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["remember"]

K = TypeVar("K")
V = TypeVar("V")


def remember(memo: dict[K, V], key: K, value: V, bound: int) -> None:
    """`memo[key] = value` as its most recently used entry; past `bound`
    entries the least recently used goes (a dict keeps insertion order)."""
    assert bound > 0, bound
    memo.pop(key, None)
    memo[key] = value
    if len(memo) > bound:
        del memo[next(iter(memo))]
