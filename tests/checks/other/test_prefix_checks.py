"""The live view's prefix mode of the delivery and half-message checks (a run still going).

In flight is not lost, a young half is not stuck; what a prefix already shows
stays a violation, and the end-of-run verdict is the one it always was.
"""

from __future__ import annotations

from typing import Any

from other_builder import History
from test_delivery import consume, produce

from checks.delivery import check_delivery
from checks.halves import check_half_messages
from checks.history import Event


def _in_flight() -> History:
    """m1 at both groups; m2 committed, at g only; m3 received by g, not applied yet."""
    h = History()
    for mid in ("m1", "m2", "m3"):
        produce(h, mid, key=mid)
    for group in ("g", "h"):
        consume(h, "m1", group=group, key="m1")
    consume(h, "m2", group="g", key="m2")
    consume(h, "m3", group="g", key="m3", apply=False)
    return h


def test_in_flight_messages_are_lost_at_the_end_but_not_in_a_prefix() -> None:
    h = _in_flight()
    final = check_delivery(h.events, groups=["g", "h"])
    assert final.valid is False
    assert final.details["problems"] == {"lost": 2, "effect-lost": 1}  # m2, m3 at h
    prefix = check_delivery(h.events, groups=["g", "h"], final=False)
    assert prefix.valid is True, prefix.summary
    assert prefix.details["in_flight"] == 2 and "So far" in prefix.summary


def test_a_prefix_still_catches_what_it_already_shows() -> None:
    rolled = produce(History(), "r1", fate="rollback")
    consume(rolled, "r1")
    twice = produce(History(), "m1")
    consume(twice, "m1")
    consume(twice, "m1")  # redelivered and applied again: not idempotent
    order = produce(History(), "m1")
    produce(order, "m2")  # m1 committed before m2 was sent, same key
    consume(order, "m2")
    consume(order, "m1")
    phantom = consume(History(), "ghost")
    for h, kind in (
        (rolled, "rolled-back-delivered"),
        (twice, "applied-twice"),
        (order, "order"),
        (phantom, "phantom"),
    ):
        v = check_delivery(h.events, final=False)
        assert v.valid is False and v.details["problems"].get(kind) == 1, (kind, v.summary)


def test_a_window_cut_off_from_the_start_does_not_call_earlier_messages_phantom() -> None:
    h = consume(History(), "sent-before-the-cut")
    assert check_delivery(h.events, final=False, from_start=False).valid is True
    rolled = produce(History(), "r1", fate="rollback")
    consume(rolled, "r1")  # still caught in a window: its rollback is in it
    assert check_delivery(rolled.events, final=False, from_start=False).valid is False


def _halves(*ops: tuple[str, str, dict[str, Any], float]) -> list[Event]:
    events: list[Event] = []
    for process, f, value, at_ms in ops:
        for t in ("invoke", "ok"):
            events.append(Event(t, process, f, value, at_ms, len(events)))
    return events


def test_a_half_within_its_check_window_is_in_flight_past_it_stuck() -> None:
    h = _halves(
        ("p", "send", {"id": "old"}, 0.0),
        ("p", "send", {"id": "young"}, 50_000.0),
        ("p", "send", {"id": "done"}, 0.0),
        ("p", "commit", {"id": "done"}, 1_000.0),
        ("c", "read", {"id": "x"}, 60_000.0),
    )
    assert check_half_messages(h).details["stuck"] == 2  # the end: both are stuck
    prefix = check_half_messages(h, open_ms=30_000.0)
    assert prefix.valid is False and prefix.details["stuck"] == 1
    assert prefix.witness[0]["id"] == "old" and prefix.details["in_flight"] == 1
    fresh = check_half_messages(h, open_ms=100_000.0)
    assert fresh.valid is True and "2 still within their check window" in fresh.summary
