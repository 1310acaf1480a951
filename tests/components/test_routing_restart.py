"""A gateway or CZone that restarts keeps the routing rules it acknowledged.

Found by chapter 4 under every fault composed (issue 11, seed 11): a gateway
killed and restarted came back on its boot rules. The CZone held its
acknowledgement of the newest rules and never pushed them again, so the
gateway bounced two cells' users for the rest of the run: every retry of a
payment that had ended unknown was refused "misrouted", and 3,785 payments
stayed unresolved. An acknowledgement now waits for the rules to be on disk.
"""

from __future__ import annotations

from reference.cells import ConfigUpdate, CZone
from reference.gateway import (
    GatewayConfig,
    PaymentGateway,
    RoutingRules,
    RulesUpdate,
    RulesUpdateAck,
    even_buckets,
)
from reference.testing import RecordingContext

GATEWAYS = {"rz0": "gw-rz0", "rz1": "gw-rz1"}
STORES = {"rz0": "db-rz0", "rz1": "db-rz1"}
V1 = even_buckets(["rz0", "rz1"])
V2 = RoutingRules(2, V1.buckets, {"rz1": "rz0"})


def _gateway() -> PaymentGateway:
    config = GatewayConfig(cell="rz0", rules=V1, cell_gateways=GATEWAYS, cell_stores=STORES)
    return PaymentGateway(config)


def test_a_restarted_gateway_keeps_the_rules_it_acknowledged() -> None:
    gw, ctx = _gateway(), RecordingContext(node_id="gw-rz0")
    gw.on_start(ctx)
    gw.on_message(ctx, "cz-a", RulesUpdate(V2))
    assert ctx.take_sent() == [("cz-a", RulesUpdateAck(2, "gw-rz0"))]
    ctx.disk.crash()  # whatever was not synced is gone
    again = _gateway()  # a fresh incarnation on the same disk, booted with V1
    again.on_start(ctx)
    assert again.cell_router is not None and again.cell_router.rules == V2
    # A push it already has is acknowledged, and changes nothing.
    again.on_message(ctx, "cz-a", RulesUpdate(V2))
    assert ctx.take_sent() == [("cz-a", RulesUpdateAck(2, "gw-rz0"))]


def test_a_restarted_czone_pushes_the_rules_it_acknowledged_again() -> None:
    czone, ctx = CZone(V1, (0, 1), ["gw-rz0", "gw-rz1"]), RecordingContext(node_id="cz-a")
    czone.on_start(ctx)
    assert ctx.take_sent() == []  # a first boot: every subscriber has the boot rules
    czone.on_message(ctx, "gzone", ConfigUpdate(V2, (0, 1)))
    ctx.take_sent()
    ctx.disk.crash()
    again = CZone(V1, (0, 1), ["gw-rz0", "gw-rz1"])
    again.on_start(ctx)
    assert again.rules == V2
    # Who got V2 before the crash is unknown: everyone gets it, until acknowledged.
    assert ctx.take_sent() == [("gw-rz0", RulesUpdate(V2)), ("gw-rz1", RulesUpdate(V2))]
    again.on_message(ctx, "gw-rz0", RulesUpdateAck(2, "gw-rz0"))
    ctx.clock_ms = ctx.timers.pop("resend")
    again.on_timer(ctx, "resend")
    assert ctx.take_sent() == [("gw-rz1", RulesUpdate(V2))]
