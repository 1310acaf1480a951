"""checks.halves on hand-written histories: what counts as stuck, and what does not."""

from __future__ import annotations

from typing import Any

from checks.halves import check_half_messages
from checks.history import Event


def _history(*ops: tuple[str, str, str, dict[str, Any]]) -> list[Event]:
    events: list[Event] = []
    for process, f, kind, value in ops:
        for t in ("invoke", kind):
            events.append(Event(t, process, f, value, float(len(events)), len(events)))
    return events


def test_a_stored_half_with_no_verdict_no_delivery_and_no_report_is_stuck() -> None:
    v = check_half_messages(_history(("p", "send", "ok", {"id": "m1"})))
    assert v.valid is False and v.details["stuck"] == 1 and v.witness[0]["id"] == "m1"


def test_a_verdict_a_delivery_or_a_report_each_clears_it() -> None:
    for f, process in (("commit", "p"), ("rollback", "p"), ("receive", "c"), ("check-max", "b")):
        h = _history(("p", "send", "ok", {"id": "m1"}), (process, f, "ok", {"id": "m1"}))
        assert check_half_messages(h).valid is True, f


def test_a_send_that_was_never_acknowledged_is_not_held_against_the_broker() -> None:
    h = _history(
        ("p", "send", "info", {"id": "m1"}),
        ("p", "send", "ok", {"id": "m2"}),
        ("p", "commit", "ok", {"id": "m2"}),
    )
    v = check_half_messages(h)
    assert v.valid is True and v.details["sent"] == 1
