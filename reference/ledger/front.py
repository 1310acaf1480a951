"""The ledger front: where chapter 3's payment requests meet chapter 4's Paxos groups.

Chapter 3's gateways route a payment to their cell's *store* with a
`PayRequest`; chapter 4 keeps those gateways (routing every payment to the
gateway's own front: `reference.gateway.OwnCellStore`), routers and failover
controller, and puts a front where the store was. The front turns
a payment into one ledger transfer and proposes it to the Paxos group that
holds the accounts (`Directory.group_of`), wherever that group's leader is
now; it turns a read of balances into lease reads (`paxos.Read`) of every
group. It keeps no state that matters: a crashed front loses only requests
its clients will retry.

Why a retry can never pay twice, even through another front in another city
after a failover: the Paxos request id is derived from the payment id (the
group's dedup table answers a retry from the first outcome), and so is the
ledger transfer id (the ledger answers `exists` for an id it holds).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from reference.clients.messages import ABSENT, APPLIED, LookupPayments, PaymentsFound
from reference.codec import Message
from reference.ledger import CreateTransfers, FenceTransfers, LookupAccounts, Rejected, Transfer
from reference.ledger.directory import CODE_PAYMENT, LEDGER_CNY, Directory, transfer_id
from reference.ledger.results import CreateTransferResult, FenceTransferResult
from reference.node import Context, Node, NodeId
from reference.paxos.leader import LeaderFollower
from reference.paxos.messages import Propose, ProposeResult, Read, ReadResult
from reference.payment.messages import Balances, PayReply, PayRequest, ReadBalances
from reference.sqlstore.messages import Promote, PromoteAck, StoreRejected
from reference.tracing.context import emit_span
from reference.tracing.shadow import shadow_request

__all__ = ["FrontConfig", "LedgerFront"]

CALLS_MAX = 20_000  # requests in flight to the groups; beyond it, refuse new ones
ATTEMPTS_MAX = 1_000  # sends of one request (a caller without a deadline included)
_R = CreateTransferResult
_PAID = frozenset({_R.OK, _R.EXISTS})  # exists: a retry of a transfer already applied
_DECLINED = frozenset({_R.EXCEEDS_CREDITS, _R.ID_ALREADY_FAILED})


@dataclass(frozen=True)
class FrontConfig:
    directory: Directory
    attempt_timeout_ms: float = 120.0  # silence from a replica: try the next one
    backoff_ms: float = 10.0  # after "not the leader" / "no lease", before retrying
    work_ms: float = 0.05  # busy time per message handled
    traced: bool = False  # chapter 7: a `span` trace event for every payment served

    def __post_init__(self) -> None:
        assert self.attempt_timeout_ms > 0 and self.backoff_ms >= 0


@dataclass
class _Call:
    """One request to one Paxos group, retried until answered or past its deadline."""

    key: str  # the Paxos request id
    group: str
    msg: Propose | Read
    deadline_ms: float
    waiters: list[tuple[NodeId, str]] = field(default_factory=list)  # (reply to, req_id)
    payment_id: str = ""
    read_id: str = ""  # the ReadBalances this lease read is part of
    lookup_id: str = ""  # the LookupPayments this fence is part of
    payment_ids: tuple[str, ...] = ()  # a fence's payments, in the order of its ids
    attempt: int = 0


@dataclass
class _Gather:
    src: NodeId
    waiting: set[str]
    balances: dict[str, int] = field(default_factory=dict)


@dataclass
class _Lookup:
    src: NodeId
    waiting: set[str]  # call keys not answered yet
    outcomes: dict[str, str] = field(default_factory=dict)  # payment id -> APPLIED | ABSENT


class LedgerFront(Node):
    """See the module docstring."""

    def __init__(self, config: FrontConfig) -> None:
        self.config = config
        self.directory = config.directory
        # Whom we believe leads each group: the first replica at boot (it
        # campaigns first), then whatever the replicas tell us.
        self.leaders = {g: LeaderFollower(r) for g, r in self.directory.groups.items()}
        self.calls: dict[str, _Call] = {}
        self.reads: dict[str, _Gather] = {}
        self.lookups: dict[str, _Lookup] = {}
        # The placement is fixed at build time, so each account's group is
        # looked up once per front; a full read asks for every account.
        self._groups: dict[str, str] = {}
        self._whole_read: dict[str, list[int]] | None = None

    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        ctx.work(self.config.work_ms)
        if isinstance(msg, PayRequest):
            self._on_pay(ctx, src, msg)
        elif isinstance(msg, ProposeResult):
            self._on_result(ctx, src, msg.request_id, msg.ok, msg.leader_hint, msg.result)
        elif isinstance(msg, ReadBalances):
            self._on_read(ctx, src, msg)
        elif isinstance(msg, LookupPayments):
            self._on_lookup(ctx, src, msg)
        elif isinstance(msg, ReadResult):
            self._on_result(ctx, src, msg.request_id, msg.ok, msg.leader_hint, msg.value)
        elif isinstance(msg, Promote):
            # Failover (chapter 3's controller, unchanged): in chapter 3 the
            # standby had to become the primary of a copy of the data. Here
            # there is nothing to promote: the dead cell's group already
            # elected a leader in a surviving city, and any front reaches it.
            ctx.trace("front-promoted", reason=msg.reason)
            ctx.send(src, PromoteAck(ctx.node_id, 0))
        else:
            super().on_message(ctx, src, msg)

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        if not (isinstance(tag, tuple) and tag[0] in ("attempt", "retry")):
            super().on_timer(ctx, tag)
            return
        call = self.calls.get(tag[1])
        if call is None:
            return
        if tag[0] == "attempt":
            if tag[2] != call.attempt:
                return  # an older attempt's timer
            self.leaders[call.group].silent()  # silence: try another
        self._send(ctx, call)

    # -- payments ---------------------------------------------------------------------
    # --8<-- [start:front-pay]
    def _on_pay(self, ctx: Context, src: NodeId, req: PayRequest) -> None:
        if req.deadline_ms and req.deadline_ms <= ctx.now_ms():
            ctx.send(src, StoreRejected(req.req_id, "expired", ctx.node_id))
            return
        # Chapter 7: a tagged payment moves shadow money, in the same group.
        req = self.shadow(req)
        if self.config.traced:
            emit_span(ctx, req.trace, "ledger-pay", payment=req.payment_id,
                      writes=(req.buyer, req.merchant))  # fmt: skip
        group = self._group_of(req.buyer)
        if self._group_of(req.merchant) != group:
            # Chapter 3's cells keep a payment inside one cell; one group here.
            ctx.send(
                src, PayReply(req.req_id, req.payment_id, "failed", "cross-group", ctx.node_id)
            )
            return
        key = f"pay:{req.payment_id}"  # the same on every front: Paxos dedups retries
        call = self.calls.get(key)
        if call is None:
            if len(self.calls) >= CALLS_MAX:
                ctx.send(src, StoreRejected(req.req_id, "overloaded", ctx.node_id))
                return
            ids = self.directory.ids
            transfer = Transfer(
                id=transfer_id(req.payment_id),
                debit_account_id=ids[req.buyer],
                credit_account_id=ids[req.merchant],
                amount_cents=req.amount_cents,
                ledger=LEDGER_CNY,
                code=CODE_PAYMENT,
            )
            # timestamp_ms=0: the group's leader stamps the batch with its clock.
            command = CreateTransfers((transfer,), 0)
            call = _Call(
                key, group, Propose(key, command), req.deadline_ms, payment_id=req.payment_id
            )
            self.calls[key] = call
            call.waiters.append((src, req.req_id))
            self._send(ctx, call)
            return
        call.waiters.append((src, req.req_id))  # a retry while the first is in flight
        call.deadline_ms = max(call.deadline_ms, req.deadline_ms)

    def shadow(self, req: PayRequest) -> PayRequest:
        """The request this front proposes: a tagged one on the shadow accounts."""
        return shadow_request(req)  # type: ignore[no-any-return]

    def _paid(self, ctx: Context, call: _Call, result: Any) -> None:
        code = result[0] if isinstance(result, tuple) and len(result) == 1 else None
        if code in _PAID:
            status, reason = "paid", ""
            ctx.count("txns")
        elif code in _DECLINED:
            status, reason = "declined", "insufficient-funds"
        else:  # the ledger refused it: certainly not applied
            reason = result.reason if isinstance(result, Rejected) else str(code)
            status = "failed"
        for client, req_id in call.waiters:
            ctx.send(client, PayReply(req_id, call.payment_id, status, reason, ctx.node_id))

    # --8<-- [end:front-pay]

    # -- reads ------------------------------------------------------------------------
    def _on_read(self, ctx: Context, src: NodeId, req: ReadBalances) -> None:
        if req.accounts is not None:
            by_group = self._ids_by_group(req.accounts)
        else:  # every account: the same grouping every time
            if self._whole_read is None:
                self._whole_read = self._ids_by_group(self.directory.ids)
            by_group = self._whole_read
        if req.req_id in self.reads:
            return  # a duplicate of a read in progress: its answer is on the way
        if len(self.calls) + len(by_group) > CALLS_MAX:
            ctx.send(src, StoreRejected(req.req_id, "overloaded", ctx.node_id))
            return
        self.reads[req.req_id] = _Gather(src, set(by_group))
        if not by_group:
            self._gathered(ctx, req.req_id)
            return
        for group, ids in sorted(by_group.items()):
            # A lease read: the leader answers from its state without a round of
            # Paxos, for as long as its lease (minus the clock-skew bound) runs.
            key = f"read:{req.req_id}:{group}"
            query = LookupAccounts(tuple(ids))
            call = _Call(key, group, Read(key, query), req.deadline_ms, read_id=req.req_id)
            self.calls[key] = call
            self._send(ctx, call)

    def _ids_by_group(self, names: Iterable[str]) -> dict[str, list[int]]:
        """The ledger ids of the known accounts among `names`, by group, in order."""
        by_group: dict[str, list[int]] = {}
        ids = self.directory.ids
        for name in names:
            if name in ids:
                by_group.setdefault(self._group_of(name), []).append(ids[name])
        return by_group

    def _group_of(self, account: str) -> str:
        group = self._groups.get(account)
        if group is None:
            group = self._groups[account] = self.directory.group_of(account)
        return group

    def _read_part(self, ctx: Context, call: _Call, value: Any) -> None:
        gather = self.reads.get(call.read_id)
        if gather is None or call.group not in gather.waiting:
            return
        gather.waiting.discard(call.group)
        gather.balances.update(self.directory.balances(value))
        if not gather.waiting:
            self._gathered(ctx, call.read_id)

    def _gathered(self, ctx: Context, read_id: str) -> None:
        gather = self.reads.pop(read_id)
        ctx.send(gather.src, Balances(read_id, dict(sorted(gather.balances.items())), ctx.node_id))

    # -- looking payments up, for good -------------------------------------------------
    # --8<-- [start:front-lookup]
    def _on_lookup(self, ctx: Context, src: NodeId, req: LookupPayments) -> None:
        """Settle each payment through its group's log: applied, or fenced for good.

        A fence is a write (`FenceTransfers`), never a lease read: a lease
        read could say "absent" while the payment's proposal still waits in
        the leader's queue, and then it would be applied after all. Through
        the log, what the fence did not find can never be applied after it.
        """
        if req.req_id in self.lookups:
            return  # a duplicate of a lookup in progress: its answer is on the way
        by_group: dict[str, list[str]] = {}
        for payment_id, buyer in req.payments:
            if buyer in self.directory.ids:
                by_group.setdefault(self.directory.group_of(buyer), []).append(payment_id)
        if len(self.calls) + len(by_group) > CALLS_MAX:
            ctx.send(src, StoreRejected(req.req_id, "overloaded", ctx.node_id))
            return
        lookup = self.lookups[req.req_id] = _Lookup(src, set())
        for payment_id, buyer in req.payments:
            if buyer not in self.directory.ids:
                lookup.outcomes[payment_id] = ABSENT  # no such account: never a transfer
        for group, payment_ids in sorted(by_group.items()):
            key = f"fence:{req.req_id}:{group}"
            ids = tuple(transfer_id(p) for p in payment_ids)
            call = _Call(key, group, Propose(key, FenceTransfers(ids)), req.deadline_ms)
            call.lookup_id, call.payment_ids = req.req_id, tuple(payment_ids)
            self.calls[key] = call
            lookup.waiting.add(key)
            self._send(ctx, call)
        if not lookup.waiting:
            self._looked_up(ctx, req.req_id)

    def _lookup_part(self, ctx: Context, call: _Call, result: Any) -> None:
        lookup = self.lookups.get(call.lookup_id)
        if lookup is None or call.key not in lookup.waiting:
            return
        if not (isinstance(result, tuple) and len(result) == len(call.payment_ids)):
            # Refused whole (`Rejected`): no answer for these; the client asks again.
            del self.lookups[call.lookup_id]
            return
        lookup.waiting.discard(call.key)
        for payment_id, code in zip(call.payment_ids, result, strict=True):
            applied = code == FenceTransferResult.APPLIED
            lookup.outcomes[payment_id] = APPLIED if applied else ABSENT
        if not lookup.waiting:
            self._looked_up(ctx, call.lookup_id)

    def _looked_up(self, ctx: Context, lookup_id: str) -> None:
        lookup = self.lookups.pop(lookup_id)
        outcomes = tuple(sorted(lookup.outcomes.items()))
        ctx.send(lookup.src, PaymentsFound(lookup_id, outcomes, ctx.node_id))

    # --8<-- [end:front-lookup]

    # -- talking to a group -------------------------------------------------------------
    def _send(self, ctx: Context, call: _Call) -> None:
        now_ms = ctx.now_ms()
        left_ms = call.deadline_ms - now_ms if call.deadline_ms else self.config.attempt_timeout_ms
        if left_ms <= 0 or call.attempt >= ATTEMPTS_MAX:
            # The caller stopped waiting. A proposal may still commit: the
            # client will learn it by retrying the same payment id.
            self._drop(call)
            if call.read_id:
                # A read missing one group's part is no read: drop it whole.
                self.reads.pop(call.read_id, None)
            if call.lookup_id:
                self.lookups.pop(call.lookup_id, None)  # nor is a lookup missing a group
            return
        call.attempt += 1
        ctx.send(self.leaders[call.group].leader, call.msg)
        timeout_ms = min(self.config.attempt_timeout_ms, left_ms)
        ctx.set_timer(timeout_ms, ("attempt", call.key, call.attempt))

    def _on_result(
        self,
        ctx: Context,
        src: NodeId,
        key: str,
        ok: bool,
        leader_hint: NodeId | None,
        value: Any,
    ) -> None:
        call = self.calls.get(key)
        if call is None:
            return  # answered already, or given up
        if ok:
            self.leaders[call.group].answered(src)
            ctx.cancel_timer(("attempt", key, call.attempt))
            self._drop(call)
            if call.lookup_id:
                self._lookup_part(ctx, call, value)
            elif isinstance(call.msg, Propose):
                self._paid(ctx, call, value)
            else:
                self._read_part(ctx, call, value)
            return
        # Not the leader (or no lease yet, or overloaded): follow the hint, or
        # try the next replica, after a short pause.
        self.leaders[call.group].refused(src, leader_hint)
        ctx.cancel_timer(("attempt", key, call.attempt))
        ctx.set_timer(self.config.backoff_ms, ("retry", key))

    def _drop(self, call: _Call) -> None:
        del self.calls[call.key]
