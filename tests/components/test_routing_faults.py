"""Regressions for the routing layer under lost messages and disagreeing rules.

Each test reproduces a defect found while composing chapter 4 on top of
chapter 3: a request bouncing between two gateways on different rule
versions, a rule push or a SetRules lost once and never repaired, and a
merchant account whose cell failed over twice still routed to the first
standby.
"""

from __future__ import annotations

from collections import deque

from reference.cells import (
    CellPair,
    ConfigAck,
    ConfigUpdate,
    CZone,
    FailoverController,
    GZone,
    RulesAck,
    SetRules,
)
from reference.codec import Message
from reference.gateway import (
    CellRouter,
    GatewayConfig,
    GatewayRejected,
    PaymentGateway,
    Pong,
    RoutingRules,
    RulesUpdate,
    RulesUpdateAck,
    even_buckets,
)
from reference.node import Node
from reference.payment import PayRequest
from reference.sqlstore import Promote, PromoteAck
from reference.testing import RecordingContext

GATEWAYS = {"rz0": "gw-rz0", "rz1": "gw-rz1"}
STORES = {"rz0": "db-rz0", "rz1": "db-rz1"}


def _gateway(cell: str, rules: RoutingRules) -> PaymentGateway:
    config = GatewayConfig(cell=cell, rules=rules, cell_gateways=GATEWAYS, cell_stores=STORES)
    return PaymentGateway(config)


def _fire(node: Node, ctx: RecordingContext, tag: object) -> None:
    """Advance the clock to `tag`'s due time and fire it."""
    ctx.clock_ms = ctx.timers.pop(tag)
    node.on_timer(ctx, tag)


def test_a_request_bouncing_between_gateways_on_different_rules_is_refused() -> None:
    v1 = even_buckets(["rz0", "rz1"])  # bucket 77 -> rz1
    # v2 moved bucket 77 to rz0, and only gw-rz1 heard of it: each gateway
    # now believes the other serves user 77.
    v2 = RoutingRules(2, tuple("rz0" if b == 77 else c for b, c in enumerate(v1.buckets)), {})
    nodes = {"gw-rz0": _gateway("rz0", v1), "gw-rz1": _gateway("rz1", v2)}
    ctxs = {nid: RecordingContext(node_id=nid) for nid in nodes}
    for nid, node in nodes.items():
        node.on_start(ctxs[nid])
    wire: deque[tuple[str, str, Message]] = deque(
        [("client", "gw-rz0", PayRequest("r1", "p1", "u77", "m1@rz0", 10, 1_000.0))]
    )
    to_client: list[Message] = []
    deliveries = 0
    while wire and deliveries < 100:  # the bug: this bounced 327,692 times in chapter 4
        src, dst, msg = wire.popleft()
        deliveries += 1
        if dst == "client":
            to_client.append(msg)
            continue
        assert dst in nodes, f"{dst} got {msg}: nothing should reach a store"
        nodes[dst].on_message(ctxs[dst], src, msg)
        wire.extend((dst, d, m) for d, m in ctxs[dst].take_sent())
    assert not wire, "the request is still bouncing"
    assert to_client == [GatewayRejected("r1", "misrouted", "gw-rz0")]
    assert deliveries <= 6  # two forwards, one refusal relayed back twice, the client
    assert ctxs["gw-rz0"].counters["misrouted"] == 1
    assert not nodes["gw-rz0"].relay and not nodes["gw-rz1"].relay  # nothing left pending


def test_a_lost_rule_push_is_resent_until_acknowledged() -> None:
    v1 = even_buckets(["rz0", "rz1"])
    v2 = RoutingRules(2, v1.buckets, {"rz1": "rz1s"})
    gzone, gctx = GZone(v1, (0, 1), ["cz-a"]), RecordingContext(node_id="gzone")
    czone, cctx = CZone(v1, (0, 1), ["gw-rz0"]), RecordingContext(node_id="cz-a")
    gw, wctx = _gateway("rz0", v1), RecordingContext(node_id="gw-rz0")
    gzone.on_start(gctx)
    for _, msg in gctx.take_sent():  # the boot publish arrives and is acknowledged
        czone.on_message(cctx, "gzone", msg)
    for _, ack in cctx.take_sent():
        gzone.on_message(gctx, "cz-a", ack)
    gzone.on_message(gctx, "controller", SetRules(v2, "failover"))
    sent = gctx.take_sent()
    assert ("cz-a", ConfigUpdate(v2, (0, 1))) in sent  # ... and the network drops it
    _fire(gzone, gctx, "resend")
    assert gctx.take_sent() == [("cz-a", ConfigUpdate(v2, (0, 1)))]
    assert gctx.counters["config_resent"] == 1
    czone.on_message(cctx, "gzone", ConfigUpdate(v2, (0, 1)))
    sent = cctx.take_sent()
    assert sent == [("gw-rz0", RulesUpdate(v2)), ("gzone", ConfigAck(2, "cz-a"))]
    # The push to the gateway is lost too; the CZone asks again, with a longer pause.
    first_due_ms = cctx.timers["resend"]
    _fire(czone, cctx, "resend")
    assert cctx.take_sent() == [("gw-rz0", RulesUpdate(v2))]
    assert cctx.timers["resend"] - first_due_ms > first_due_ms - 0.0  # backed off
    gw.on_message(wctx, "cz-a", RulesUpdate(v2))
    assert gw.cell_router is not None and gw.cell_router.rules.version == 2
    assert wctx.take_sent() == [("cz-a", RulesUpdateAck(2, "gw-rz0"))]
    czone.on_message(cctx, "gw-rz0", RulesUpdateAck(2, "gw-rz0"))
    gzone.on_message(gctx, "cz-a", ConfigAck(2, "cz-a"))
    _fire(czone, cctx, "resend")
    _fire(gzone, gctx, "resend")
    assert cctx.take_sent() == [] and gctx.take_sent() == []  # everyone acked: quiet
    assert "resend" not in cctx.timers and "resend" not in gctx.timers


def test_a_lost_promote_and_a_lost_set_rules_are_resent_until_acknowledged() -> None:
    rules = even_buckets(["rz0", "rz1"])
    pairs = {
        "rz0": CellPair("rz0", "gw-rz0", "rz0s", "db-rz0s"),
        "rz1": CellPair("rz1", "gw-rz1", "rz1s", "db-rz1s"),
    }
    ctl = FailoverController(pairs, rules, "gzone", probe_every_ms=100, suspect_after_ms=300)
    ctx = RecordingContext(node_id="controller")
    ctl.on_start(ctx)
    for t in (100, 200, 300, 400):
        ctx.clock_ms = t
        ctl.on_message(ctx, "gw-rz0", Pong(t, "gw-rz0"))
        ctl.on_timer(ctx, "probe")
    assert ("db-rz1s", Promote("rz1 failed over")) in ctx.take_sent()  # lost
    _fire(ctl, ctx, ("promote-retry", "rz1"))
    assert ctx.take_sent() == [("db-rz1s", Promote("rz1 failed over"))]
    ctl.on_message(ctx, "db-rz1s", PromoteAck("db-rz1s", 42))
    assert ("promote-retry", "rz1") not in ctx.timers
    ((dst, first),) = ctx.take_sent()
    assert dst == "gzone" and isinstance(first, SetRules) and first.rules.version == 2  # lost
    pauses = []
    for _ in range(6):  # unacknowledged: re-sent, each pause longer, up to a cap
        due_ms = ctx.timers["rules-retry"]
        pauses.append(due_ms - ctx.clock_ms)
        _fire(ctl, ctx, "rules-retry")
        ((dst, again),) = [(d, m) for d, m in ctx.take_sent() if isinstance(m, SetRules)]
        assert dst == "gzone" and again.rules == first.rules
    assert pauses == sorted(pauses) and pauses[-1] > pauses[0] and pauses[-1] <= 3_200
    ctl.on_message(ctx, "gzone", RulesAck(2))
    assert "rules-retry" not in ctx.timers
    assert ("failover-complete", {"cell": "rz1", "declared_ms": 400, "version": 2}) in ctx.traces


def test_moved_follows_a_chain_of_failovers_and_stops_on_a_cycle() -> None:
    cells = ["sh-1", "sz-1", "hz-1"]
    rules = RoutingRules(3, even_buckets(cells).buckets, {"sh-1": "sz-1", "sz-1": "hz-1"})
    router = CellRouter(rules, {c: f"gw-{c}" for c in cells}, {c: f"db-{c}" for c in cells})
    assert router.cell_of_account("m7@sh-1") == "hz-1"  # not sz-1, which failed over too
    assert router.store_of("m7@sz-1") == "db-hz-1"
    assert router.cell_of_account("m7@hz-1") == "hz-1"
    ring = RoutingRules(4, rules.buckets, {"sh-1": "sz-1", "sz-1": "hz-1", "hz-1": "sh-1"})
    assert ring.home_of("sh-1") == "hz-1"  # the walk ends where the cycle closes
