"""The final read's gate on a real backend (`MqDeployment._observed_drained`)
judges each consumer by what it has read: a retry queue whose head is a message
still in its retry delay (RocketMQ's 10 s, 30 s, 1 min ...) is caught up, as the
simulator's gate (`_due_retries`) and the delivery checker (`retry-pending`)
judge it: in flight, not a backlog. Before, the gate waited for the retry's
delay to run out (a pull stops at a message not due, so the queue's read
position stayed below its length), and on processes the final read could wait
past its grace for a retry due a minute later. (Since retries wait out their
delay in the schedule topic, one queue per delay level, and reach the retry
topic only when due, the retry queue holds none not due.)
"""

from __future__ import annotations

import functools
from collections.abc import Hashable
from typing import Any

from reference.codec import Message
from reference.mq.broker import BrokerReplica
from reference.mq.caller import CALL_TIMER, GroupCaller
from reference.mq.consumer import ConsumerConfig, MessageConsumer
from reference.mq.machine import BrokerConfig, retry_topic
from reference.mq.messages import Payload, SendBack, SendMessage
from reference.net.topology import Topology
from reference.node import Context, Node, NodeId
from reference.paxos.config import PaxosConfig
from reference.paxos.messages import Membership, Propose, ProposeResult, ReadResult
from reference.runtime.sim import SimRuntime

REPLICAS = ("b1", "b2", "b3")
TOPIC, GROUP = "payments", "notification"


class FailOnce(Node):
    """At 2 s, stores m1 and sends it back for the group, as a failed handling does
    (its retry due 10 s later, RocketMQ's first consumer delay level)."""

    def __init__(self) -> None:
        self.caller = GroupCaller({"broker": REPLICAS})

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer(2_000.0, "send")

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        if isinstance(tag, tuple) and tag[0] == CALL_TIMER:
            self.caller.on_timer(ctx, tag)
            return
        body = Payload("m1", "u1", "m1@pay", 100)

        def stored(ok: bool, result: object) -> None:
            assert ok and isinstance(result, tuple) and result[0] == "stored", result
            back = Propose("back-m1", SendBack(GROUP, int(result[1]), 0, 0))
            self.caller.call(ctx, "broker", back, lambda ok, r: None)

        send = Propose("m1", SendMessage(TOPIC, "m1", "u1", body, 0))
        self.caller.call(ctx, "broker", send, stored)

    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        if isinstance(msg, ProposeResult | ReadResult):
            self.caller.on_result(ctx, src, msg)


def test_a_retry_in_its_delay_does_not_hold_a_consumer_from_caught_up() -> None:
    topo = Topology.build({"hangzhou": {"hz": [*REPLICAS, "c1", "script"]}})
    rt = SimRuntime(topology=topo, seed=3, strict=True)
    cfg = PaxosConfig(membership=Membership(1, REPLICAS))
    for n in REPLICAS:
        rt.add_node(n, functools.partial(BrokerReplica, cfg=cfg, broker=BrokerConfig(),
                                         producers={"p": ("c1",)}))  # fmt: skip
    history: list[dict[str, Any]] = []
    ccfg = ConsumerConfig(
        GROUP, TOPIC, (0, 1, 2, 3), "notification", REPLICAS, history.append,
        poll_interval_ms=50.0,
    )  # fmt: skip
    rt.add_node("c1", functools.partial(MessageConsumer, config=ccfg))
    rt.add_node("script", lambda nid: FailOnce())
    rt.start()
    consumer = rt.node("c1")
    assert isinstance(consumer, MessageConsumer)
    rt.run_until(4_000.0)
    leaders = [rt.node(n) for n in REPLICAS if getattr(rt.node(n), "role", "") == "leader"]
    assert len(leaders) == 1 and isinstance(leaders[0], BrokerReplica)
    # The retry waits in the schedule topic (its delay level's queue), not due yet.
    assert leaders[0].machine.waiting_retries(GROUP) == 1
    assert leaders[0].machine.lag(GROUP, retry_topic(GROUP)) == 1
    assert consumer.caught_up(rt.now_ms, fresh_ms=2_000.0)
    rt.run_until(13_500.0)  # due at about 12 s: read, and caught up again
    received = [e["value"]["id"] for e in history if e["f"] == "receive" and e["type"] == "ok"]
    assert received.count("m1") == 2 and consumer.caught_up(rt.now_ms, fresh_ms=2_000.0)


def test_a_read_sent_before_the_last_half_was_resolved_is_not_the_queues_end() -> None:
    """A check-back's COMMIT appends its message as it resolves the half: a pull
    sent before the leader said "no half unresolved" may have read the queue
    before that message (on Docker, seed 3 under partition-one-way,
    partition-bridge, kill: 30 messages committed by a check, read by loyalty
    and notification, "lost" for settlement, whose older reads passed the gate)."""
    from reference.mq.messages import ConsumerList
    from reference.testing import RecordingContext

    ccfg = ConsumerConfig(GROUP, TOPIC, (0,), "notification", REPLICAS, lambda e: None)
    consumer = MessageConsumer("c1", ccfg)
    ctx = RecordingContext(node_id="c1", clock_ms=0.0)
    consumer.on_start(ctx)
    ctx.clock_ms = 800.0
    consumer.on_message(ctx, "b1", ConsumerList(GROUP, ("c1",), unresolved_halves=3))
    queues = list(consumer.queues.values())  # its queue and its group's retry queue
    for q in queues:
        q.next_offset = q.max_offset = 5  # a pull sent at 900 ms read it to its end
        q.pull_asked_ms, q.pulled_ms = 900.0, 905.0
    ctx.clock_ms = 1_000.0
    consumer.on_message(ctx, "b1", ConsumerList(GROUP, ("c1",), unresolved_halves=0))
    assert consumer.no_halves_since_ms == 1_000.0
    assert consumer.caught_up(1_100.0, fresh_ms=2_000.0)  # the old gate's question: yes
    assert not consumer.caught_up(1_100.0, fresh_ms=2_000.0, asked_after_ms=1_000.0)
    for q in queues:
        q.pull_asked_ms, q.pulled_ms = 1_050.0, 1_060.0  # read again after it: the end
    assert consumer.caught_up(1_100.0, fresh_ms=2_000.0, asked_after_ms=1_000.0)
    # Still none unresolved: the run of answers began at 1,000 ms.
    ctx.clock_ms = 1_500.0
    consumer.on_message(ctx, "b1", ConsumerList(GROUP, ("c1",), unresolved_halves=0))
    assert consumer.no_halves_since_ms == 1_000.0
    consumer.on_message(ctx, "b1", ConsumerList(GROUP, ("c1",), unresolved_halves=1))
    assert consumer.no_halves_since_ms == float("inf")
