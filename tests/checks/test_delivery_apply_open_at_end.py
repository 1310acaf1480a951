"""The delivery checker at the end of a history: a retry due shortly before the
end, delivered again, its apply invoked and not answered when the history ends,
is in flight, as a retry due after the end is.

The case: `d11 bench rehearsal` (the pipeline at 2x for 60 s, seed 1). A
`pt_notification` message failed twice; its second retry was due at 92,256 ms,
after the final read's gate had looked (once a second, a retry in its delay
being in flight), and the history ended at 93,143 ms in the instant the
redelivery's apply was invoked: "effect-lost", ch5:delivery INVALID, with every
one of the 86,182 messages settled.
"""

from __future__ import annotations

from typing import Any

from checks.delivery import RETRY_SLACK_MS, check_delivery
from checks.history import Event, EventType

END_MS = 93_143.0


def _history(due_ms: float, *, sent_back: bool = True) -> list[Event]:
    """m1 committed, received by group g, sent back (due at `due_ms`; or not
    sent back at all), received again at the end and its apply invoked, never
    answered. m2 received and applied, for contrast."""
    rows: list[tuple[EventType, str, str, dict[str, Any], float]] = [
        ("invoke", "producer", "send", {"id": "m1", "key": "k"}, 0.0),
        ("ok", "producer", "send", {"id": "m1", "key": "k"}, 0.0),
        ("invoke", "producer", "commit", {"id": "m1"}, 1.0),
        ("ok", "producer", "commit", {"id": "m1"}, 1.0),
        ("invoke", "producer", "send", {"id": "m2", "key": "j"}, 2.0),
        ("ok", "producer", "send", {"id": "m2", "key": "j"}, 2.0),
        ("invoke", "producer", "commit", {"id": "m2"}, 3.0),
        ("ok", "producer", "commit", {"id": "m2"}, 3.0),
        ("invoke", "c", "receive", {"id": "m2", "key": "j", "group": "g"}, 4.0),
        ("ok", "c", "receive", {"id": "m2", "key": "j", "group": "g"}, 4.0),
        ("invoke", "c", "apply", {"id": "m2", "group": "g"}, 5.0),
        ("ok", "c", "apply", {"id": "m2", "group": "g"}, 5.0),
        ("invoke", "c", "receive", {"id": "m1", "key": "k", "group": "g"}, 6.0),
        ("ok", "c", "receive", {"id": "m1", "key": "k", "group": "g"}, 6.0),
    ]
    if sent_back:
        back = {"id": "m1", "group": "g", "due_ms": due_ms}
        rows += [
            ("invoke", "c/back", "send-back", back, 7.0),
            ("ok", "c/back", "send-back", back, 7.0),
        ]
    rows += [
        ("invoke", "c/retry", "receive", {"id": "m1", "key": "k", "group": "g"}, END_MS),
        ("ok", "c/retry", "receive", {"id": "m1", "key": "k", "group": "g"}, END_MS),
        ("invoke", "c/retry/1", "apply", {"id": "m1", "group": "g"}, END_MS),  # open
    ]
    return [
        Event(kind, process, f, value, time_ms=t, index=i)
        for i, (kind, process, f, value, t) in enumerate(rows)
    ]


def test_a_retry_due_within_the_slack_and_being_applied_at_the_end_is_in_flight() -> None:
    v = check_delivery(_history(due_ms=END_MS - 887.0))
    assert v.valid is True, v.summary
    assert v.details["problems"] == {"retry-pending": 1, "duplicate-delivery": 1}


def test_a_retry_due_long_before_the_end_is_owed_though_its_apply_is_open() -> None:
    """Due well before the end: the redelivery came late, and its effect is not
    known to be in: the open apply does not excuse it."""
    v = check_delivery(_history(due_ms=END_MS - RETRY_SLACK_MS - 1.0))
    assert v.valid is False
    assert v.details["problems"] == {"effect-lost": 1, "duplicate-delivery": 1}


def test_an_apply_open_at_the_end_without_a_retry_is_not_excused() -> None:
    """No send-back: an open apply (its member died mid-apply, say) is a lost
    effect unless something later says it took."""
    v = check_delivery(_history(due_ms=0.0, sent_back=False))
    assert v.valid is False
    assert v.details["problems"]["effect-lost"] == 1
