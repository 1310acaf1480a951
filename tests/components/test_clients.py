"""The client: Jepsen-style records, bounded retries with one payment id."""

from __future__ import annotations

import random
from typing import Any

from reference.clients import ClientConfig, ClientPlan, Payment, PaymentClient
from reference.gateway.router import CellRouter
from reference.payment import PayReply, PayRequest
from reference.sqlstore import StoreRejected
from reference.testing import RecordingContext


def _client(history: list[dict[str, Any]]) -> tuple[PaymentClient, RecordingContext, ClientPlan]:
    plan = ClientPlan()

    def route(buyer: str, pid: str, rng: random.Random, rules: CellRouter | None) -> str:
        return "db"

    config = ClientConfig(
        process_base=100,
        record=history.append,
        route=route,
        read_target="db",
        plan=plan,
        deadline_ms=1_000.0,
        attempt_timeout_ms=400.0,
        attempts_max=3,
    )
    client, ctx = PaymentClient(config), RecordingContext(node_id="c")
    client.on_start(ctx)
    return client, ctx, plan


def _arrive(client: PaymentClient, ctx: RecordingContext) -> PayRequest:
    client.on_timer(ctx, ("arrive", Payment(0.0, "u1", "m1", 100)))
    ((_, req),) = ctx.take_sent()
    assert isinstance(req, PayRequest)
    return req


def test_timeouts_retry_the_same_payment_then_end_as_info() -> None:
    history: list[dict[str, Any]] = []
    client, ctx, _ = _client(history)
    first = _arrive(client, ctx)
    ids = {first.payment_id}
    for t in (400.0, 800.0):
        ctx.clock_ms = t
        client.on_timer(ctx, ("attempt", 1, int(t // 400)))
        ((_, again),) = ctx.take_sent()
        ids.add(again.payment_id)
    ctx.clock_ms = 1_000.0
    client.on_timer(ctx, ("attempt", 1, 3))
    assert ctx.take_sent() == []  # bounded: three attempts, then stop
    assert ids == {first.payment_id}  # every retry is the same payment
    assert [(e["type"], e["process"]) for e in history] == [("invoke", 100), ("info", 100)]
    _arrive(client, ctx)
    assert history[-1]["process"] == 101  # an info process is retired


def test_a_rejection_is_retried_and_an_answer_is_recorded_once() -> None:
    history: list[dict[str, Any]] = []
    client, ctx, _ = _client(history)
    req = _arrive(client, ctx)
    client.on_message(ctx, "db", StoreRejected(req.req_id, "expired", "db"))
    client.on_timer(ctx, ("retry", 1))
    ((_, again),) = ctx.take_sent()
    client.on_message(ctx, "db", PayReply(again.req_id, again.payment_id, "paid", "", "db"))
    client.on_message(ctx, "db", PayReply(req.req_id, req.payment_id, "paid", "", "db"))
    assert [e["type"] for e in history] == ["invoke", "ok"]
    assert history[1]["extra"]["attempts"] == 2 and history[1]["extra"]["node"] == "db"
    assert history[1]["value"] == {
        "id": req.payment_id,
        "from": "u1",
        "to": "m1",
        "amount_cents": 100,
    }


def test_the_final_read_waits_for_every_payment_in_flight() -> None:
    """A burst of late arrivals (a real harness whose loop stalled) is still
    in flight when the final read falls due: the read waits for its answers,
    or the ledger checker could not tell what the read must hold."""
    history: list[dict[str, Any]] = []
    client, ctx, plan = _client(history)
    plan.reconcile_at_ms = plan.final_read_at_ms = 0.0
    plan.final_read_gate = lambda: plan.reconciled
    plan.arrivals.append(Payment(0.0, "u1", "m1", 100))  # due, but its timer has not fired
    client.on_timer(ctx, "tick")
    assert not plan.reconciled and ctx.take_sent() == []
    ctx.clock_ms = 10.0
    (armed,) = [tag for tag in ctx.timers if isinstance(tag, tuple) and tag[0] == "arrive"]
    client.on_timer(ctx, armed)
    ((_, req),) = ctx.take_sent()
    assert isinstance(req, PayRequest)
    client.on_timer(ctx, "tick")
    assert not plan.reconciled and ctx.take_sent() == []  # the payment is still in flight
    client.on_message(ctx, "db", PayReply(req.req_id, req.payment_id, "paid", "", "db"))
    client.on_timer(ctx, "tick")
    assert plan.reconciled
    sent = ctx.take_sent()
    assert sent and all(type(m).__name__ == "ReadBalances" for _, m in sent)
