"""The sidecar around a node, driven by hand with a recording context (no runtime)."""

from __future__ import annotations

from reference.degrade import (
    ControlAck,
    ControlDesk,
    ControlPlane,
    ControlUpdate,
    FlowRule,
    GuardConfig,
    Sidecar,
    SidecarConfig,
)
from reference.gateway import GatewayConfig, PaymentGateway
from reference.gateway.messages import GatewayRejected
from reference.payment import PayReply, PayRequest, merchant_account, user_account
from reference.testing import RecordingContext


def pay(req_id: str, deadline_ms: float) -> PayRequest:
    return PayRequest(req_id, f"p-{req_id}", user_account(1), merchant_account(1), 100, deadline_ms)


def gateway(config: SidecarConfig) -> Sidecar:
    return Sidecar(PaymentGateway(GatewayConfig(shards=("db",))), config)


def test_no_work_starts_after_its_deadline() -> None:
    ctx = RecordingContext(node_id="gw", clock_ms=500.0)
    sc = gateway(SidecarConfig(deadline=True))
    sc.on_start(ctx)
    sc.on_message(ctx, "client", pay("r1", deadline_ms=400.0))
    assert ctx.take_sent() == [("client", GatewayRejected("r1", "deadline", "gw"))]
    sc.on_message(ctx, "client", pay("r2", deadline_ms=900.0))
    assert [dst for dst, _ in ctx.take_sent()] == ["db"]  # in time: relayed


def test_a_flow_rule_refuses_and_the_reply_exits_the_entry() -> None:
    ctx = RecordingContext(node_id="gw")
    sc = gateway(SidecarConfig(guard=GuardConfig(flow=(FlowRule("pay", 1),))))
    sc.on_start(ctx)
    sc.on_message(ctx, "client", pay("r1", 0.0))
    sc.on_message(ctx, "client", pay("r2", 0.0))
    sent = ctx.take_sent()
    assert sent[0][0] == "db" and sent[1] == ("client", GatewayRejected("r2", "flow:pay", "gw"))
    assert sc.guard is not None and sc.guard.stats.concurrency("pay") == 1
    sc.on_message(ctx, "db", PayReply("r1", "p-r1", "paid", "", "db"))
    assert ctx.take_sent() == [("client", PayReply("r1", "p-r1", "paid", "", "db"))]
    assert sc.guard.stats.concurrency("pay") == 0


def test_retries_stop_when_the_budget_is_spent() -> None:
    ctx = RecordingContext(node_id="gw")
    config = SidecarConfig(attempts=3, attempt_timeout_ms=100.0, throttle_tokens=4.0)
    sc = gateway(config)
    sc.on_start(ctx)
    tries = 0
    for i in range(4):
        sc.on_message(ctx, "client", pay(f"r{i}", 0.0))
        for attempt in (1, 2, 3):
            tag = ("sc", "try", f"r{i}", attempt)
            if tag in ctx.timers:
                sc.on_timer(ctx, tag)
        tries += sum(1 for dst, _ in ctx.take_sent() if dst == "db")
    # 4 tokens: each timeout costs one, and no retry at half the bucket or less.
    assert sc.throttle is not None and sc.throttle.retries == 1
    assert tries == 4 + 1


def test_a_control_update_is_durable_before_its_ack_and_survives_a_restart() -> None:
    ctx = RecordingContext(node_id="gw")
    config = SidecarConfig(guard=GuardConfig(flow=(FlowRule("pay", 100),)))
    sc = gateway(config)
    sc.on_start(ctx)
    sc.on_message(ctx, "control", ControlUpdate(3, 7.0, (("loyalty", "off"),)))
    assert ctx.take_sent() == [("control", ControlAck(3, "gw"))]
    assert sc.guard is not None and sc.guard.flow.rules[0].count == 7.0
    reborn = gateway(config)  # a crash: a fresh object, the same disk
    reborn.on_start(ctx)
    assert reborn.control_version == 3
    assert reborn.guard is not None and reborn.guard.flow.rules[0].count == 7.0
    assert reborn.board is not None and not reborn.board.is_on("loyalty")
    reborn.on_message(ctx, "control", ControlUpdate(2, 50.0, ()))  # older: ignored, acked
    assert ctx.take_sent() == [("control", ControlAck(3, "gw"))]
    assert reborn.guard.flow.rules[0].count == 7.0


def test_the_control_plane_resends_until_each_target_acknowledges() -> None:
    desk = ControlDesk()
    plane = ControlPlane(desk, ("gw-1", "gw-2"))
    ctx = RecordingContext(node_id="control")
    plane.on_start(ctx)
    plane.on_timer(ctx, "tick")
    assert ctx.take_sent() == []  # nothing changed yet
    desk.change(0.0, flow_qps=5.0)
    plane.on_timer(ctx, "tick")
    assert sorted(dst for dst, _ in ctx.take_sent()) == ["gw-1", "gw-2"]
    plane.on_message(ctx, "gw-1", ControlAck(1, "gw-1"))
    ctx.clock_ms = 1_000.0
    plane.on_timer(ctx, "tick")
    assert [dst for dst, _ in ctx.take_sent()] == ["gw-2"]  # only the silent one, again


def test_a_queued_request_whose_timer_runs_late_is_refused_not_served() -> None:
    # A rate limiter queues r2 to start 100 ms later, well before its deadline. On a
    # busy host the timer fires after the deadline: the rule holds at the start.
    rule = FlowRule("pay", 10, behavior="rate-limiter")
    ctx = RecordingContext(node_id="gw", clock_ms=1_000.0)
    sc = gateway(SidecarConfig(deadline=True, serves=True, guard=GuardConfig(flow=(rule,))))
    sc.on_start(ctx)
    for req_id in ("r1", "r2"):
        sc.on_message(ctx, "client", pay(req_id, deadline_ms=1_300.0))
    assert [dst for dst, _ in ctx.take_sent()] == ["db"]  # r1 now, r2 queued
    ((tag, due_ms),) = [(t, d) for t, d in ctx.timers.items() if t[1:] == ("run", "r2")]
    assert due_ms < 1_300.0
    ctx.clock_ms = 1_450.0  # the timer ran 350 ms late
    sc.on_timer(ctx, tag)
    assert ctx.take_sent() == [("client", GatewayRejected("r2", "deadline", "gw"))]
    assert sc.guard is not None and sc.guard.stats.concurrency("pay") == 1  # r2's entry left


def test_the_host_probe_records_each_seconds_worst_lateness() -> None:
    records: list[dict[str, object]] = []
    ctx = RecordingContext(node_id="gw")
    sc = gateway(SidecarConfig(host_probe_ms=250.0, record=records.append))
    sc.on_start(ctx)
    for late_ms in (0.0, 30.0, 900.0, 10.0):  # four ticks of 250 ms: one second
        ctx.clock_ms = ctx.timers[("sc", "lag")] + late_ms
        sc.on_timer(ctx, ("sc", "lag"))
    assert [r["value"] for r in records] == [{"node": "gw", "lag_ms": 900.0}]
    assert records[0]["f"] == "degrade:host-lag"
    assert gateway(SidecarConfig()).config.host_probe_ms == 0.0  # off unless asked (the sim)
