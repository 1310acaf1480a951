"""The range handover between live cells (reference/gateway/handover.py), by hand."""

from __future__ import annotations

from typing import Any, cast

from reference.gateway.handover import TAKEOVER_MS, Handover, parse_buckets
from reference.gateway.messages import RangeReleased
from reference.gateway.router import RoutingRules
from reference.node import Context

GATEWAYS = {"a": "gw-a", "b": "gw-b"}
V1 = RoutingRules(1, ("a", "a", "b", "b"), {})
V2 = RoutingRules(2, ("b", "a", "b", "b"), {})  # bucket 0: a -> b


class FakeCtx:
    node_id = "gw-a"

    def __init__(self) -> None:
        self.now = 0.0
        self.sent: list[tuple[str, Any]] = []
        self.traces: list[tuple[str, dict[str, Any]]] = []

    def now_ms(self) -> float:
        return self.now

    def send(self, dst: str, msg: Any) -> None:
        self.sent.append((dst, msg))

    def trace(self, kind: str, **fields: Any) -> None:
        self.traces.append((kind, fields))


def c(fake: FakeCtx) -> Context:
    return cast(Context, fake)


def test_the_old_owner_releases_once_its_payments_of_the_range_are_done() -> None:
    old, ctx = Handover("a"), FakeCtx()
    assert old.serve(c(ctx), 0, 1, "r1")  # in flight at the old owner
    old.adopted(c(ctx), V1, V2, GATEWAYS)  # bucket 0 is b's from version 2
    assert ctx.sent == []  # r1 still in flight: nothing released
    old.done(c(ctx), "r1")
    (dst, msg), = ctx.sent  # fmt: skip
    assert dst == "gw-b" and isinstance(msg, RangeReleased)
    assert (msg.version, msg.buckets, msg.cell) == (2, (0,), "a")


def test_the_new_owner_refuses_the_range_until_it_is_released() -> None:
    new, ctx = Handover("b"), FakeCtx()
    new.adopted(c(ctx), V1, V2, GATEWAYS)
    assert not new.serve(c(ctx), 0, 2, "r2")  # held: the client retries
    assert new.serve(c(ctx), 2, 2, "r3")  # its own range is served as ever
    new.released(c(ctx), RangeReleased(2, (0,), "a", "gw-a"))
    assert new.serve(c(ctx), 0, 2, "r4")
    taken = [f for kind, f in ctx.traces if kind == "range-taken"]
    assert [(parse_buckets(f["buckets"]), f["how"]) for f in taken] == [([0], "released")]


def test_a_release_before_the_rules_and_a_silent_old_owner() -> None:
    early, ctx = Handover("b"), FakeCtx()
    early.released(c(ctx), RangeReleased(2, (0,), "a", "gw-a"))  # it overtook the rules
    early.adopted(c(ctx), V1, V2, GATEWAYS)
    assert early.serve(c(ctx), 0, 2, "r1")
    silent, ctx = Handover("b"), FakeCtx()
    silent.adopted(c(ctx), V1, V2, GATEWAYS)
    ctx.now = TAKEOVER_MS  # no release for a second: taken anyway, and said so
    assert silent.serve(c(ctx), 0, 2, "r1")
    assert [f["how"] for kind, f in ctx.traces if kind == "range-taken"] == ["timeout"]


def test_the_planted_bug_serves_at_once() -> None:
    bug, ctx = Handover("b", wait=False), FakeCtx()
    bug.adopted(c(ctx), V1, V2, GATEWAYS)
    assert bug.serve(c(ctx), 0, 2, "r1")
