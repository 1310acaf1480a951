"""The payment gateway: routes each request to the store that owns it.

One node class serves chapters 2 and 3; what differs is the router:

- shard mode: `ShardRouter`, accounts by user-id hash (chapter 2);
- cell mode: `CellRouter`, users by uid bucket and the routing rules; a
  request for a user of another cell is *forwarded* to that cell's gateway
  (and counted: in a healthy deployment almost nothing is forwarded).

A payment whose two accounts live on the same store is forwarded to it
whole: one local transaction. One whose accounts live on two stores is a
cross-store transfer, done one of two ways (`cross`):

- "naive": debit the buyer's store, then credit the merchant's. Nothing is
  logged: a gateway crash or a timeout between the two steps loses money.
- "tcc": a TCC transaction (`reference.tcc`) coordinated from here, with a
  durable decision and Seata's fence on the participants.

Reads of all balances fan out to every store and merge (a cross-store read
is not one instant, so it is only used when traffic has stopped).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from reference.codec import Message
from reference.gateway.handover import Handover
from reference.gateway.messages import (
    Forwarded,
    GatewayRejected,
    Ping,
    Pong,
    RangeReleased,
    RulesUpdate,
    RulesUpdateAck,
)
from reference.gateway.router import CellRouter, RoutingRules, ShardRouter, StoreRouting
from reference.node import Context, Node, NodeId
from reference.payment.accounts import parse_account
from reference.payment.messages import (
    Balances,
    LegReply,
    LegRequest,
    Payments,
    PayReply,
    PayRequest,
    ReadBalances,
    ReadPayments,
)
from reference.sqlstore.messages import StoreRejected
from reference.tcc import Branch, Phase2Limits, TccCoordinator, TccPhase2Reply, TccTryReply
from reference.tracing.context import TraceContext, emit_span
from reference.tracing.shadow import LoadTestPolicy, LoadTestSwitch

__all__ = ["GatewayConfig", "PaymentGateway"]

PENDING_MAX = 20_000  # relayed requests awaiting a reply; beyond it, refuse new ones
# Gateway-to-gateway forwards one request may take. One is the normal case (a
# stale cookie); two covers a gateway that is itself one rule version behind.
# Two also means a request bouncing between two gateways is refused by the
# first one it comes back to, before that gateway relays it a second time.
FORWARD_HOPS_MAX = 2
_SWEEP_TIMER = "sweep"
_SWEEP_MS = 250.0
_RULES_KEY = "gateway/rules"  # the newest routing rules adopted (cell mode)
_LOAD_TEST_KEY = "gateway/load-test-enabled"  # the kill switch survives a restart


@dataclass(frozen=True)
class GatewayConfig:
    shards: tuple[NodeId, ...] = ()  # shard mode: the stores, in router order
    cross: str = "tcc"  # "naive" | "tcc"
    cell: str | None = None  # cell mode: this gateway's cell
    rules: RoutingRules | None = None  # cell mode: the routing rules at boot
    cell_gateways: dict[str, NodeId] = field(default_factory=dict)
    cell_stores: dict[str, NodeId] = field(default_factory=dict)
    work_ms: float = 0.05  # busy time per message handled
    step_timeout_ms: float = 300.0  # a naive step, or TCC's phase 1
    # How hard TCC's phase 2 may retry (window, resend bucket, capped backoff).
    tcc_phase2: Phase2Limits = field(default_factory=Phase2Limits)
    # Chapter 7: spans for every payment, the allow-list and the kill switch (None: off).
    load_test: LoadTestPolicy | None = None
    # Which store serves an account, when not the router's store (chapter 4: `OneStore`,
    # the cell's ledger front). The cell router still decides which *gateway* serves a user.
    store_routing: StoreRouting | None = None
    # Ranges move between live cells (the elastic cell): serve a gained range only
    # once its old owner has released it (`reference.gateway.handover`). "no-wait":
    # the planted bug, serve it at once.
    handover: str = ""  # "" (off) | "drain" | "no-wait"

    def __post_init__(self) -> None:
        assert self.cross in ("naive", "tcc"), self.cross
        assert bool(self.shards) != (self.cell is not None), "shard mode xor cell mode"
        assert self.handover in ("", "drain", "no-wait"), self.handover
        assert not self.handover or self.cell is not None, "a handover is of cell ranges"


@dataclass
class _Naive:
    payment_id: str
    buyer: str
    merchant: str
    amount_cents: int
    buyer_store: NodeId
    merchant_store: NodeId
    step: str  # "debit" | "credit"
    waiters: list[tuple[NodeId, str]]


class PaymentGateway(Node):
    """See the module docstring."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.shard_router = ShardRouter(config.shards) if config.shards else None
        self.cell_router = (
            CellRouter(config.rules, dict(config.cell_gateways), dict(config.cell_stores))
            if config.rules is not None
            else None
        )
        self.relay: dict[str, tuple[NodeId, float]] = {}  # req_id -> (reply to, expires)
        self.fanout: dict[str, dict[str, Any]] = {}  # parent req_id -> gather state
        self.naive: dict[str, _Naive] = {}
        self.tcc = TccCoordinator(try_timeout_ms=config.step_timeout_ms, limits=config.tcc_phase2)
        self.waiters: dict[str, list[tuple[NodeId, str]]] = {}  # xid -> clients
        self._seq = 0
        policy = config.load_test
        self.load_test = dataclasses.replace(policy) if policy is not None else None
        self.handover = (
            Handover(str(config.cell), wait=config.handover == "drain") if config.handover else None
        )

    def on_start(self, ctx: Context) -> None:
        if self.config.cross == "tcc":
            self.tcc.recover(ctx)
        saved = ctx.disk.get(_RULES_KEY)
        if saved is not None and self.cell_router is not None:
            self.cell_router.update(saved)  # the rules we acknowledged before a crash
        switch = ctx.disk.get(_LOAD_TEST_KEY)
        if switch is not None and self.load_test is not None:
            self.load_test.enabled = bool(switch)
        ctx.set_timer(_SWEEP_MS, _SWEEP_TIMER)

    # -- routing ------------------------------------------------------------------
    def store_of(self, account: str) -> NodeId:
        if self.config.store_routing is not None:
            return self.config.store_routing.store_of(account)
        if self.shard_router is not None:
            return self.shard_router.shard_of(account)
        assert self.cell_router is not None
        return self.cell_router.store_of(account)

    def all_stores(self) -> list[NodeId]:
        if self.shard_router is not None:
            return list(self.shard_router.shards)
        assert self.cell_router is not None
        router = self.cell_router
        live = set(router.rules.buckets) | set(router.rules.moved.values())
        live -= set(router.rules.moved)  # a moved cell's data is served elsewhere
        return sorted({router.stores[c] for c in live})

    # -- messages -----------------------------------------------------------------
    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        ctx.work(self.config.work_ms)
        if isinstance(msg, PayRequest):
            self._on_pay(ctx, src, msg, hops=0)
        elif isinstance(msg, Forwarded):
            self._on_pay(ctx, src, msg.request, hops=msg.hops)
        elif isinstance(msg, PayReply | StoreRejected | GatewayRejected):
            self._relay_back(ctx, msg)
        elif isinstance(msg, ReadBalances | ReadPayments):
            self._fan_out(ctx, src, msg)
        elif isinstance(msg, Balances | Payments):
            self._gather(ctx, msg)
        elif isinstance(msg, LegReply):
            self._naive_step(ctx, msg)
        elif isinstance(msg, TccTryReply | TccPhase2Reply):
            self._report(ctx, self.tcc.on_message(ctx, msg))
        elif isinstance(msg, Ping):
            ctx.send(src, Pong(msg.seq, ctx.node_id))
        elif isinstance(msg, LoadTestSwitch) and self.load_test is not None:
            self.load_test.enabled = msg.enabled
            ctx.disk.put(_LOAD_TEST_KEY, msg.enabled)
            ctx.disk.sync()
            ctx.trace("load-test-switch", enabled=msg.enabled)
        elif isinstance(msg, RangeReleased) and self.handover is not None:
            self.handover.released(ctx, msg)
        elif isinstance(msg, RulesUpdate):
            assert self.cell_router is not None
            before = self.cell_router.rules
            if self.cell_router.update(msg.rules):
                if self.handover is not None:
                    self.handover.adopted(ctx, before, msg.rules, self.cell_router.gateways)
                ctx.trace("rules-adopted", version=msg.rules.version)
                # On disk before the ack: the CZone sends a version it saw
                # acknowledged never again, so a gateway that came back from a
                # crash on its boot rules would misroute for good.
                ctx.disk.put(_RULES_KEY, msg.rules)
                ctx.disk.sync()
            # Acknowledge, or the CZone keeps re-sending (a lost push must not stick).
            ctx.send(src, RulesUpdateAck(self.cell_router.rules.version, ctx.node_id))
        else:
            super().on_message(ctx, src, msg)

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        if tag == _SWEEP_TIMER:
            now_ms = ctx.now_ms()
            for req_id in [r for r, (_, exp) in self.relay.items() if exp < now_ms]:
                del self.relay[req_id]  # its client gave up long ago
                if self.handover is not None:
                    self.handover.done(ctx, req_id)
            for req_id in [r for r, st in self.fanout.items() if st["expires"] < now_ms]:
                del self.fanout[req_id]
            ctx.set_timer(_SWEEP_MS, _SWEEP_TIMER)
        elif isinstance(tag, tuple) and tag[0] == "naive":
            self._naive_timeout(ctx, tag[1])
        elif isinstance(tag, tuple) and tag[0] in ("tcc-try", "tcc-p2"):
            self._report(ctx, self.tcc.on_timer(ctx, tag))
        else:
            super().on_timer(ctx, tag)

    # --8<-- [start:gateway-pay]
    def _on_pay(self, ctx: Context, src: NodeId, req: PayRequest, hops: int) -> None:
        assert 0 <= hops <= FORWARD_HOPS_MAX, hops
        ctx.count("requests")  # every payment that reaches this gateway (its load in the TUI)
        if self.load_test is not None:
            traced = self._enter_traced(ctx, src, req)
            if traced is None:
                return
            req = traced
        router = self.cell_router
        if router is not None:
            _, uid = parse_account(req.buyer)
            home = router.cell_of_user(uid)
            if home != self.config.cell and hops == FORWARD_HOPS_MAX:
                # Gateways disagree about the rules (one missed a change). Refuse:
                # nothing was done anywhere, and the client's retry meets newer rules.
                ctx.count("misrouted")
                ctx.send(src, GatewayRejected(req.req_id, "misrouted", ctx.node_id))
                return
            if home != self.config.cell:
                # Not ours: the user's cell serves it whole. Forward, and count it.
                ctx.count("forwarded")
                self._send_relayed(ctx, src, router.gateways[home], Forwarded(req, hops + 1))
                return
            if self.handover is not None and not self.handover.serve(
                ctx, router.bucket(uid), router.rules.version, req.req_id
            ):
                # Ours from this version on, but the old owner still has payments of
                # the range in flight: refuse (nothing done), the client retries.
                ctx.count("handover_refused")
                ctx.send(src, GatewayRejected(req.req_id, "handover", ctx.node_id))
                return
        buyer_store, merchant_store = self.store_of(req.buyer), self.store_of(req.merchant)
        if buyer_store == merchant_store:
            self._send_relayed(ctx, src, buyer_store, req)  # one local transaction
        elif self.config.cross == "naive":
            self._naive_begin(ctx, src, req, buyer_store, merchant_store)
        else:
            self._tcc_begin(ctx, src, req, buyer_store, merchant_store)

    # --8<-- [end:gateway-pay]

    # --8<-- [start:gateway-traced]
    def _enter_traced(self, ctx: Context, src: NodeId, req: PayRequest) -> PayRequest | None:
        """Chapter 7: record this hop, refuse tagged traffic the policy stops, and
        hand the next hop a child context (same trace, same tag, a new span)."""
        assert self.load_test is not None
        refusal = self.load_test.refusal(ctx.node_id, req.trace)
        emit_span(ctx, req.trace, "gateway.pay", payment=req.payment_id, outcome=refusal)
        if refusal:
            ctx.count("load_test_refused")
            ctx.send(src, GatewayRejected(req.req_id, refusal, ctx.node_id))
            return None
        if req.trace is None:
            return req
        return dataclasses.replace(req, trace=self.propagate(ctx, req.trace))

    def propagate(self, ctx: Context, trace: TraceContext) -> TraceContext:
        """The context the next hop gets. Every bit of baggage goes along."""
        return trace.child(self._req_id(ctx))

    # --8<-- [end:gateway-traced]

    def _send_relayed(
        self, ctx: Context, src: NodeId, dst: NodeId, msg: PayRequest | Forwarded
    ) -> None:
        req = msg.request if isinstance(msg, Forwarded) else msg
        if len(self.relay) >= PENDING_MAX:
            ctx.send(src, GatewayRejected(req.req_id, "overloaded", ctx.node_id))
            if self.handover is not None:
                self.handover.done(ctx, req.req_id)
            return
        expires = req.deadline_ms if req.deadline_ms else ctx.now_ms() + 10_000.0
        self.relay[req.req_id] = (src, expires)
        ctx.send(dst, msg)

    def _relay_back(self, ctx: Context, msg: PayReply | StoreRejected | GatewayRejected) -> None:
        entry = self.relay.pop(msg.req_id, None)
        if entry is not None:
            ctx.send(entry[0], msg)
        if self.handover is not None:
            self.handover.done(ctx, msg.req_id)

    # -- reads of everything ------------------------------------------------------------
    def _fan_out(self, ctx: Context, src: NodeId, req: ReadBalances | ReadPayments) -> None:
        stores = self.all_stores()
        expires = req.deadline_ms if req.deadline_ms else ctx.now_ms() + 10_000.0
        self.fanout[req.req_id] = {
            "src": src,
            "kind": type(req).__name__,
            "waiting": set(stores),
            "balances": {},
            "applied": [],
            "expires": expires,
        }
        for store in stores:
            sub = f"{req.req_id}|{store}"
            if isinstance(req, ReadBalances):
                ctx.send(store, ReadBalances(sub, req.accounts, req.deadline_ms, req.trace))
            else:
                ctx.send(store, ReadPayments(sub, req.deadline_ms))

    def _gather(self, ctx: Context, msg: Balances | Payments) -> None:
        parent, _, store = msg.req_id.rpartition("|")
        state = self.fanout.get(parent)
        if state is None or store not in state["waiting"]:
            return
        state["waiting"].discard(store)
        if isinstance(msg, Balances):
            state["balances"].update(msg.balances)
        else:
            state["applied"].extend(msg.applied)
        if not state["waiting"]:
            del self.fanout[parent]
            if state["kind"] == "ReadBalances":
                ctx.send(state["src"], Balances(parent, state["balances"], ctx.node_id))
            else:
                applied = tuple(sorted(state["applied"]))
                ctx.send(state["src"], Payments(parent, applied, ctx.node_id))

    # -- cross-store, the naive way ---------------------------------------------------------
    # --8<-- [start:naive-transfer]
    def _naive_begin(
        self,
        ctx: Context,
        src: NodeId,
        req: PayRequest,
        buyer_store: NodeId,
        merchant_store: NodeId,
    ) -> None:
        pid = req.payment_id
        if pid in self.naive:  # a retry while the first attempt is in flight
            self.naive[pid].waiters.append((src, req.req_id))
            return
        xfer = _Naive(
            pid, req.buyer, req.merchant, req.amount_cents, buyer_store, merchant_store,
            "debit", [(src, req.req_id)],
        )  # fmt: skip
        self.naive[pid] = xfer
        # Step 1: take the money from the buyer. Nothing remembers that we did.
        self._leg(ctx, xfer.buyer_store, f"{pid}:debit", xfer.buyer, -xfer.amount_cents)

    def _naive_step(self, ctx: Context, msg: LegReply) -> None:
        pid, _, step = msg.leg_id.rpartition(":")
        xfer = self.naive.get(pid)
        if xfer is None or xfer.step != step:
            return
        if step == "debit" and msg.status == "applied":
            # Step 2: give it to the merchant. If we die right here, it is gone.
            xfer.step = "credit"
            self._leg(ctx, xfer.merchant_store, f"{pid}:credit", xfer.merchant, xfer.amount_cents)
        elif step == "debit":
            self._naive_done(ctx, xfer, "declined", "insufficient-funds")
        else:
            self._naive_done(ctx, xfer, "paid", "")

    def _naive_timeout(self, ctx: Context, pid: str) -> None:
        xfer = self.naive.get(pid)
        if xfer is not None:
            # No undo: a debit that landed stays landed, and the client hears "failed".
            self._naive_done(ctx, xfer, "failed", f"{xfer.step}-timeout")

    # --8<-- [end:naive-transfer]

    def _leg(self, ctx: Context, store: NodeId, leg_id: str, account: str, delta: int) -> None:
        deadline_ms = ctx.now_ms() + self.config.step_timeout_ms
        ctx.send(store, LegRequest(self._req_id(ctx), leg_id, account, delta, deadline_ms))
        ctx.set_timer(self.config.step_timeout_ms, ("naive", leg_id.rpartition(":")[0]))

    def _naive_done(self, ctx: Context, xfer: _Naive, status: str, reason: str) -> None:
        del self.naive[xfer.payment_id]
        ctx.cancel_timer(("naive", xfer.payment_id))
        for client, req_id in xfer.waiters:
            ctx.send(client, PayReply(req_id, xfer.payment_id, status, reason, ctx.node_id))

    # -- cross-store, with TCC ---------------------------------------------------------------
    def _tcc_begin(
        self,
        ctx: Context,
        src: NodeId,
        req: PayRequest,
        buyer_store: NodeId,
        merchant_store: NodeId,
    ) -> None:
        xid = req.payment_id
        outcome = self.tcc.outcome(ctx, xid)
        if outcome in ("commit", "rollback"):  # a retry: the decision is the answer
            status, reason = self._status(outcome, self.tcc.reason(ctx, xid))
            ctx.send(src, PayReply(req.req_id, xid, status, reason, ctx.node_id))
            return
        self.waiters.setdefault(xid, []).append((src, req.req_id))
        if outcome == "trying":
            return
        if self.tcc.full:
            self.waiters.pop(xid)
            ctx.send(src, GatewayRejected(req.req_id, "overloaded", ctx.node_id))
            return
        branches = (
            Branch("debit", "debit", buyer_store, req.buyer, req.amount_cents, req.trace),
            Branch("credit", "credit", merchant_store, req.merchant, req.amount_cents, req.trace),
        )
        self.tcc.begin(ctx, xid, branches)

    def _report(self, ctx: Context, decided: tuple[str, str] | None) -> None:
        if decided is None:
            return
        xid, decision = decided
        status, reason = self._status(decision, self.tcc.reason(ctx, xid))
        for client, req_id in self.waiters.pop(xid, []):
            ctx.send(client, PayReply(req_id, xid, status, reason, ctx.node_id))

    @staticmethod
    def _status(decision: str, reason: str) -> tuple[str, str]:
        if decision == "commit":
            return "paid", ""
        return ("declined" if reason == "insufficient-funds" else "failed"), reason

    def _req_id(self, ctx: Context) -> str:
        self._seq += 1
        return f"{ctx.node_id}:{self._seq}"
