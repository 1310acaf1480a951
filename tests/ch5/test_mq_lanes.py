"""Chapter 7's load-test tag through chapter 5's broker (issue 17, the MQ hop).

The trace context is a message property: every copy the broker makes keeps
it (committed, retry, dead-letter, check-max, timer, and the check-back
asks with it). Tagged events take the shadow lane (`pt_payments`, shadow
consumer groups, shadow accounts). The isolation checker judges the queue
hops and is trusted because it catches both planted leaks.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

from chapters.run import RunResult, simulate
from checks.history import Event
from checks.isolation import check_isolation
from reference.codec import decode, encode
from reference.mq.lanes import data_view, lane_topic
from reference.mq.machine import (
    CHECK_MAX_TOPIC,
    BrokerConfig,
    BrokerMachine,
    dlq_topic,
    queue_of,
    retry_topic,
)
from reference.mq.messages import (
    CheckPass,
    EndTransaction,
    Payload,
    PullQuery,
    SendBack,
    SendHalf,
    SendMessage,
    SendTimer,
    StoredMessage,
    TimerTick,
)
from reference.tracing import in_shadow_lane, new_trace

TAGGED = new_trace("p1", "r1", load_test=True).child("pay-hz/p1")
LIVE = new_trace("p2", "r2", load_test=False)
BODY = Payload("p1", "u1", "m1@pay", 500)


def _copies(b: BrokerMachine, msg_id: str) -> list[StoredMessage]:
    return [m for m in b.log if m.msg_id == msg_id]


def test_every_copy_the_broker_makes_keeps_the_trace_property() -> None:
    b = BrokerMachine(BrokerConfig(max_reconsume_times=1, transaction_check_max=1))
    # A half, checked (the check asks with the trace), then committed by the check.
    b.apply(SendHalf("pg", "pt_payments", "p1", "u1", BODY, 1_000, TAGGED))
    checks, _ = b.apply(CheckPass(100_000))
    assert [c.trace for c in checks] == [TAGGED]
    b.apply(EndTransaction("pg", "p1", True, True, 100_001))
    (visible,) = [m for m in _copies(b, "p1") if m.topic == "pt_payments"]
    assert visible.trace == TAGGED
    # Retried (waiting in the schedule topic, then in the retry topic once due),
    # then dead-lettered: every copy carries it.
    kind, waiting = b.apply(SendBack("pt_g", visible.offset, 0, 100_002))
    assert kind == "retry" and b.log[waiting].trace == TAGGED
    b.apply(TimerTick(110_002))
    (retry,) = [m for m in _copies(b, "p1") if m.topic == retry_topic("pt_g")]
    assert retry.trace == TAGGED
    assert b.apply(SendBack("pt_g", retry.offset, 1, 100_003))[0] == "dead-letter"
    (dead,) = [m for m in _copies(b, "p1") if m.topic == dlq_topic("pt_g")]
    assert dead.trace == TAGGED
    # A timer message, due: delivered with it.
    b.apply(SendTimer("pt_payments", "t1", "u2", BODY, 200_000, 100_000, TAGGED))
    b.apply(TimerTick(200_000))
    (due,) = [m for m in _copies(b, "t1") if m.topic == "pt_payments"]
    assert due.trace == TAGGED
    # A half never answered: set aside in the check-max topic, still traced.
    b.apply(SendHalf("pg", "pt_payments", "p9", "u3", BODY, 300_000, TAGGED))
    b.apply(CheckPass(400_000))
    assert b.apply(CheckPass(500_000))[1] == ("p9",)
    (aside,) = [m for m in _copies(b, "p9") if m.topic == CHECK_MAX_TOPIC]
    assert aside.trace == TAGGED
    # A plain message too; and the wire carries the property (old messages: None).
    b.apply(SendMessage("payments", "p2", "u1", BODY, 600_000, LIVE))
    qid = queue_of("u1", b.config.queues_per_topic)
    pulled = b.pull(PullQuery("g", "payments", qid, -1, 32, 10**9))
    assert [m.trace for m in pulled.messages] == [LIVE]
    assert decode(encode(pulled.messages[0])) == pulled.messages[0]
    assert SendMessage("payments", "p3", "u1", BODY, 0).trace is None


def test_the_tag_picks_the_lane_topic_and_accounts() -> None:
    assert lane_topic("payments", TAGGED) == "pt_payments"
    assert lane_topic("payments", LIVE) == lane_topic("payments", None) == "payments"
    assert data_view(BODY, TAGGED) == Payload("p1", "pt_u1", "pt_m1@pay", 500)
    assert data_view(BODY, LIVE) is BODY
    assert in_shadow_lane("%RETRY%pt_settlement") and in_shadow_lane("pt_payments")
    assert not in_shadow_lane("%DLQ%settlement")


def _span(**value: Any) -> Event:
    base: dict[str, Any] = dict(
        trace_id="", span_id="s", parent="", mark="F", op="mq.consume", payment="",
        writes=(), shadow_rows_read=0, outcome="", node="n",
    )  # fmt: skip
    return Event("info", "trace", "span", {**base, **value}, 1.0, 1)


@pytest.mark.parametrize(
    ("span", "violation"),
    [
        ({"mark": "T", "trace_id": "p1", "topic": "payments"},
         "tagged-message-in-production-topic"),
        ({"mark": "T", "trace_id": "p1", "group": "settlement", "topic": "pt_payments"},
         "production-group-consumed-tagged"),
        # fail closed: the tag lost on the way, the payment is still load-test traffic
        ({"mark": "F", "payment": "p1", "group": "loyalty", "topic": "payments"},
         "production-group-consumed-tagged"),
        ({"mark": "T", "trace_id": "p1", "topic": "%RETRY%notification"},
         "tagged-message-in-production-topic"),
        ({"mark": "F", "trace_id": "p9", "group": "pt_loyalty"},
         "production-message-in-shadow-lane"),
    ],
)  # fmt: skip
def test_each_queue_rule_catches_its_violation(span: dict[str, Any], violation: str) -> None:
    invoke = Event("invoke", 7, "load-test:transfer", {"id": "p1"}, 0.0, 0)
    verdict = check_isolation([invoke, _span(**span)])
    assert verdict.valid is False
    assert violation in verdict.details["violations"]


def test_a_tagged_hop_in_the_shadow_lane_is_clean() -> None:
    invoke = Event("invoke", 7, "load-test:transfer", {"id": "p1"}, 0.0, 0)
    hop = _span(mark="T", trace_id="p1", group="pt_settlement", topic="%RETRY%pt_settlement")
    assert check_isolation([invoke, hop]).valid is True


@functools.cache
def _run(leak: str = "") -> RunResult:
    extra: dict[str, Any] = {"load_test_share": 0.3, "leak": leak}
    return simulate("ch5", "steady", seed=1, duration_s=2.0, extra=extra)


def test_tagged_events_stay_in_the_shadow_lane_end_to_end() -> None:
    res = _run()
    assert all(v.valid is True for v in res.verdicts.values()), {
        n: v.summary for n, v in res.verdicts.items() if v.valid is not True
    }
    iso = res.verdicts["isolation"].details
    assert iso["load_test_payments"] > 10 and iso["tagged_queue_spans"] > 30
    spans = [e.value for e in res.history if e.f == "span"]
    tagged = {e.value["id"] for e in res.history if e.f == "load-test:transfer"}
    consumed = [s for s in spans if s["op"] == "mq.consume" and s["payment"] in tagged]
    # Every consumer of a tagged event was a shadow group, and its writes shadow accounts.
    assert consumed and {s["group"][:3] for s in consumed} == {"pt_"}
    assert all(a.startswith("pt_") for s in consumed for a in s["writes"])
    # Production groups got production events only; the delivery check holds both lanes.
    assert set(res.verdicts["delivery"].details["groups"]) >= {"settlement", "pt_settlement"}


@pytest.mark.parametrize(
    ("leak", "expected"),
    [
        ("producer", {"lost-tag", "tagged-message-in-production-topic",
                      "production-group-consumed-tagged", "tagged-write-to-production"}),
        ("consumer", {"lost-tag", "tagged-write-to-production"}),
    ],
)  # fmt: skip
def test_the_isolation_checker_catches_a_tag_dropped_at_the_queue(
    leak: str, expected: set[str]
) -> None:
    caught = _run(leak).verdicts["isolation"]
    assert caught.valid is False
    assert set(caught.details["violations"]) == expected
