"""`paired_once`: a history's events are paired once while checkers judge it in turn."""

from __future__ import annotations

from checks.history import Event, pair_operations, paired_once


def history() -> list[Event]:
    rows = [
        ("invoke", 0, "write", 1),
        ("invoke", 1, "read", None),
        ("ok", 0, "write", 1),
        ("ok", 1, "read", 1),
        ("invoke", 0, "write", 2),
    ]
    return [Event(t, p, f, v, float(i), i) for i, (t, p, f, v) in enumerate(rows)]


def test_the_same_events_in_a_copy_are_paired_once() -> None:
    events = history()
    with paired_once():
        first = pair_operations(events)
        again = pair_operations(list(events))  # a copy: the same Event objects
        assert again == first and again is not first  # a list of its own
        assert all(a is b for a, b in zip(again, first, strict=True))
    outside = pair_operations(events)
    assert outside == first and not any(a is b for a, b in zip(outside, first, strict=True))


def test_other_events_or_another_only_are_paired_anew() -> None:
    events = history()
    with paired_once():
        first = pair_operations(events)
        equal_copy = history()  # equal events, other objects: paired again
        assert pair_operations(equal_copy) == first
        assert pair_operations(equal_copy)[0] is not first[0]
        shorter = pair_operations(events[:4])  # the open write is not there
        assert [op.f for op in shorter] == ["write", "read"]
        reads = pair_operations(events, only={"read"})
        assert [op.f for op in reads] == ["read"]
        changed = list(events)
        changed[3] = Event("ok", 1, "read", 2, 3.0, 3)  # one event replaced
        assert pair_operations(changed)[1].completion == changed[3]
        assert pair_operations(events)[1].completion == events[3]


def test_a_nested_block_keeps_the_outer_memory() -> None:
    events = history()
    with paired_once():
        first = pair_operations(events)
        with paired_once():
            assert pair_operations(events)[0] is first[0]
        assert pair_operations(events)[0] is first[0]  # still remembered
