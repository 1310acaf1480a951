"""Cluster flow control: N payment gateways share one limit through a token server."""

from __future__ import annotations

from typing import Any

from chapters import get_stage
from reference.degrade import ClusterRule
from reference.runtime.sim import SimRuntime


def run(
    cluster: str, server_down_at_ms: float | None = None, failover: bool = False
) -> tuple[dict[str, Any], list[str]]:
    stage = get_stage("ch6")
    extra = {"gateways": 3, "cluster": cluster, "spike_ms": 2_000.0, "after_ms": 4_000.0,
             "failover": failover}  # fmt: skip
    options = stage.options(seed=1, variant="controls", extra=extra)
    rt = SimRuntime(topology=stage.topology(options), seed=options.seed)
    dep = stage.build(rt, options)
    rt.start()
    dep.apply_scenario("overload-10x")
    if server_down_at_ms is not None:
        rt.call_at(server_down_at_ms, lambda: dep.crash(["token-server"], "token server down"))
    rt.run_until(dep.end_ms)
    modes = [e.value["mode"] for e in dep.history if e.f == "degrade:cluster"]
    failovers = [e.value["server"] for e in dep.history if e.value == {"mode": "failover",
                 "server": "token-server-2"}]  # fmt: skip
    modes += ["moved"] * len(failovers)
    return dep.run_checks()["slo"].details, modes


def test_the_fallback_is_the_share_of_one_node() -> None:
    rule = ClusterRule("pay", 90.0, "token-server", nodes=3)
    assert rule.fallback_count == 30.0
    assert ClusterRule("pay", 90.0, "token-server", 3, fallback_whole=True).fallback_count == 90.0


def test_a_token_server_holds_the_global_limit_and_its_loss_falls_back_to_limit_over_n() -> None:
    served, modes = run("token-server")
    assert served["goodput_share"] >= 0.9 and served["p99_ms"] <= 1_000.0
    assert modes == []  # the server answered every time
    fallback, modes = run("token-server", server_down_at_ms=3_000.0)
    assert "fallback" in modes
    assert fallback["goodput_share"] >= 0.9
    # Sentinel's fallback (the whole limit on each of the 3 nodes) lets 3x the limit at
    # the database while the server is down: the queue that follows shows in the p99.
    whole, _ = run("whole", server_down_at_ms=3_000.0)
    assert whole["p99_ms"] > 2 * fallback["p99_ms"], (whole, fallback)


def test_servers_in_order_and_around() -> None:
    rule = ClusterRule("pay", 90.0, "ts-1", nodes=3, standbys=("ts-2",))
    assert [rule.server_at(i) for i in range(3)] == ["ts-1", "ts-2", "ts-1"]


def test_the_gateways_move_to_the_standby_token_server() -> None:
    details, modes = run("token-server", server_down_at_ms=3_000.0, failover=True)
    assert modes.count("moved") == 3  # each of the three gateways, once
    assert modes[-1 - 3] == "server"  # after moving, tokens come from a server again
    assert details["goodput_share"] >= 0.9
