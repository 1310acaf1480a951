"""TCC phase 2 under a planted overload: the retry storm, and its bounds.

A participant stops answering (paused, as a store that is saturated or
stalled) while payments keep coming. Every transaction that touches it is
decided (rolled back: its try timed out) and its cancel cannot land. The
unbounded coordinator resends each one on its own doubling timer, so its
resend rate grows with the number stuck; the bounded one resends at most
`resends_per_s`. Once the participant is back, both finish every transaction:
nothing is left frozen, no cent is lost.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable

from reference.codec import Message
from reference.gateway import GatewayConfig, PaymentGateway
from reference.gateway.router import ShardRouter
from reference.net.topology import Topology
from reference.node import Context, Node, NodeId
from reference.payment import PAYMENT_PROCEDURES, PAYMENT_SCHEMA, open_accounts
from reference.payment.messages import PayRequest
from reference.runtime.sim import SimRuntime
from reference.sqlstore import SqlStore, StoreConfig
from reference.tcc import (
    FENCE_SCHEMA,
    STATUS_TRIED,
    TCC_PROCEDURES,
    UNBOUNDED_PHASE2,
    Branch,
    Phase2Limits,
    TccCoordinator,
    TccPhase2,
    TccPhase2Reply,
    TccTry,
    TccTryReply,
)
from reference.testing import RecordingContext

SHARDS = ("shard-0", "shard-1")
RATE_PER_S = 200.0  # cross-shard payments offered, evenly spaced
STALL_FROM_MS, STALL_UNTIL_MS = 500.0, 3_500.0  # shard-1 answers nothing
SAMPLE_MS = 500.0
FINISH_BY_MS = 60_000.0
OPENING_CENTS = 1_000_000
LIMITS = Phase2Limits(resends_per_s=100.0, resend_burst=20, report_after=3)


class _Payer(Node):
    """Offers cross-shard payments at a fixed rate until the stall ends."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs, self.seq = pairs, 0

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer(0.0, "pay")

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        if ctx.now_ms() >= STALL_UNTIL_MS:
            return  # the overload ends with the stall
        buyer, merchant = self.pairs[self.seq % len(self.pairs)]
        self.seq += 1
        ctx.send(
            "gw",
            PayRequest(f"r{self.seq}", f"p{self.seq}", buyer, merchant, 1, ctx.now_ms() + 1_000.0),
        )
        ctx.set_timer(1000.0 / RATE_PER_S, "pay")

    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        pass  # replies: the end state is what is checked


def _accounts() -> tuple[dict[NodeId, dict[str, int]], list[tuple[str, str]]]:
    router = ShardRouter(SHARDS)
    users = [f"u{i}" for i in range(200) if router.shard_of(f"u{i}") == SHARDS[0]][:20]
    merchants = [f"m{i}" for i in range(200) if router.shard_of(f"m{i}") == SHARDS[1]][:5]
    owned: dict[NodeId, dict[str, int]] = {s: {} for s in SHARDS}
    for account in users + merchants:
        owned[router.shard_of(account)][account] = OPENING_CENTS
    pairs = [(u, merchants[i % len(merchants)]) for i, u in enumerate(users)]
    return owned, pairs


def _run(limits: Phase2Limits) -> tuple[list[int], SimRuntime]:
    """Resends per sample window during the stall; the runtime, run until quiet."""
    owned, pairs = _accounts()
    topo = Topology.build({"hz": {"hz-1": [*SHARDS, "gw", "payer"]}})
    rt = SimRuntime(topology=topo, seed=7)
    for shard in SHARDS:
        config = StoreConfig(
            schema=PAYMENT_SCHEMA + FENCE_SCHEMA,
            procedures={**PAYMENT_PROCEDURES, **TCC_PROCEDURES},
            init=lambda txn, mine=owned[shard]: open_accounts(txn, mine),
        )
        rt.add_node(shard, lambda _nid, config=config: SqlStore(config))
    gateway = GatewayConfig(shards=SHARDS, tcc_phase2=limits)
    rt.add_node("gw", lambda _nid: PaymentGateway(gateway))
    rt.add_node("payer", lambda _nid: _Payer(pairs))
    rt.start()
    rt.call_at(STALL_FROM_MS, lambda: rt.pause(SHARDS[1]))
    rt.call_at(STALL_UNTIL_MS, lambda: rt.resume(SHARDS[1]))
    resent: list[int] = []
    t_ms = STALL_FROM_MS + SAMPLE_MS
    while t_ms <= STALL_UNTIL_MS:
        rt.run_until(t_ms)
        resent.append(rt.telemetry.counter("tcc_phase2_resent", window_ms=SAMPLE_MS))
        t_ms += SAMPLE_MS
    gw = rt.node("gw")
    assert isinstance(gw, PaymentGateway)
    while gw.tcc.active:  # (the gateway's sweep timer keeps the run from going quiet)
        assert rt.now_ms < FINISH_BY_MS, f"phase 2 unfinished: {len(gw.tcc.active)}"
        rt.run_for(SAMPLE_MS)
    return resent, rt


def _assert_all_finished(rt: SimRuntime) -> None:
    gw = rt.node("gw")
    assert isinstance(gw, PaymentGateway)
    assert not gw.tcc.active and gw.tcc.inflight == 0  # every transaction finished
    total = frozen = 0
    for shard in SHARDS:
        store = rt.node(shard)
        assert isinstance(store, SqlStore)
        ((balance, held),) = store.query(
            "SELECT SUM(balance_cents), SUM(frozen_cents) FROM accounts"
        )
        total, frozen = total + balance, frozen + held
        tried = store.query("SELECT COUNT(*) FROM tcc_fence_log WHERE status = ?", (STATUS_TRIED,))
        assert tried == [(0,)], f"{shard}: a branch still prepared"
    assert frozen == 0, "a reservation was never released"
    assert total == OPENING_CENTS * 25, "money created or lost"


def test_unbounded_phase2_is_a_retry_storm_that_grows_with_the_stuck() -> None:
    resent, rt = _run(UNBOUNDED_PHASE2)
    # Every window resends more than the one before: the stuck pile up, each on its timer.
    assert all(a < b for a, b in itertools.pairwise(resent)), resent
    assert resent[-1] > 4 * LIMITS.resends_per_s * SAMPLE_MS / 1000.0, resent
    _assert_all_finished(rt)  # it does finish, once the participant is back: late


def test_bounded_phase2_resends_at_most_its_rate_and_still_finishes_everything() -> None:
    resent, rt = _run(LIMITS)
    # Sooner than the storm, too: the stalled store's backlog holds no pile of resends.
    _, storm = _run(UNBOUNDED_PHASE2)
    assert rt.now_ms < storm.now_ms, (rt.now_ms, storm.now_ms)
    cap = LIMITS.resends_per_s * SAMPLE_MS / 1000.0 + LIMITS.resend_burst
    assert max(resent) <= cap and resent[-1] > 0, resent  # bounded, not stopped
    stuck = rt.telemetry.find("tcc-phase2-stuck")
    assert stuck and all(e["attempts"] == LIMITS.report_after for e in stuck)
    assert rt.telemetry.counter("tcc_phase2_stuck") == len(stuck)
    _assert_all_finished(rt)


def _decided(coord: TccCoordinator, ctx: RecordingContext, xid: str) -> list[TccPhase2]:
    """Begin and commit `xid`; the phase-2 messages sent meanwhile (any transaction's)."""
    branches = (
        Branch("debit", "debit", "s1", "u1", 10),
        Branch("credit", "credit", "s2", "m1", 10),
    )
    coord.begin(ctx, xid, branches)
    tries = [m for _, m in ctx.take_sent() if isinstance(m, TccTry)]
    assert len(tries) == 2
    for m in tries:
        coord.on_message(ctx, TccTryReply("r", xid, m.branch_id, True, "", "s"))
    return [m for _, m in ctx.take_sent() if isinstance(m, TccPhase2)]


def test_the_window_holds_phase2_until_answers_free_it() -> None:
    ctx = RecordingContext(node_id="gw")
    coord = TccCoordinator(limits=Phase2Limits(window=4, resends_per_s=10.0, resend_burst=2))
    sent = [m for i in range(3) for m in _decided(coord, ctx, f"x{i}")]
    assert {m.xid for m in sent} == {"x0", "x1"} and coord.inflight == 4  # x2 waits
    coord.on_message(ctx, TccPhase2Reply("r", "x0", "debit", True, True, "", "s1"))
    assert ctx.take_sent() == []  # one slot free: x2 needs two
    coord.on_message(ctx, TccPhase2Reply("r", "x0", "credit", True, True, "", "s2"))
    assert {m.xid for _, m in ctx.take_sent()} == {"x2"} and coord.inflight == 4
    # No answers: the timeouts free the window, and resends wait for tokens.
    coord.on_timer(ctx, ("tcc-p2", "x1"))
    assert {m.xid for _, m in ctx.take_sent()} == {"x1"}  # the bucket's burst: two messages
    coord.on_timer(ctx, ("tcc-p2", "x2"))
    assert ctx.take_sent() == [] and ("tcc-p2", "") in ctx.timers  # the next token's timer
    ctx.clock_ms += 200.0  # two tokens at 10/s
    coord.on_timer(ctx, ("tcc-p2", ""))
    assert {m.xid for _, m in ctx.take_sent()} == {"x2"} and coord.inflight == 4


def test_the_backoff_doubles_to_its_cap_and_stays_there_once_reported() -> None:
    limits = Phase2Limits(report_after=8)
    assert [limits.wait_ms(a) for a in (1, 2, 3, 4, 5, 6)] == [50, 100, 200, 400, 800, 800]
    assert limits.wait_ms(8) == limits.wait_ms(1_000) == limits.backoff_max_ms
    assert UNBOUNDED_PHASE2.wait_ms(1_000) == 800.0  # the old timer: capped, for ever
