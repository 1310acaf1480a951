"""The delivery checker at the end of a history: a message sent back for a retry
due after the end is in flight (the consumer's design: RocketMQ's delay levels
of 10 s, 30 s, 1 min), a retry due well before the end and never delivered again
is a lost effect.

The case: `d11 test double11 --nemesis kill --time 2 --seed 6` at 1/4000 scale
(tests/chapters/test_capstone.py). A notification failed three times (a 2% draw per handling
from the node's own random stream, not keyed per message: three in a row is
chance), its third retry due a minute later; the final read waited for the
retry topic's lag, which counted the message in its delay, and never came:
ch4:ledger and ch5:settlement unknown, ch5:delivery effect-lost (INVALID).
"""

from __future__ import annotations

from typing import Any

from checks.delivery import RETRY_SLACK_MS, check_delivery
from checks.history import Event, EventType


def _history(due_ms: float, *, end_ms: float, redelivered: bool = False) -> list[Event]:
    """m1 committed, received by group g and sent back (due at `due_ms`); the
    history ends at `end_ms`. `redelivered`: received again, still not applied."""
    rows: list[tuple[str, str, dict[str, Any], float]] = [
        ("producer", "send", {"id": "m1", "key": "k"}, 0.0),
        ("producer", "commit", {"id": "m1"}, 1.0),
        ("producer", "send", {"id": "m2", "key": "j"}, 2.0),
        ("producer", "commit", {"id": "m2"}, 3.0),
        ("c", "receive", {"id": "m2", "key": "j", "group": "g"}, 4.0),
        ("c", "apply", {"id": "m2", "group": "g"}, 5.0),
        ("c", "receive", {"id": "m1", "key": "k", "group": "g"}, 6.0),
        ("c/back", "send-back", {"id": "m1", "group": "g", "due_ms": due_ms}, 7.0),
    ]
    if redelivered:
        rows.append(("c", "receive", {"id": "m1", "key": "k", "group": "g"}, end_ms - 1.0))
    rows.append(("c", "receive", {"id": "m2", "key": "j", "group": "g"}, end_ms))  # a dup
    events: list[Event] = []
    kinds: tuple[EventType, ...] = ("invoke", "ok")
    for process, f, value, t in rows:
        for kind in kinds:
            events.append(Event(kind, process, f, value, time_ms=t, index=len(events)))
    return events


def test_a_retry_due_after_the_end_is_in_flight() -> None:
    v = check_delivery(_history(due_ms=40_000.0, end_ms=35_000.0))
    assert v.valid is True, v.summary
    assert v.details["problems"].get("retry-pending") == 1
    assert "retry due after the history's end" in v.summary


def test_a_retry_due_long_before_the_end_and_never_delivered_is_a_lost_effect() -> None:
    """The same history, the retry due well before the end: the broker owed a
    delivery it never made, and the checker says so."""
    v = check_delivery(_history(due_ms=35_000.0 - RETRY_SLACK_MS - 1.0, end_ms=35_000.0))
    assert v.valid is False
    assert v.details["problems"] == {"effect-lost": 1, "duplicate-delivery": 1}


def test_a_retry_delivered_and_not_applied_is_a_lost_effect() -> None:
    """Delivered again after the send-back (its retry came) and still not applied:
    the send-back no longer excuses it."""
    v = check_delivery(_history(due_ms=40_000.0, end_ms=35_000.0, redelivered=True))
    assert v.valid is False and v.details["problems"]["effect-lost"] == 1
