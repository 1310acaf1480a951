"""Chapter 7's tag through chapter 4's ledger hop: directory, genesis, front, checker.

A tagged payment reaching a ledger front is proposed on the shadow twins of
its accounts, in the same Paxos group as production's; the front's span
says so; and the isolation checker, fed the front's real spans, passes it
and catches the planted leak (a front that drops the tag).
"""

from __future__ import annotations

from typing import Any

from checks.history import Event
from checks.isolation import check_isolation
from reference.gateway.router import even_buckets
from reference.ledger import CreateTransfers
from reference.ledger.directory import Directory
from reference.ledger.front import FrontConfig, LedgerFront
from reference.paxos.messages import Propose
from reference.payment.messages import PayRequest
from reference.testing import RecordingContext
from reference.tracing import new_trace, shadow_account
from reference.tracing.leaky import TagDroppingFront

PRODUCTION = {"u1": 10_000, "u2": 10_000, "m1@c1": 0, "m1@c2": 0}


def _directory() -> Directory:
    balances = PRODUCTION | {shadow_account(a): b for a, b in PRODUCTION.items()}
    groups = {"c1": ("r1", "r2", "r3"), "c2": ("r4", "r5", "r6")}
    return Directory.build(even_buckets(["c1", "c2"]), groups, balances)


def test_shadow_twins_live_in_their_production_twins_group_and_open_at_genesis() -> None:
    d = _directory()
    for account in PRODUCTION:
        assert d.group_of(shadow_account(account)) == d.group_of(account)
    group = d.group_of("u1")
    machine = d.genesis(group)
    looked = machine.ledger.lookup_accounts([d.ids["pt_u1"], d.ids["u1"]])
    assert d.balances(looked) == {"pt_u1": 10_000, "u1": 10_000}


def _pay(front: LedgerFront, *, load_test: bool, pid: str) -> tuple[Propose, dict[str, Any]]:
    ctx = RecordingContext(node_id="front-c1")
    buyer = "u1"
    merchant = f"m1@{front.directory.group_of(buyer)}"
    trace = new_trace(pid, f"{pid}-root", load_test=load_test).child(f"{pid}-gw")
    front.on_message(ctx, "gw-c1", PayRequest("r1", pid, buyer, merchant, 500, 0.0, trace))
    (propose,) = [m for _, m in ctx.sent if isinstance(m, Propose)]
    (span,) = [f for kind, f in ctx.traces if kind == "span"]
    return propose, {**span, "node": "front-c1"}


def _accounts(d: Directory, propose: Propose) -> tuple[str, str]:
    assert isinstance(propose.command, CreateTransfers)
    (t,) = propose.command.transfers
    return d.names[t.debit_account_id], d.names[t.credit_account_id]


def _history(spans: list[dict[str, Any]], tagged: list[str]) -> list[Event]:
    events = [
        Event("invoke", 1, "load-test:transfer", {"id": pid}, 0.0, i)
        for i, pid in enumerate(tagged)
    ]
    events += [Event("info", "trace", "span", s, 1.0, len(events) + i) for i, s in enumerate(spans)]
    return events


def test_a_tagged_payment_moves_shadow_money_and_the_checker_agrees() -> None:
    d = _directory()
    front = LedgerFront(FrontConfig(d, traced=True))
    shadow, shadow_span = _pay(front, load_test=True, pid="p-load")
    live, live_span = _pay(front, load_test=False, pid="p-live")
    assert _accounts(d, shadow) == ("pt_u1", f"pt_m1@{d.group_of('u1')}")
    assert _accounts(d, live) == ("u1", f"m1@{d.group_of('u1')}")
    assert shadow_span["mark"] == "T" and live_span["mark"] == "F"
    verdict = check_isolation(_history([shadow_span, live_span], ["p-load"]))
    assert verdict.valid is True, verdict.summary


def test_the_checker_catches_a_ledger_front_that_drops_the_tag() -> None:
    d = _directory()
    front = TagDroppingFront(FrontConfig(d, traced=True))
    propose, span = _pay(front, load_test=True, pid="p-load")
    assert _accounts(d, propose) == ("u1", f"m1@{d.group_of('u1')}")  # production money
    verdict = check_isolation(_history([span], ["p-load"]))
    assert verdict.valid is False
    assert {"lost-tag", "tagged-write-to-production"} <= set(verdict.details["violations"])


def test_an_untraced_front_emits_no_span() -> None:
    """Chapters 4 and 5 build fronts untraced: their runs (and digests) do not change."""
    ctx = RecordingContext(node_id="front-c1")
    front = LedgerFront(FrontConfig(_directory()))
    front.on_message(ctx, "gw-c1", PayRequest("r1", "p", "u1", "m1@c1", 5, 0.0))
    assert not [kind for kind, _ in ctx.traces if kind == "span"]
