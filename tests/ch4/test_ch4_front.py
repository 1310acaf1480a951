"""The ledger front, alone: one payment, one transfer, retried until the leader answers."""

from __future__ import annotations

from reference.gateway.router import even_buckets
from reference.ledger import CreateTransfers, LookupAccounts
from reference.ledger.directory import Directory, transfer_id
from reference.ledger.front import FrontConfig, LedgerFront
from reference.paxos.messages import Propose, ProposeResult, Read, ReadResult
from reference.payment.messages import Balances, PayReply, PayRequest, ReadBalances
from reference.testing import RecordingContext

GROUP = ("a-hz", "a-sh", "a-sz")


def _front() -> tuple[LedgerFront, RecordingContext, Directory]:
    rules = even_buckets(["c1"])
    directory = Directory.build(rules, {"c1": GROUP}, {"u1": 500, "u2": 700, "m0@c1": 0})
    return LedgerFront(FrontConfig(directory)), RecordingContext(node_id="front"), directory


def _pay(front: LedgerFront, ctx: RecordingContext, req_id: str = "r1") -> None:
    front.on_message(ctx, "gw", PayRequest(req_id, "p1", "u1", "m0@c1", 300, 1_000.0))


def test_a_payment_is_one_transfer_proposed_to_the_leader() -> None:
    front, ctx, d = _front()
    _pay(front, ctx)
    ((dst, msg),) = ctx.take_sent()
    assert dst == "a-hz" and isinstance(msg, Propose) and msg.request_id == "pay:p1"
    assert isinstance(msg.command, CreateTransfers) and msg.command.timestamp_ms == 0
    (t,) = msg.command.transfers
    assert (t.id, t.debit_account_id, t.credit_account_id, t.amount_cents) == (
        transfer_id("p1"), d.ids["u1"], d.ids["m0@c1"], 300,
    )  # fmt: skip


def test_not_the_leader_follows_the_hint_and_a_retry_is_not_a_new_proposal() -> None:
    front, ctx, _ = _front()
    _pay(front, ctx)
    ctx.take_sent()
    front.on_message(ctx, "a-hz", ProposeResult("pay:p1", False, None, "a-sz", "not-leader"))
    assert ctx.take_sent() == [] and ("retry", "pay:p1") in ctx.timers
    front.on_timer(ctx, ("retry", "pay:p1"))
    ((dst, msg),) = ctx.take_sent()
    assert dst == "a-sz" and msg.request_id == "pay:p1"
    _pay(front, ctx, req_id="r2")  # the client's own retry, while the first is out
    assert ctx.take_sent() == []
    front.on_message(ctx, "a-sz", ProposeResult("pay:p1", True, ("exists",), "a-sz"))
    replies = ctx.take_sent()
    assert [(dst, m.req_id, m.status) for dst, m in replies if isinstance(m, PayReply)] == [
        ("gw", "r1", "paid"),
        ("gw", "r2", "paid"),
    ]


def test_silence_moves_on_to_the_next_replica_until_the_deadline() -> None:
    front, ctx, _ = _front()
    _pay(front, ctx)
    ctx.take_sent()
    front.on_timer(ctx, ("attempt", "pay:p1", 1))
    ((dst, _),) = ctx.take_sent()
    assert dst == "a-sh"
    ctx.clock_ms = 1_000.0  # the caller's deadline: give up, say nothing (it may commit)
    front.on_timer(ctx, ("attempt", "pay:p1", 2))
    assert ctx.take_sent() == [] and not front.calls


def test_declined_when_the_wallet_is_short() -> None:
    front, ctx, _ = _front()
    _pay(front, ctx)
    ctx.take_sent()
    front.on_message(ctx, "a-hz", ProposeResult("pay:p1", True, ("exceeds_credits",), "a-hz"))
    ((_, reply),) = ctx.take_sent()
    assert (reply.status, reply.reason) == ("declined", "insufficient-funds")


def test_a_read_is_a_lease_read_of_every_group_merged_by_name() -> None:
    front, ctx, d = _front()
    front.on_message(ctx, "client", ReadBalances("q1", None, 1_000.0))
    ((dst, read),) = ctx.take_sent()
    assert dst == "a-hz" and isinstance(read, Read) and isinstance(read.query, LookupAccounts)
    accounts = d.genesis("c1").ledger.lookup_accounts(read.query.ids)
    front.on_message(ctx, "a-hz", ReadResult(read.request_id, True, accounts, 0, "a-hz"))
    ((dst, balances),) = ctx.take_sent()
    assert dst == "client" and isinstance(balances, Balances)
    assert balances.balances == {"m0@c1": 0, "u1": 500, "u2": 700}
