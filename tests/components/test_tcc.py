"""TCC with Seata's fence: each rule of the fence, and the coordinator's recovery."""

from __future__ import annotations

from reference.payment import (
    PAYMENT_PROCEDURES,
    PAYMENT_SCHEMA,
    Balances,
    ReadBalances,
    open_accounts,
)
from reference.sqlstore import SqlStore, StoreConfig
from reference.tcc import (
    FENCE_SCHEMA,
    STATUS_COMMITTED,
    STATUS_ROLLBACKED,
    STATUS_SUSPENDED,
    TCC_PROCEDURES,
    Branch,
    TccCoordinator,
    TccPhase2,
    TccPhase2Reply,
    TccTry,
    TccTryReply,
)
from reference.testing import RecordingContext


def _participant() -> tuple[SqlStore, RecordingContext]:
    config = StoreConfig(
        schema=PAYMENT_SCHEMA + FENCE_SCHEMA,
        procedures={**PAYMENT_PROCEDURES, **TCC_PROCEDURES},
        init=lambda txn: open_accounts(txn, {"u1": 1_000, "m1": 0}),
    )
    store, ctx = SqlStore(config), RecordingContext(node_id="shard")
    store.on_start(ctx)
    return store, ctx


def _ask(store: SqlStore, ctx: RecordingContext, msg: object) -> object:
    store.on_message(ctx, "gw", msg)  # type: ignore[arg-type]
    ((_, reply),) = ctx.take_sent()
    return reply


def _try(xid: str, amount: int = 300) -> TccTry:
    return TccTry(f"t-{xid}", xid, "debit", "debit", "u1", amount, 0.0)


def _phase2(xid: str, commit: bool, amount: int = 300) -> TccPhase2:
    return TccPhase2(f"p-{xid}", xid, "debit", "debit", "u1", amount, commit)


def _fence(store: SqlStore, xid: str) -> int | None:
    rows = store.query("SELECT status FROM tcc_fence_log WHERE xid = ?", (xid,))
    return rows[0][0] if rows else None


def _owned(store: SqlStore, ctx: RecordingContext) -> tuple[int, int]:
    bal = _ask(store, ctx, ReadBalances("r", None, 0.0))
    assert isinstance(bal, Balances)
    (available, frozen) = store.query(
        "SELECT balance_cents, frozen_cents FROM accounts WHERE id = 'u1'"
    )[0]
    assert bal.balances["u1"] == available + frozen  # reads count held money as owned
    return available, frozen


def test_try_freezes_and_confirm_twice_acts_once() -> None:
    store, ctx = _participant()
    assert _ask(store, ctx, _try("x1")) == TccTryReply("t-x1", "x1", "debit", True, "", "shard")
    assert _owned(store, ctx) == (700, 300)
    for _ in range(2):  # a duplicated confirm is harmless
        reply = _ask(store, ctx, _phase2("x1", commit=True))
        assert isinstance(reply, TccPhase2Reply) and reply.ok
    assert _owned(store, ctx) == (700, 0)
    assert _fence(store, "x1") == STATUS_COMMITTED


def test_cancel_releases_and_is_idempotent() -> None:
    store, ctx = _participant()
    _ask(store, ctx, _try("x2"))
    for _ in range(2):
        reply = _ask(store, ctx, _phase2("x2", commit=False))
        assert isinstance(reply, TccPhase2Reply) and reply.ok
    assert _owned(store, ctx) == (1_000, 0)
    assert _fence(store, "x2") == STATUS_ROLLBACKED


def test_empty_rollback_is_recorded_and_a_late_try_is_refused() -> None:
    store, ctx = _participant()
    reply = _ask(store, ctx, _phase2("x3", commit=False))  # the try never arrived
    assert isinstance(reply, TccPhase2Reply) and reply.ok
    assert _fence(store, "x3") == STATUS_SUSPENDED
    late = _ask(store, ctx, _try("x3"))  # anti-suspension: nothing frozen forever
    assert isinstance(late, TccTryReply) and not late.ok and late.reason == "fence-row-exists"
    assert _owned(store, ctx) == (1_000, 0)


def test_confirm_after_cancel_is_refused_and_a_failed_try_leaves_no_fence() -> None:
    store, ctx = _participant()
    _ask(store, ctx, _try("x4"))
    _ask(store, ctx, _phase2("x4", commit=False))
    reply = _ask(store, ctx, _phase2("x4", commit=True))
    assert isinstance(reply, TccPhase2Reply) and not reply.ok
    broke = _ask(store, ctx, _try("x5", amount=5_000))
    assert isinstance(broke, TccTryReply) and broke.reason == "insufficient-funds"
    assert _fence(store, "x5") is None  # the fence row rolled back with the business try
    confirm = _ask(store, ctx, _phase2("x5", commit=True))
    assert isinstance(confirm, TccPhase2Reply) and confirm.reason == "confirm-without-try"


def _branches() -> tuple[Branch, ...]:
    return (Branch("debit", "debit", "s1", "u1", 10), Branch("credit", "credit", "s2", "m1", 10))


def test_coordinator_rolls_back_an_undecided_transaction_after_a_crash() -> None:
    ctx = RecordingContext(node_id="gw")
    TccCoordinator().begin(ctx, "x", _branches())
    assert [type(m) for _, m in ctx.take_sent()] == [TccTry, TccTry]
    ctx.disk.crash()  # the begin record was synced before the tries left
    fresh = TccCoordinator()
    fresh.recover(ctx)
    sent = ctx.take_sent()
    assert {(dst, m.commit) for dst, m in sent if isinstance(m, TccPhase2)} == {
        ("s1", False),
        ("s2", False),
    }
    assert fresh.outcome(ctx, "x") == "rollback"


def test_coordinator_commit_survives_a_crash_and_phase2_is_retried() -> None:
    ctx = RecordingContext(node_id="gw")
    coord = TccCoordinator()
    coord.begin(ctx, "x", _branches())
    for _, m in ctx.take_sent():
        assert isinstance(m, TccTry)
        decided = coord.on_message(ctx, TccTryReply("r", "x", m.branch_id, True, "", m.account))
    assert decided == ("x", "commit")
    ctx.take_sent()
    ctx.disk.crash()
    fresh = TccCoordinator()
    fresh.recover(ctx)
    assert {m.commit for _, m in ctx.take_sent()} == {True}
    fresh.on_timer(ctx, ("tcc-p2", "x"))  # no acks yet: sent again
    assert len(ctx.take_sent()) == 2
    for b in ("debit", "credit"):
        fresh.on_message(ctx, TccPhase2Reply("r", "x", b, True, True, "", "s"))
    assert fresh.outcome(ctx, "x") == "commit" and "x" not in fresh.active
