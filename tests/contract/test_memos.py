"""reference.memos.remember: a bounded memo drops its least recently used entry."""

from __future__ import annotations

from reference.memos import remember


def test_a_memo_past_its_bound_drops_the_least_recently_used() -> None:
    memo: dict[str, int] = {}
    for key in "abc":
        remember(memo, key, ord(key), bound=3)
    remember(memo, "a", 1, bound=3)  # used again: now the most recent
    remember(memo, "d", 4, bound=3)
    assert list(memo) == ["c", "a", "d"]  # "b", the least recently used, went
    assert memo["a"] == 1
