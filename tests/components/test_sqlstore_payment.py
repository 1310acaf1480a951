"""The SQL store running the payment service: transactions, idempotence, recovery."""

from __future__ import annotations

from reference.payment import (
    PAYMENT_PROCEDURES,
    PAYMENT_SCHEMA,
    Balances,
    PayReply,
    PayRequest,
    ReadBalances,
    RefundReply,
    RefundRequest,
    open_accounts,
)
from reference.sqlstore import (
    Promote,
    ReplicateAck,
    ReplicateBatch,
    ServiceTime,
    SqlStore,
    StoreConfig,
    StoreRejected,
)
from reference.testing import RecordingContext

OPENING = {"u1": 10_000, "u2": 500, "m1": 0}


def _config(**kw: object) -> StoreConfig:
    return StoreConfig(
        schema=PAYMENT_SCHEMA,
        procedures=PAYMENT_PROCEDURES,
        init=lambda txn: open_accounts(txn, OPENING),
        **kw,  # type: ignore[arg-type]
    )


def _boot(ctx: RecordingContext | None = None, **kw: object) -> tuple[SqlStore, RecordingContext]:
    ctx = ctx or RecordingContext(node_id="db")
    store = SqlStore(_config(**kw))
    store.on_start(ctx)
    return store, ctx


def _pay(store: SqlStore, ctx: RecordingContext, pid: str, buyer: str, amount: int) -> PayReply:
    store.on_message(ctx, "c", PayRequest(f"r-{pid}", pid, buyer, "m1", amount, 0.0))
    (dst, reply), *_ = ctx.take_sent()
    assert dst == "c" and isinstance(reply, PayReply)
    return reply


def _balances(store: SqlStore, ctx: RecordingContext) -> dict[str, int]:
    store.on_message(ctx, "c", ReadBalances("read", None, 0.0))
    (_, reply), *_ = ctx.take_sent()
    assert isinstance(reply, Balances)
    return reply.balances


def test_pay_moves_money_and_a_retry_returns_the_first_outcome() -> None:
    store, ctx = _boot()
    assert _pay(store, ctx, "p1", "u1", 2_500).status == "paid"
    again = _pay(store, ctx, "p1", "u1", 2_500)
    assert (again.status, again.reason) == ("paid", "duplicate")
    assert _balances(store, ctx) == {"u1": 7_500, "u2": 500, "m1": 2_500}


def test_a_decline_is_recorded_so_a_retry_stays_declined() -> None:
    store, ctx = _boot()
    assert _pay(store, ctx, "p2", "u2", 900).status == "declined"
    store.query("UPDATE accounts SET balance_cents = 5000 WHERE id = 'u2'")  # a top-up
    assert _pay(store, ctx, "p2", "u2", 900).status == "declined"


def test_refund_is_idempotent_and_gives_the_money_back() -> None:
    store, ctx = _boot()
    _pay(store, ctx, "p1", "u1", 1_000)
    for _ in range(2):
        store.on_message(ctx, "c", RefundRequest("rf", "p1", 0.0))
        (_, reply), *_ = ctx.take_sent()
        assert isinstance(reply, RefundReply) and reply.status == "refunded"
    assert _balances(store, ctx) == OPENING


def test_service_time_charges_each_statement() -> None:
    service = ServiceTime(txn_ms=1.0, statement_ms=0.5)
    store, ctx = _boot(service=service)
    before = ctx.worked_ms
    _pay(store, ctx, "p1", "u1", 100)  # 3 reads/checks + 2 updates + 1 insert
    assert ctx.worked_ms - before == service.cost_ms(6)


def test_a_restart_replays_the_synced_commit_log() -> None:
    store, ctx = _boot()
    _pay(store, ctx, "p1", "u1", 1_000)
    ctx.disk.put("junk", 1)  # an unsynced write...
    ctx.disk.crash()  # ...is lost; every acknowledged payment was synced first
    fresh, ctx = _boot(ctx)
    assert _balances(fresh, ctx)["m1"] == 1_000
    assert _pay(fresh, ctx, "p1", "u1", 1_000).reason == "duplicate"


def test_expired_requests_are_shed_without_a_transaction() -> None:
    store, ctx = _boot(shed_expired=True)
    ctx.clock_ms = 50.0
    store.on_message(ctx, "c", PayRequest("r", "p", "u1", "m1", 10, 40.0))
    (_, reply), *_ = ctx.take_sent()
    assert reply == StoreRejected("r", "expired", "db")


def test_async_replication_ships_the_log_and_a_standby_serves_after_promotion() -> None:
    primary, pctx = _boot(standby="db2")
    _pay(primary, pctx, "p1", "u1", 1_000)
    primary.on_timer(pctx, "ship")
    (dst, batch), *_ = pctx.take_sent()
    assert dst == "db2" and isinstance(batch, ReplicateBatch) and batch.start_index == 0
    standby, sctx = _boot(RecordingContext(node_id="db2"), is_standby=True)
    standby.on_message(sctx, "c", PayRequest("r", "p9", "u1", "m1", 1, 0.0))
    assert sctx.take_sent()[0][1] == StoreRejected("r", "not-primary", "db2")
    standby.on_message(sctx, "db", batch)
    assert sctx.take_sent() == [("db", ReplicateAck(2))]  # opening balances + p1
    _pay(primary, pctx, "p2", "u1", 1_000)  # committed, never shipped: lost on failover
    standby.on_message(sctx, "ctl", Promote("test"))
    sctx.take_sent()
    assert _balances(standby, sctx) == {"u1": 9_000, "u2": 500, "m1": 1_000}
