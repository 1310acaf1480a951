"""What each variant of chapter 6 wraps around which node: plain data, no node classes.

Three layers carry a payment: the client, the edge gateway, the payment
gateway (which also calls the best-effort dependencies), and the payment
database. The variants differ only in the sidecar configuration of each.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from reference.degrade import (
    DEFAULT_PLAN,
    BestEffortCall,
    BreakerRule,
    ClusterRule,
    FlowRule,
    GuardConfig,
    LeaseRule,
    ParamFlowRule,
    SidecarConfig,
    SystemRule,
)
from reference.degrade.sidecar import Record

__all__ = [
    "BEST_EFFORT",
    "CLUSTER_MODES",
    "CONTROLS",
    "TOKEN_GROUP",
    "TOKEN_SERVER",
    "TOKEN_STANDBY",
    "Wiring",
    "wiring",
]

EDGE, PAY_GATEWAY, PAY_DB = "gw-edge", "gw-pay", "paydb"
TOKEN_SERVER = "token-server"
TOKEN_STANDBY = "token-server-2"
TOKEN_GROUP = ("tokens-1", "tokens-2", "tokens-3")  # the loans of `leases`: a Paxos group
# How N payment gateways share the limit.
CLUSTER_MODES = ("local", "token-server", "whole", "leases")
BEST_EFFORT = ("notify", "loyalty", "recommend")
LAYER_ATTEMPT_TIMEOUT_MS = 400.0  # each layer's fixed per-try timeout (the naive way)
BEST_EFFORT_TIMEOUT_MS = 1_500.0  # a fixed timeout on each best-effort call
RATE_SHARE = 0.95  # the flow rule admits this share of the payment database's capacity
QUEUE_MS = 100.0  # ... and queues a call at most this long (Sentinel's default: 500)
HOT_SHARE = 0.5  # one merchant may take at most this share of the capacity


@dataclass(frozen=True)
class Wiring:
    edge: SidecarConfig
    pay: SidecarConfig
    db: SidecarConfig
    deadline_at_dependencies: bool


# --8<-- [start:wiring]
CONTROLS = ("deadline", "flow", "budget", "decouple")  # what `controls` adds, one by one


def wiring(
    variant: str, capacity_tps: float, record: Record, protect: str = "flow",
    enabled: tuple[str, ...] = CONTROLS, gateways: int = 1, cluster: str = "local",
    failover: bool = False, hot_share: float = HOT_SHARE,
) -> Wiring:  # fmt: skip
    """The sidecars of `variant` ("none", "naive-retries", "controls").

    `enabled` picks which of the controls `controls` turns on (all by default),
    so a chapter can add them one at a time and measure each. With several
    payment gateways, `cluster` says how they share the flow rule's count:
    "local" (each holds count / N), "token-server" (a token server counts the
    whole; each falls back to count / N without it) or "whole" (the same, but
    falling back to the whole count, as Sentinel does), or "leases" (each owns
    count / N and lends what it will not use through a Paxos group,
    `reference.degrade.leases`); `failover` adds a standby token server the
    gateways move to when the first stops answering.
    `hot_share` caps any one merchant at that share of the capacity (0: no cap).
    """
    assert gateways >= 1 and cluster in CLUSTER_MODES, (gateways, cluster)
    assert set(enabled) <= set(CONTROLS), enabled
    calls = tuple(BestEffortCall(p, p, BEST_EFFORT_TIMEOUT_MS) for p in BEST_EFFORT)
    if variant in ("none", "naive-retries"):
        # Fixed timeouts, no limits; best-effort calls inside the payment's answer.
        attempts = 3 if variant == "naive-retries" else 1  # 3 x 3 x 3 = 27 tries at the db
        layer = SidecarConfig(attempts=attempts, attempt_timeout_ms=LAYER_ATTEMPT_TIMEOUT_MS)
        pay = SidecarConfig(
            attempts=attempts, attempt_timeout_ms=LAYER_ATTEMPT_TIMEOUT_MS,
            best_effort=calls, best_effort_sync=True, record=record,
        )  # fmt: skip
        return Wiring(layer, pay, SidecarConfig(serves=True, record=record), False)
    assert variant == "controls", variant
    deadline = "deadline" in enabled
    # Retries only inside a gRPC budget (10 tokens, 0.1 back per success), never past the deadline.
    budget = "budget" in enabled
    edge = SidecarConfig(
        attempt_timeout_ms=LAYER_ATTEMPT_TIMEOUT_MS, deadline=deadline,
        attempts=3 if budget else 1, throttle_tokens=10.0 if budget else 0.0, throttle_ratio=0.1,
    )  # fmt: skip
    flow = "flow" in enabled
    shared = flow and protect == "flow" and gateways > 1 and cluster != "local"
    rule_tps = RATE_SHARE * capacity_tps
    guard = _guard(protect, capacity_tps, gateways, shared, hot_share) if flow else None
    cluster_rule = lease_rule = None
    if shared and cluster == "leases":
        lease_rule = LeaseRule(
            "pay", rule_tps, TOKEN_GROUP, gateways, max_queueing_time_ms=QUEUE_MS
        )
    elif shared:
        cluster_rule = ClusterRule(
            "pay", rule_tps, TOKEN_SERVER, gateways, fallback_whole=cluster == "whole",
            max_queueing_time_ms=QUEUE_MS, standbys=(TOKEN_STANDBY,) if failover else (),
        )  # fmt: skip
    decouple = "decouple" in enabled
    breaker = BreakerRule("best-effort", "slow-ratio", 0.5, slow_rt_ms=200.0, open_ms=2_000.0,
                          probes=3, probe_timeout_ms=1_000.0)  # fmt: skip
    pay = dataclasses.replace(  # the edge's layer settings, and the payment gateway's own
        edge, guard=guard, best_effort=calls, best_effort_sync=not decouple,
        best_effort_breaker=breaker if decouple else None,
        plan=DEFAULT_PLAN if decouple else None, capacity_qps=capacity_tps / gateways,
        cluster=cluster_rule, leases=lease_rule, record=record,
    )  # fmt: skip
    db = SidecarConfig(serves=True, deadline=deadline, record=record)
    return Wiring(edge, pay, db, deadline)


def _guard(
    protect: str, capacity_tps: float, gateways: int, shared: bool, hot_share: float
) -> GuardConfig:
    """A payment gateway's inbound rules: a flow rule, or one of the adaptive limits."""
    per_merchant_tps = hot_share * capacity_tps / gateways
    hot = (ParamFlowRule("pay", "merchant", per_merchant_tps),) if hot_share > 0 else ()
    if shared:
        return GuardConfig(params=hot)  # the flow rule is the token server's
    if protect == "flow":
        rule = FlowRule("pay", RATE_SHARE * capacity_tps / gateways, behavior="rate-limiter",
                        max_queueing_time_ms=QUEUE_MS)  # fmt: skip
        return GuardConfig(flow=(rule,), params=hot)
    if protect == "bbr":
        return GuardConfig(system=SystemRule(), params=hot, interval_ms=1_000.0, buckets=10)
    if protect == "gradient2":
        return GuardConfig(gradient2=True, params=hot)
    raise ValueError(f"unknown protection {protect!r} (flow, bbr, gradient2)")


# --8<-- [end:wiring]
