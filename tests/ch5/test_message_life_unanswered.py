"""A message whose producer died before the broker answered its send, resolved all the same,
is counted: committed + rolled back = sent + sent_unanswered (chapter 5's crash, seed 1)."""

from __future__ import annotations

from chapters.ch5_mq.deployment import message_life
from checks.history import Event


def test_a_resolved_message_whose_send_was_never_answered_is_named() -> None:
    rows: list[tuple[str, str, str, dict[str, str]]] = [
        ("invoke", "pay#1/1", "send", {"id": "m1", "key": "u1"}),
        ("ok", "pay#1/1", "send", {"id": "m1", "key": "u1"}),
        ("invoke", "pay#1/1", "commit", {"id": "m1"}),
        ("ok", "pay#1/1", "commit", {"id": "m1"}),
        ("invoke", "pay#1/2", "send", {"id": "m2", "key": "u2"}),  # the producer dies here
        ("invoke", "pay#1/3", "send", {"id": "m3", "key": "u3"}),  # never stored either
        ("invoke", "pay-hz#1/9", "rollback", {"id": "m2", "by": "check"}),
        ("ok", "pay-hz#1/9", "rollback", {"id": "m2", "by": "check"}),
    ]
    history = [Event(t, p, f, v, float(i), i) for i, (t, p, f, v) in enumerate(rows)]
    life = message_life(history)
    assert life["sent"] == 1 and life["sent_unanswered"] == 1  # m3: never resolved, not counted
    assert life["committed"] + life["rolled_back"] == life["sent"] + life["sent_unanswered"]
