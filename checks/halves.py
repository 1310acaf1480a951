"""Half messages: nothing stays half-sent past the check limit without being reported.

A transactional message is *half* from the moment the broker stores it to
the moment its producer's verdict (or the answer to a check-back) resolves
it. RocketMQ checks an unresolved half message at most `transactionCheckMax`
times; then it sets the message aside (the check-max topic) and logs it,
for a human. The promise this checker holds: at the end of a history that
ran past the check window, every message the broker acknowledged storing
(f="send" ok; one that ended unanswered may never have been stored) is resolved
(committed or rolled back, by the producer's account, possibly in answer to
a check), or delivered (the broker's check-back committed it), or reported
by the broker as set aside (f="check-max" ok, value {"id": msg_id}).

History vocabulary: that of `checks.delivery` (f="send", "commit",
"rollback", "receive"), plus the broker's f="check-max" reports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from checks.history import Event, pair_operations
from checks.verdict import Verdict

__all__ = ["check_half_messages"]

WITNESS_MAX = 20


def _id(value: Any) -> Any:
    return value.get("id") if isinstance(value, Mapping) else None


# --8<-- [start:halves-check]
def check_half_messages(events: Sequence[Event]) -> Verdict:
    ops = pair_operations(list(events))
    sent: dict[Any, int] = {}  # msg id -> index of its send's invoke
    resolved: set[Any] = set()
    delivered: set[Any] = set()
    reported: set[Any] = set()
    for op in ops:
        mid = _id(op.invoke.value)
        if mid is None and op.completion is not None:
            mid = _id(op.completion.value)
        if mid is None:
            continue
        if op.type != "ok":
            continue  # a send that ended unanswered may never have been stored
        if op.f == "send":
            sent.setdefault(mid, op.invoke.index)
        elif op.f in ("commit", "rollback"):
            resolved.add(mid)
        elif op.f == "receive":
            delivered.add(mid)
        elif op.f == "check-max":
            reported.add(mid)
    stuck = sorted(
        (index, mid)
        for mid, index in sent.items()
        if mid not in resolved and mid not in delivered and mid not in reported
    )
    details = {
        "sent": len(sent),
        "resolved": len(resolved & sent.keys()),
        "reported": len(reported),
        "stuck": len(stuck),
    }
    if not sent:
        return Verdict("half-messages", "unknown", "No message was sent.", details)
    if not stuck:
        return Verdict(
            "half-messages",
            True,
            f"All {len(sent)} sent messages were resolved, delivered, or reported "
            f"({len(reported)} set aside after their last check).",
            details,
        )
    witness = [
        {
            "kind": "stuck-half",
            "id": mid,
            "index": index,
            "words": "sent, never resolved, never delivered, never reported",
        }
        for index, mid in stuck[:WITNESS_MAX]
    ]
    return Verdict(
        "half-messages",
        False,
        f"{len(stuck)} messages were left half-sent without a report. First: {stuck[0][1]} "
        f"(sent at index {stuck[0][0]}).",
        details,
        witness,
    )


# --8<-- [end:halves-check]
