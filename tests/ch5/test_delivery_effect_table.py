"""The delivery checker and an effect table that answers "exists".

An orderly consumer's effect and its dedup record are one command of the
broker's log (reference/mq/consumer.py, `_apply_shared`). A member that dies
after the command is committed and before its answer leaves its apply open in
the history; the member that adopts its claim is answered "exists" for that
message. The effect is in, once: neither lost nor applied twice.
"""

from __future__ import annotations

from typing import Any

from checks.delivery import check_delivery
from checks.history import Event, EventType

Row = tuple[EventType, str, str, dict[str, Any]]  # (type, process, f, value)


def _history(*applies: Row) -> list[Event]:
    rows: list[Row] = [
        ("invoke", "producer", "send", {"id": "m1", "key": "k"}),
        ("ok", "producer", "send", {"id": "m1", "key": "k"}),
        ("invoke", "producer", "commit", {"id": "m1"}),
        ("ok", "producer", "commit", {"id": "m1"}),
        ("invoke", "c2#1", "receive", {"id": "m1", "key": "k", "group": "g"}),
        ("ok", "c2#1", "receive", {"id": "m1", "key": "k", "group": "g"}),
        *applies,
    ]
    return [
        Event(kind, process, f, value, time_ms=float(i), index=i)
        for i, (kind, process, f, value) in enumerate(rows)
    ]


APPLY = {"id": "m1", "group": "g"}
EXISTS = {"id": "m1", "group": "g", "result": "exists"}
OPEN = ("invoke", "c2#1/q/0", "apply", APPLY)  # c2 died before the answer
REDELIVERED = [
    ("invoke", "c1#1", "receive", {"id": "m1", "key": "k", "group": "g"}),
    ("ok", "c1#1", "receive", {"id": "m1", "key": "k", "group": "g"}),
]


def test_an_open_apply_told_by_a_later_exists_is_one_effect() -> None:
    later: list[Row] = [*REDELIVERED, ("invoke", "c1#1/q/0", "apply", APPLY)]
    v = check_delivery(_history(OPEN, *later, ("ok", "c1#1/q/0", "apply", EXISTS)))
    assert v.valid is True, v.summary
    assert v.details["problems"] == {"duplicate-delivery": 1}


def test_an_open_apply_never_told_is_an_effect_lost() -> None:
    """(The group records effects: another message's apply went through.)"""
    other = {"id": "m0", "group": "g"}
    done: list[Row] = [("invoke", "c1#1/q/0", "apply", other), ("ok", "c1#1/q/0", "apply", other)]
    v = check_delivery(_history(OPEN, *done))
    assert v.valid is False and v.details["problems"] == {"effect-lost": 1}, v.summary


def test_two_applies_that_both_took_effect_are_applied_twice() -> None:
    twice: list[Row] = [
        ("invoke", "c2#1/q/0", "apply", APPLY),
        ("ok", "c2#1/q/0", "apply", APPLY),
        *REDELIVERED,
        ("invoke", "c1#1/q/0", "apply", APPLY),
        ("ok", "c1#1/q/0", "apply", APPLY),
    ]
    v = check_delivery(_history(*twice))
    assert v.valid is False and v.details["problems"].get("applied-twice") == 1, v.summary


def test_an_apply_and_a_later_exists_are_one_effect() -> None:
    """c2 applied m1 and heard so, then died before closing its claim; c1, adopting
    the claim, is answered "exists". (The checker before the effect table counted
    every ok apply: applied-twice.)"""
    later: list[Row] = [*REDELIVERED, ("invoke", "c1#1/q/0", "apply", APPLY)]
    applied: list[Row] = [OPEN, ("ok", "c2#1/q/0", "apply", APPLY)]
    v = check_delivery(_history(*applied, *later, ("ok", "c1#1/q/0", "apply", EXISTS)))
    assert v.valid is True, v.summary
    assert v.details["applies"] == 1
