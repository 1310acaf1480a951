"""The broker group on the simulator: the wheel's ticks and the check-back go
through the log, and survive the leader's crash."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from reference.codec import Message
from reference.mq.broker import BrokerReplica
from reference.mq.caller import CALL_TIMER, GroupCaller
from reference.mq.machine import BrokerConfig, BrokerMachine, queue_of
from reference.mq.messages import (
    CheckTransaction,
    EndTransaction,
    Payload,
    PullQueries,
    PullQuery,
    PullResult,
    PullResults,
    SendHalf,
    SendMessage,
    SendTimer,
)
from reference.net.topology import Topology
from reference.node import Context, Node, NodeId
from reference.paxos.config import PaxosConfig
from reference.paxos.messages import Membership, Propose, ProposeResult, Read, ReadResult
from reference.runtime.sim import SimRuntime

REPLICAS = ("b1", "b2", "b3")
GROUP, TOPIC = "producers", "payments"
BROKER = BrokerConfig(transaction_timeout_ms=1_000, transaction_check_interval_ms=2_000)


class Producer(Node):
    """Stores a timer message and a half message it never ends; answers checks: COMMIT."""

    def __init__(self) -> None:
        self.caller = GroupCaller({"broker": REPLICAS})
        self.checks: list[CheckTransaction] = []

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer(1_000.0, "go")

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        if isinstance(tag, tuple) and tag[0] == CALL_TIMER:
            self.caller.on_timer(ctx, tag)
            return
        body = Payload("p1", "u1", "m1@pay", 1)
        at_ms = int(ctx.now_ms()) + 3_000
        self.caller.call(
            ctx, "broker", Propose("t", SendTimer(TOPIC, "t1", "u1", body, at_ms, 0)), _ignore
        )
        self.caller.call(
            ctx, "broker", Propose("h", SendHalf(GROUP, TOPIC, "h1", "u2", body, 0)), _ignore
        )

    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        if isinstance(msg, CheckTransaction):
            self.checks.append(msg)
            end = EndTransaction(GROUP, msg.msg_id, True, True, 0)
            # Answered to the replica that asked (it leads), one-way.
            self.caller.call(ctx, "broker", Propose(f"end{len(self.checks)}", end), None, to=src)
        elif isinstance(msg, ProposeResult | ReadResult):
            self.caller.on_result(ctx, src, msg)


def _ignore(ok: bool, result: Any) -> None:
    return None


def _leader(rt: SimRuntime) -> BrokerReplica:
    for n in REPLICAS:
        node = rt.node(n)
        if isinstance(node, BrokerReplica) and node.role == "leader":
            return node
    raise AssertionError("no leader")


def _visible(machine: BrokerMachine, key: str) -> list[str]:
    q = queue_of(key, machine.config.queues_per_topic)
    return [m.msg_id for m in machine.pull(PullQuery("g", TOPIC, q, -1, 32, 10**9)).messages]


def test_the_wheel_and_the_check_back_run_through_the_log_across_a_leader_crash() -> None:
    topo = Topology.build(
        {
            "hangzhou": {"hz": ["b1", "producer"]},
            "shanghai": {"sh": ["b2"]},
            "shenzhen": {"sz": ["b3"]},
        }
    )
    rt = SimRuntime(topology=topo, seed=3, strict=True)
    cfg = PaxosConfig(membership=Membership(1, REPLICAS))
    for n in REPLICAS:
        rt.add_node(n, lambda nid: BrokerReplica(nid, cfg, BROKER, {GROUP: ("producer",)}))
    producer = Producer()
    rt.add_node("producer", lambda nid: producer)
    rt.start()
    rt.run_until(1_500.0)
    first = _leader(rt)
    assert first.machine.wheel.size == 1 and "h1" in first.machine.halves
    rt.crash(first.node_id)
    rt.run_until(3_900.0)
    assert _visible(_leader(rt).machine, "u1") == []  # not due before ~4,000 ms
    rt.run_until(6_500.0)
    leader = _leader(rt).machine
    assert _visible(leader, "u1") == ["t1"]
    timer = next(m for m in leader.log if m.msg_id == "t1" and m.topic == TOPIC)
    assert 4_000 <= timer.born_ms < 5_200  # delivered within a tick of its second
    # The half message was never ended: the new leader asked, and the answer committed it.
    assert [c.msg_id for c in producer.checks] == ["h1"]
    assert _visible(leader, "u2") == ["h1"] and leader.ops["h1"] == "committed"


class LongPoller(Node):
    """Long-polls queue `queue` from t=1 s (with `also`, both queues in one read);
    a plain message is sent at t=1.5 s."""

    def __init__(self, queue: int, also: int | None = None) -> None:
        self.queue = queue
        self.also = also
        self.answers: list[tuple[float, tuple[str, ...]]] = []
        self.caller = GroupCaller({"broker": REPLICAS}, attempt_timeout_ms=5_000.0)

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer(1_000.0, "pull")
        ctx.set_timer(1_500.0, "send")

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        if isinstance(tag, tuple) and tag[0] == CALL_TIMER:
            self.caller.on_timer(ctx, tag)
        elif tag == "send":
            body = Payload("p1", "u1", "m1@pay", 1)
            self.caller.call(
                ctx, "broker", Propose("s", SendMessage(TOPIC, "s1", "u1", body, 0)), _ignore
            )
        elif tag == "pull":
            query: Message = PullQuery("g", TOPIC, self.queue, 0, 32, 0, suspend_ms=2_000)
            if self.also is not None:
                other = PullQuery("g", TOPIC, self.also, 0, 32, 0, suspend_ms=2_000)
                query = PullQueries((other, query))

            def answered(ok: bool, result: Any) -> None:
                results = result.results if isinstance(result, PullResults) else (result,)
                assert ok and all(isinstance(r, PullResult) for r in results)
                ids = tuple(m.msg_id for r in results for m in r.messages)
                self.answers.append((ctx.now_ms(), ids))

            self.caller.call(ctx, "broker", Read(f"pull{len(self.answers)}", query), answered)

    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        if isinstance(msg, ProposeResult | ReadResult):
            self.caller.on_result(ctx, src, msg)


def test_a_long_poll_is_held_until_its_queue_grows_or_its_suspension_ends() -> None:
    topo = Topology.build({"hangzhou": {"hz": ["b1", "b2", "b3", "c1", "c2", "c3"]}})
    rt = SimRuntime(topology=topo, seed=3, strict=True)
    cfg = PaxosConfig(membership=Membership(1, REPLICAS))
    for n in REPLICAS:
        rt.add_node(n, lambda nid: BrokerReplica(nid, cfg, BROKER, {GROUP: ("c1",)}))
    queues = BROKER.queues_per_topic
    hit, miss = (
        LongPoller(queue_of("u1", queues)),
        LongPoller((queue_of("u1", queues) + 1) % queues),
    )
    # Both queues in one read (PullQueries): held while both are empty.
    both = LongPoller(queue_of("u1", queues), also=(queue_of("u1", queues) + 1) % queues)
    rt.add_node("c1", lambda nid: hit)
    rt.add_node("c2", lambda nid: miss)
    rt.add_node("c3", lambda nid: both)
    rt.start()
    rt.run_until(4_000.0)
    # Held from 1 s, answered with the message once it is committed (~1.5 s) ...
    ((at_ms, ids),) = hit.answers
    assert ids == ("s1",) and 1_500.0 <= at_ms < 1_700.0
    # ... while the other queue's pull waits out its 2 s and comes back empty.
    ((at_ms, ids),) = miss.answers
    assert ids == () and 3_000.0 <= at_ms < 3_200.0
    # One read of both queues is answered when either grows, with what each holds.
    ((at_ms, ids),) = both.answers
    assert ids == ("s1",) and 1_500.0 <= at_ms < 1_700.0
