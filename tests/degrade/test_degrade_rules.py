"""Unit tests of the rules' semantics: strategies, hot parameters, adaptive limits, switches."""

from __future__ import annotations

from reference.degrade import (
    Blocked,
    Breaker,
    BreakerRule,
    DegradePlan,
    FlowRule,
    Gradient2,
    Guard,
    GuardConfig,
    ParamFlowRule,
    SlidingWindow,
    Switch,
    SwitchBoard,
    SystemRule,
)


def test_window_forgets_buckets_older_than_its_interval() -> None:
    w = SlidingWindow(1000.0, 2)
    for t in (0.0, 100.0, 600.0):
        w.add_pass(t)
    assert w.passed(900.0) == 3
    assert w.passed(1100.0) == 1  # the [0, 500) bucket left the window
    assert w.passed(2600.0) == 0


def test_relate_limits_a_resource_when_another_is_hot() -> None:
    g = Guard(GuardConfig(flow=(FlowRule("refund", 2, strategy="relate", ref_resource="pay"),)))
    for i in range(5):
        g.entry(float(i), "pay")
    assert isinstance(g.entry(10.0, "refund"), Blocked)  # pay is hot: 5 >= 2
    assert not isinstance(g.entry(2000.0, "refund"), Blocked)  # pay calmed down


def test_chain_limits_only_calls_through_its_entry_point() -> None:
    rule = FlowRule("query", 1, strategy="chain", ref_resource="checkout")
    g = Guard(GuardConfig(flow=(rule,)))
    assert not isinstance(g.entry(0.0, "query", entry="checkout"), Blocked)
    assert isinstance(g.entry(1.0, "query", entry="checkout"), Blocked)
    for t in (2.0, 3.0, 4.0):  # other entry points are not limited by it
        assert not isinstance(g.entry(t, "query", entry="admin"), Blocked)


def test_limit_app_applies_to_one_caller() -> None:
    g = Guard(GuardConfig(flow=(FlowRule("pay", 1, limit_app="gw-a"),)))
    assert not isinstance(g.entry(0.0, "pay", caller="gw-a"), Blocked)
    assert isinstance(g.entry(1.0, "pay", caller="gw-a"), Blocked)
    assert not isinstance(g.entry(2.0, "pay", caller="gw-b"), Blocked)


def test_hot_parameter_limits_each_value_with_exceptions() -> None:
    rule = ParamFlowRule("pay", "merchant", 2, exceptions={"m:big": 5})
    g = Guard(GuardConfig(params=(rule,)))
    passed = {"m:0": 0, "m:big": 0, "m:1": 0}
    for i in range(10):
        for m in passed:
            if not isinstance(g.entry(float(i), "pay", args={"merchant": m}), Blocked):
                passed[m] += 1
    assert passed == {"m:0": 2, "m:big": 5, "m:1": 2}
    assert not isinstance(g.entry(1000.0, "pay", args={"merchant": "m:0"}), Blocked)  # refilled


def test_bbr_blocks_when_in_flight_exceeds_what_the_node_finishes() -> None:
    g = Guard(GuardConfig(system=SystemRule()))
    # 10 calls finish in 10 ms each within one bucket: max success 20/s x 10 ms = 0.2.
    for i in range(10):
        e = g.entry(float(i), "pay")
        assert not isinstance(e, Blocked)
        g.exit(float(i) + 10.0, e, error=False)
    first = g.entry(100.0, "pay")
    second = g.entry(100.0, "pay")
    assert not isinstance(first, Blocked) and not isinstance(second, Blocked)  # in flight <= 1
    assert g.entry(100.0, "pay") == Blocked("system:bbr")


def test_gradient2_shrinks_when_latency_rises_and_grows_back() -> None:
    g = Gradient2(limit=20.0, limit_min=2.0, limit_max=100.0)
    for _ in range(50):
        g.on_sample(10.0, inflight=20)
    steady = g.limit
    for _ in range(30):
        g.on_sample(100.0, inflight=int(g.limit))
    assert g.limit < steady / 2  # latency x10: the limit comes down
    low = g.limit
    for _ in range(200):
        g.on_sample(10.0, inflight=int(g.limit))
    assert g.limit > low


def test_breaker_with_several_probes_closes_only_when_all_succeed() -> None:
    b = Breaker(BreakerRule("dep", "error-ratio", 0.5, open_ms=100.0, probes=2))
    for i in range(5):
        assert b.try_pass(float(i))
        b.on_complete(float(i), 1.0, error=True)
    assert b.state == "open"
    assert not b.try_pass(50.0)
    assert b.try_pass(150.0) and b.state == "half-open"
    assert b.try_pass(151.0)
    assert not b.try_pass(152.0)  # two probes out: no third
    b.on_complete(160.0, 1.0, error=False)
    assert b.state == "half-open"
    b.on_complete(161.0, 1.0, error=False)
    assert b.state == "closed"


def test_breaker_does_not_stick_half_open_when_its_probe_never_returns() -> None:
    b = Breaker(BreakerRule("dep", "error-count", 0, open_ms=100.0, probe_timeout_ms=50.0,
                            min_requests=1))  # fmt: skip
    b.try_pass(0.0)
    b.on_complete(0.0, 1.0, error=True)
    assert b.try_pass(100.0) and b.state == "half-open"  # the probe is lost
    b.tick(160.0)
    assert b.state == "open"  # Sentinel's single probe would wait for ever
    assert b.try_pass(260.0) and b.state == "half-open"


def test_switches_go_off_in_plan_order_and_come_back_after_calm() -> None:
    plan = DegradePlan((Switch("recommend", 0.7, 0.5, 100.0), Switch("notify", 0.95, 0.7, 100.0)))
    board = SwitchBoard(plan)
    assert board.update(0.0, 0.8) == [("recommend", False)]
    assert board.is_on("notify") and not board.is_on("recommend")
    assert board.update(10.0, 1.2) == [("notify", False)]
    assert board.update(20.0, 0.4) == []  # calm, but not for hold_ms yet
    assert board.update(130.0, 0.4) == [("recommend", True), ("notify", True)]
    board.force("notify", False)  # a drill
    assert not board.is_on("notify")


def test_a_hot_value_gets_its_tokens_back_when_the_flow_rule_blocks_the_call() -> None:
    # Sentinel keeps the token of a call its flow rule then blocks: under a spike the
    # hot value spends its count on calls that never run. Here the token goes back.
    rule = ParamFlowRule("pay", "merchant", 2)
    g = Guard(GuardConfig(flow=(FlowRule("pay", 1),), params=(rule,)))
    hot = {"merchant": "m:0"}
    assert not isinstance(g.entry(0.0, "pay", args=hot), Blocked)
    for t in (1.0, 2.0, 3.0):
        assert g.entry(t, "pay", args=hot) == Blocked("flow:pay")
    assert g.params[0].buckets["m:0"].tokens == 1  # one spent (the call that ran), one left


def test_a_chain_rate_limiter_spaces_only_its_entry_points_calls() -> None:
    rule = FlowRule("query", 1, behavior="rate-limiter", strategy="chain", ref_resource="checkout",
                    max_queueing_time_ms=0.0)  # fmt: skip
    g = Guard(GuardConfig(flow=(rule,)))
    assert not isinstance(g.entry(0.0, "query", entry="checkout"), Blocked)
    assert isinstance(g.entry(1.0, "query", entry="checkout"), Blocked)
    assert not isinstance(g.entry(2.0, "query", entry="admin"), Blocked)
