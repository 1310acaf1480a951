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

A live view judges a prefix of a run still going (`open_ms`): a half message
stored less than `open_ms` of simulated time before the prefix's last event
is still within its check window (its producer's verdict or the broker's
check-backs may yet resolve it), not stuck. Give it the broker's whole
window: the first check's delay plus every check the broker may make.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from checks.history import Event, pair_operations
from checks.verdict import Verdict, plural

__all__ = ["check_half_messages"]

WITNESS_MAX = 20


def _id(value: Any) -> Any:
    return value.get("id") if isinstance(value, Mapping) else None


def check_half_messages(events: Sequence[Event], *, open_ms: float | None = None) -> Verdict:
    """`open_ms`: judge a prefix, where a half younger than this is in flight (None: the end)."""
    ops = pair_operations(list(events))
    sent: dict[Any, int] = {}  # msg id -> index of its send's invoke
    stored_ms: dict[Any, float] = {}  # msg id -> when the broker acknowledged storing it
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
            assert op.completion is not None
            stored_ms.setdefault(mid, op.completion.time_ms)
        elif op.f in ("commit", "rollback"):
            resolved.add(mid)
        elif op.f == "receive":
            delivered.add(mid)
        elif op.f == "check-max":
            reported.add(mid)
    unresolved = [
        (index, mid)
        for mid, index in sent.items()
        if mid not in resolved and mid not in delivered and mid not in reported
    ]
    in_flight = 0
    if open_ms is not None and events:
        now_ms = max(e.time_ms for e in events)
        young = [(i, mid) for i, mid in unresolved if now_ms - stored_ms[mid] < open_ms]
        in_flight = len(young)
        unresolved = [u for u in unresolved if now_ms - stored_ms[u[1]] >= open_ms]
    stuck = sorted(unresolved)
    details = {
        "sent": len(sent),
        "resolved": len(resolved & sent.keys()),
        "reported": len(reported),
        "stuck": len(stuck),
        "in_flight": in_flight,
    }
    if not sent:
        return Verdict("half-messages", "unknown", "No message was sent.", details)
    if not stuck:
        return Verdict(
            "half-messages",
            True,
            f"All {len(sent) - in_flight} sent messages were resolved, delivered, or reported "
            f"({len(reported)} set aside after their last check)"
            + (f"; {in_flight} still within their check window." if in_flight else "."),
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
        f"{plural(len(stuck), 'message was', 'messages were')} left half-sent without a "
        f"report. First: {stuck[0][1]} "
        f"(sent at index {stuck[0][0]}).",
        details,
        witness,
    )
