"""Chapter 5's message_life counts messages, not the records of their outcome.

A message's commit can be recorded more than once: by its producer (its local
transaction), then by the producer's answer to a check-back when the one-way
EndTransaction was lost, and once per check answered. `d11 run ch5 --scenario
partition --seed 1` records 6 of its 356 messages' outcomes twice; counting
records said 362 committed or rolled back. (The capstone's pipeline line had
the same bug: 248f4e8, f5b8dff.)
"""

from __future__ import annotations

from typing import Any

from chapters.ch5_mq.deployment import message_life
from checks.history import Event, EventType


def _history(rows: list[tuple[str, str, dict[str, Any]]]) -> list[Event]:
    events: list[Event] = []
    kinds: tuple[EventType, ...] = ("invoke", "ok")
    for t, (process, f, value) in enumerate(rows):
        for kind in kinds:
            events.append(Event(kind, process, f, value, float(t), len(events)))
    return events


def test_a_message_recorded_committed_by_its_producer_and_its_check_backs_counts_once() -> None:
    history = _history(
        [
            ("pay", "send", {"id": "m1", "key": "u1"}),
            ("pay", "commit", {"id": "m1"}),  # its word to the broker was lost
            ("pay", "commit", {"id": "m1", "by": "check"}),  # check 1, answer lost
            ("pay", "commit", {"id": "m1", "by": "check"}),  # check 2
            ("pay", "send", {"id": "m2", "key": "u2"}),
            ("pay", "commit", {"id": "m2"}),
            ("pay", "send", {"id": "m3", "key": "u3"}),
            ("pay", "rollback", {"id": "m3"}),  # declined
            ("pay", "rollback", {"id": "m3", "by": "check"}),
            ("c", "receive", {"id": "m1", "key": "u1", "group": "g"}),
            ("c", "receive", {"id": "m1", "key": "u1", "group": "g"}),  # a redelivery
            ("c", "apply", {"id": "m1", "group": "g"}),
            ("c", "apply", {"id": "m1", "group": "g", "result": "exists"}),
            ("broker", "check-max", {"id": "m4"}),
            ("broker", "check-max", {"id": "m4"}),
        ]
    )
    assert message_life(history) == {
        "sent": 3,
        "committed": 2,  # m1, m2 (the records: 4)
        "committed_by_check": 1,  # m1: its half was resolved at the broker by the check
        "rolled_back": 1,
        "rolled_back_by_check": 1,
        "delivered": 2,  # deliveries: at least once
        "applied": 1,
        "applied_before": 1,
        "set_aside": 1,
    }
