"""The message trace in the broker's trace topic (RocketMQ's RMQ_SYS_TRACE_TOPIC):
nodes send their trace entries to the broker in batches, the broker's replicated
state keeps them, and the report reads a message's life back from there."""

from __future__ import annotations

from collections import Counter

from chapters.run import simulate
from reference.codec import decode, encode
from reference.mq.machine import BrokerMachine
from reference.mq.messages import SendTraces, TraceEntry
from reference.mq.trace import TraceBuffer


def test_the_broker_keeps_trace_entries_in_its_state_and_snapshot() -> None:
    b = BrokerMachine()
    entries = (
        TraceEntry("p1", "sent", 1.5, "pay-hz", (("half", True),)),
        TraceEntry("p1", "consumed", 9.0, "loyalty-hz", (("group", "loyalty"),)),
    )
    assert b.apply(SendTraces(entries)) == ("stored", 2)
    assert b.clone().trace_topic == list(entries)
    assert decode(encode(SendTraces(entries))) == SendTraces(entries)


def test_a_failed_flush_keeps_the_entries_for_the_next() -> None:
    buffer = TraceBuffer(to_topic=True)
    buffer.entries = [TraceEntry("p1", "sent", 1.0, "n", ())]
    sent: list[SendTraces] = []
    buffer.flush(lambda batch, done: (sent.append(batch), done(False)))
    assert len(sent) == 1 and len(buffer.entries) == 1  # back in the buffer
    buffer.flush(lambda batch, done: (sent.append(batch), done(True)))
    assert not buffer.entries and sent[0] == sent[1]


def test_the_report_reads_each_messages_life_back_from_the_trace_topic() -> None:
    res = simulate("ch5", "crash", seed=1)
    dep = res.deployment
    topic = dep.topic_lives()  # type: ignore[attr-defined]
    assert topic is not None
    telemetry = dep.lives  # type: ignore[attr-defined]
    # What the topic holds is what the nodes saw; only entries still buffered on a
    # node when it crashed are missing (best effort, as RocketMQ's dispatcher).
    # (A step's time is the node's clock when it is written down: the telemetry
    # event's, plus the handler's work so far, at most a fraction of a millisecond.)
    held = Counter((m, n, s) for m, life in topic.items() for _, n, s, _ in life)
    seen = Counter((m, n, s) for m, life in telemetry.items() for _, n, s, _ in life)
    assert not held - seen and held.total() > 0.9 * seen.total()
    sample = res.summary["message_trace"]
    assert sample["traced_messages"] == len(topic)
    life = sorted(topic[sample["id"]], key=lambda s: s[0])
    assert [s[2] for s in sample["steps"]] == [step for _, _, step, _ in life]
