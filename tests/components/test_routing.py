"""Routers, gateway forwarding, the naive transfer's flaw, and cell failover."""

from __future__ import annotations

from collections import Counter

from reference.cells import CellPair, FailoverController, RulesAck, SetRules
from reference.gateway import (
    BUCKETS,
    CellRouter,
    Forwarded,
    GatewayConfig,
    PaymentGateway,
    Ping,
    Pong,
    ShardRouter,
    even_buckets,
)
from reference.payment import LegReply, LegRequest, PayReply, PayRequest
from reference.sqlstore import Promote, PromoteAck
from reference.testing import RecordingContext


def test_shard_router_is_stable_and_spreads_users() -> None:
    router = ShardRouter([f"s{i}" for i in range(4)])
    counts = Counter(router.shard_of(f"u{uid}") for uid in range(4_000))
    assert set(counts) == {"s0", "s1", "s2", "s3"}
    assert max(counts.values()) < 1.15 * min(counts.values())
    assert ShardRouter(["s0", "s1", "s2", "s3"]).shard_of("u17") == router.shard_of("u17")


def test_cell_rules_are_data_and_move_by_version() -> None:
    rules = even_buckets(["rz0", "rz1"])
    assert rules.buckets[: BUCKETS // 2] == ("rz0",) * 50 and rules.buckets[-1] == "rz1"
    router = CellRouter(rules, {"rz0": "g0", "rz1": "g1", "rz1s": "g1s"}, {})
    assert router.cell_of_user(149) == "rz0" and router.cell_of_user(77) == "rz1"
    moved = type(rules)(
        2, tuple("rz1s" if c == "rz1" else c for c in rules.buckets), {"rz1": "rz1s"}
    )
    assert not router.update(type(rules)(1, moved.buckets, {}))  # an old version is ignored
    assert router.update(moved)
    assert router.gateway_of_user(77) == "g1s"
    assert router.cell_of_account("m3@rz1") == "rz1s"  # the merchant's share moved too


def _cell_gateway(cell: str) -> PaymentGateway:
    rules = even_buckets(["rz0", "rz1"])
    return PaymentGateway(
        GatewayConfig(
            cell=cell,
            rules=rules,
            cell_gateways={"rz0": "gw-rz0", "rz1": "gw-rz1"},
            cell_stores={"rz0": "db-rz0", "rz1": "db-rz1"},
        )
    )


def test_a_request_for_another_cell_is_forwarded_and_counted() -> None:
    gw, ctx = _cell_gateway("rz0"), RecordingContext(node_id="gw-rz0")
    gw.on_start(ctx)
    gw.on_message(ctx, "c", PayRequest("r1", "p1", "u77", "m1@rz1", 10, 1_000.0))
    req = PayRequest("r1", "p1", "u77", "m1@rz1", 10, 1_000.0)
    assert ctx.take_sent() == [("gw-rz1", Forwarded(req, hops=1))]
    assert ctx.counters == {"requests": 1, "forwarded": 1}  # every payment, and this one sent on
    gw.on_message(ctx, "gw-rz1", PayReply("r1", "p1", "paid", "", "db-rz1"))
    assert ctx.take_sent() == [("c", PayReply("r1", "p1", "paid", "", "db-rz1"))]
    gw.on_message(ctx, "c", PayRequest("r2", "p2", "u12", "m1@rz0", 10, 1_000.0))
    assert ctx.take_sent()[0][0] == "db-rz0"
    assert ctx.counters == {"requests": 2, "forwarded": 1}  # served here: not forwarded
    gw.on_message(ctx, "ctl", Ping(7))
    assert ctx.take_sent() == [("ctl", Pong(7, "gw-rz0"))]


def test_the_naive_transfer_keeps_the_debit_when_the_credit_times_out() -> None:
    router = ShardRouter(["s0", "s1"])
    buyer = next(f"u{u}" for u in range(100) if router.shard_of(f"u{u}") == "s0")
    merchant = next(f"m{m}" for m in range(100) if router.shard_of(f"m{m}") == "s1")
    gw, ctx = PaymentGateway(GatewayConfig(shards=("s0", "s1"), cross="naive")), RecordingContext()
    gw.on_start(ctx)
    gw.on_message(ctx, "c", PayRequest("r", "p", buyer, merchant, 50, 1_000.0))
    ((dst, debit),) = ctx.take_sent()
    assert dst == "s0" and isinstance(debit, LegRequest) and debit.delta_cents == -50
    gw.on_message(ctx, "s0", LegReply(debit.req_id, debit.leg_id, "applied", "s0"))
    ((dst, credit),) = ctx.take_sent()
    assert dst == "s1" and isinstance(credit, LegRequest) and credit.delta_cents == 50
    gw.on_timer(ctx, ("naive", "p"))  # the credit never answers
    ((_, reply),) = ctx.take_sent()
    # The client hears "failed"; the debit stays applied; nothing will ever undo it.
    assert isinstance(reply, PayReply) and (reply.status, reply.reason) == (
        "failed",
        "credit-timeout",
    )
    assert gw.naive == {}


def rz1_declared_dead() -> tuple[FailoverController, RecordingContext]:
    """rz0 answers, rz1 is silent: declared dead at 400 ms, its standby sent a Promote."""
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
    assert [d for d, m in ctx.take_sent() if isinstance(m, Promote)] == ["db-rz1s"]
    return ctl, ctx


def test_failover_promotes_the_standby_then_rewrites_the_rules() -> None:
    ctl, ctx = rz1_declared_dead()
    ctl.on_message(ctx, "db-rz1s", PromoteAck("db-rz1s", 42))
    ((dst, set_rules),) = ctx.take_sent()
    assert dst == "gzone" and isinstance(set_rules, SetRules)
    new = set_rules.rules
    assert new.version == 2 and new.moved == {"rz1": "rz1s"}
    assert set(new.buckets) == {"rz0", "rz1s"} and new.buckets.count("rz1s") == 50
    ctl.on_message(ctx, "gzone", RulesAck(2))
    assert ("failover-complete", {"cell": "rz1", "declared_ms": 400, "version": 2}) in ctx.traces


def test_a_lone_controller_cancels_a_failover_when_the_cell_answers_before_the_promote() -> None:
    """Seen in `d11 tui ch4`: Hangzhou (the controller's city) cut off for 15 s; the
    controller declared sh-1 dead 400 ms in, re-sent its Promote until the heal let one
    through, and failed the healthy sh-1 over on the 16-second-old declaration."""
    ctl, ctx = rz1_declared_dead()
    ctx.clock_ms = 500
    ctl.on_timer(ctx, "probe")  # still probed while its Promote is unacknowledged
    assert ("gw-rz1", Ping(ctl.seq)) in ctx.take_sent()
    ctx.clock_ms = 15_000  # the cut heals: the cell answers
    ctl.on_message(ctx, "gw-rz1", Pong(ctl.seq, "gw-rz1"))
    ctl.on_timer(ctx, ("promote-retry", "rz1"))
    assert not [m for _, m in ctx.take_sent() if isinstance(m, (Promote, SetRules))]
    assert ("failover-cancelled", {"cell": "rz1", "declared_ms": 400}) in ctx.traces
    assert ("promote-retry", "rz1") not in ctx.timers
    for t in (15_100, 15_200, 15_300, 15_400):  # watched afresh: answering, so never declared
        ctx.clock_ms = t
        for gateway in ("gw-rz0", "gw-rz1"):
            ctl.on_message(ctx, gateway, Pong(t, gateway))
        ctl.on_timer(ctx, "probe")
    assert not [m for _, m in ctx.take_sent() if isinstance(m, (Promote, SetRules))]
    assert ctl.rules.version == 1


def test_a_promote_that_reached_the_standby_is_finished_even_after_a_cancel() -> None:
    """The standby took a Promote whose ack was late: it is a primary now, so its
    cell's users are moved to it rather than left on a store it no longer follows."""
    ctl, ctx = rz1_declared_dead()
    ctx.clock_ms = 15_000
    ctl.on_message(ctx, "gw-rz1", Pong(1, "gw-rz1"))
    ctl.on_timer(ctx, ("promote-retry", "rz1"))
    ctl.on_message(ctx, "db-rz1s", PromoteAck("db-rz1s", 7))
    ((dst, set_rules),) = ctx.take_sent()
    assert dst == "gzone" and isinstance(set_rules, SetRules)
    assert set_rules.rules.moved == {"rz1": "rz1s"}
    assert [k for k, _ in ctx.traces][-2:] == ["failover-cancelled", "failover-resumed"]


def test_gzone_rules_reach_the_subscribers_through_the_city_czone() -> None:
    from reference.cells import ConfigAck, ConfigUpdate, CZone, DirectoryRead, DirectoryReply, GZone
    from reference.gateway import RulesUpdate

    rules = even_buckets(["rz0", "rz1"])
    gzone, gctx = GZone(rules, (0, 1, 2), ["cz-a"]), RecordingContext(node_id="gzone")
    gzone.on_start(gctx)
    gctx.take_sent()
    newer = type(rules)(2, rules.buckets, {"rz1": "rz1s"})
    gzone.on_message(gctx, "controller", SetRules(newer, "test"))
    sent = gctx.take_sent()
    assert sent == [("cz-a", ConfigUpdate(newer, (0, 1, 2))), ("controller", RulesAck(2))]
    assert gctx.timers  # re-sent until the CZone acknowledges it
    assert gctx.disk.unsynced_writes == 0  # durable before anyone heard of it
    czone, cctx = CZone(rules, (), ["gw-1", "client-1"]), RecordingContext(node_id="cz-a")
    czone.on_message(cctx, "gzone", sent[0][1])
    assert cctx.take_sent() == [
        ("gw-1", RulesUpdate(newer)),
        ("client-1", RulesUpdate(newer)),
        ("gzone", ConfigAck(2, "cz-a")),
    ]
    czone.on_message(cctx, "gw-1", DirectoryRead("d"))
    assert cctx.take_sent() == [("gw-1", DirectoryReply("d", (0, 1, 2), 2, "cz-a"))]


def test_a_fenced_controller_keeps_promoting_a_chosen_failover_whatever_it_hears() -> None:
    """A majority chose the failover: a late Pong (to a ping sent before) cancels
    nothing, and the Promote is re-sent (the cancel is the lone writer's only)."""
    from reference.cells.failover import CellState, _failed_over

    rules = even_buckets(["rz0", "rz1"])
    pairs = {c: CellPair(c, f"gw-{c}", f"{c}s", f"db-{c}s") for c in ("rz0", "rz1")}
    ctl = FailoverController(pairs, rules, "gzone", acceptors=["cz-a", "cz-b", "cz-c"])
    ctx = RecordingContext(node_id="controller")
    ctl.on_start(ctx)
    ctx.clock_ms = 1_000
    ctl._adopt(ctx, _failed_over(rules, "rz1", "rz1s"))  # the other controller's, chosen
    assert ("db-rz1s", Promote("rz1 failed over")) in ctx.take_sent()
    ctx.clock_ms = 1_100
    ctl.on_message(ctx, "gw-rz1", Pong(1, "gw-rz1"))
    ctl.on_timer(ctx, ("promote-retry", "rz1"))
    assert ctx.take_sent() == [("db-rz1s", Promote("rz1 failed over"))]
    assert ctl.state["rz1"] is CellState.PROMOTING
