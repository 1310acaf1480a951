"""The isolation checker of chapter 7: did load-test traffic stay in its lane?

From the history alone: the clients' operations (a load-test payment is
recorded as `f="load-test:transfer"`, a production one as `f="transfer"`)
and the spans every traced hop wrote (`process="trace"`, `f="span"`, value:
trace_id, span_id, parent, mark, op, payment, writes, shadow_rows_read,
outcome, node). It judges four things:

1. no tagged write reached production data: a span marked `T` wrote only
   shadow accounts (`pt_...`);
2. no production read returned shadow data: no untagged span read shadow
   rows, and no client's read holds a shadow account;
3. nothing lost its tag crossing a node: a span of a load-test payment (by
   its trace id or its payment id) is marked `T`. It fails closed: an
   untagged span that the trace says descends from tagged traffic is a
   violation, whether or not it wrote anything;
4. no tagged call left the platform: a tagged span in front of an external
   party was mocked (`outcome="mocked"`), never "called";
5. the queues kept the lanes apart (chapter 5's broker: a queue hop's span
   names its `topic` and, at a consumer, its consumer `group`): a tagged
   message was stored only in shadow topics (`pt_payments`, and the shadow
   groups' `%RETRY%pt_...` and `%DLQ%pt_...`), consumed only by shadow
   consumer groups (`pt_settlement`), and a production consumer group never
   consumed a message of a load-test payment, tagged or not (fail closed: a
   message that lost its tag crossing the queue is still load-test traffic,
   and rule 3 names the hop that dropped it). Production messages stay out
   of the shadow lane.

Production writing to a shadow account is a violation too (the shadow data
would no longer be what the load test wrote). A history with load-test
payments and no spans is "unknown": it cannot show where they went.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from checks.history import Event
from checks.verdict import Verdict

__all__ = ["LOAD_TEST_TRANSFER", "SPAN_F", "check_isolation"]

LOAD_TEST_TRANSFER = "load-test:transfer"  # as reference.clients.node records it
SPAN_F = "span"
SPAN_PROCESS = "trace"
SHADOW_PREFIX = "pt_"  # as reference.tracing.shadow names shadow accounts
WITNESSES_MAX = 5


def _is_shadow(account: str) -> bool:
    return account.startswith(SHADOW_PREFIX)


def _in_shadow_lane(name: str) -> bool:
    """A shadow topic or group; a group's retry and dead-letter topics are its lane."""
    for system in ("%RETRY%", "%DLQ%"):
        if name.startswith(system):
            name = name[len(system) :]
    return _is_shadow(name)


# --8<-- [start:queue-rules]
def _queue_violations(v: Mapping[str, object], load_test: bool) -> list[str]:
    """The lane rules a queue hop breaks: `load_test` if the span is tagged or
    descends from tagged traffic (fail closed: a lost tag does not make it production)."""
    topic, group = str(v.get("topic") or ""), str(v.get("group") or "")
    found: list[str] = []
    if load_test:
        if topic and not _in_shadow_lane(topic):
            found.append("tagged-message-in-production-topic")
        if group and not _in_shadow_lane(group):
            found.append("production-group-consumed-tagged")
    elif _in_shadow_lane(topic) or _in_shadow_lane(group):
        found.append("production-message-in-shadow-lane")
    return found


# --8<-- [end:queue-rules]


# --8<-- [start:span-rules]
def _span_violations(v: dict[str, Any], tagged: set[str]) -> list[str]:
    """The rules one span breaks (empty: none)."""
    found: list[str] = []
    writes = [str(a) for a in v.get("writes") or ()]
    descends = v.get("trace_id") in tagged or v.get("payment") in tagged
    found += _queue_violations(v, v.get("mark") == "T" or descends)
    if v.get("mark") == "T":
        if any(not _is_shadow(a) for a in writes):
            found.append("tagged-write-to-production")
        if str(v.get("op", "")).startswith("external") and v.get("outcome") == "called":
            found.append("tagged-call-left-the-platform")
        return found
    # --8<-- [start:untagged-span-rules]
    if descends:  # fail closed: an untagged hop of tagged traffic
        found.append("lost-tag")
        if any(not _is_shadow(a) for a in writes):
            found.append("tagged-write-to-production")
    if any(_is_shadow(a) for a in writes):
        found.append("production-write-to-shadow")
    if int(v.get("shadow_rows_read") or 0) > 0:
        found.append("production-read-of-shadow")
    return found
    # --8<-- [end:untagged-span-rules]


# --8<-- [end:span-rules]


def check_isolation(history: list[Event]) -> Verdict:
    """See the module docstring."""
    tagged = {
        str(e.value["id"])
        for e in history
        if e.f == LOAD_TEST_TRANSFER and e.type == "invoke" and isinstance(e.value, dict)
    }
    spans = [e for e in history if e.f == SPAN_F and e.process == SPAN_PROCESS]
    kinds: Counter[str] = Counter()
    witness: list[dict[str, Any]] = []
    for e in spans:
        for kind in _span_violations(e.value, tagged):
            kinds[kind] += 1
            if len(witness) < WITNESSES_MAX:
                witness.append({"violation": kind, "time_ms": e.time_ms, "span": e.value})
    for e in history:  # a client's read of production must hold production only
        if e.f == "read" and e.type == "ok" and isinstance(e.value, dict):
            leaked = sorted(a for a in e.value if _is_shadow(str(a)))
            if leaked:
                kinds["production-read-of-shadow"] += 1
                if len(witness) < WITNESSES_MAX:
                    witness.append(
                        {"violation": "production-read-of-shadow", "time_ms": e.time_ms,
                         "accounts": leaked[:5]}
                    )  # fmt: skip
    tagged_spans = sum(1 for e in spans if e.value.get("mark") == "T")
    queue_hops = [e for e in spans if e.value.get("topic") or e.value.get("group")]
    details = {
        "load_test_payments": len(tagged),
        "spans": len(spans),
        "tagged_spans": tagged_spans,
        "violations": dict(sorted(kinds.items())),
    }
    if queue_hops:  # (only then: chapters without a broker keep their details as they were)
        details["queue_spans"] = len(queue_hops)
        details["tagged_queue_spans"] = sum(1 for e in queue_hops if e.value.get("mark") == "T")
    if kinds:
        worst = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        return Verdict("isolation", False, f"load-test traffic leaked: {worst}", details, witness)
    if tagged and not spans:
        return Verdict(
            "isolation", "unknown",
            f"{len(tagged)} load-test payments, no spans: the history cannot show where they went",
            details,
        )  # fmt: skip
    if not spans:
        return Verdict("isolation", "unknown", "no spans and no load-test traffic", details)
    return Verdict(
        "isolation", True,
        f"{len(tagged)} load-test payments over {tagged_spans} tagged spans stayed in shadow data; "
        f"{len(spans) - tagged_spans} production spans touched no shadow data",
        details,
    )  # fmt: skip
