"""Chapter 4's own checks can say no: a checker is trusted only once it has caught a
real violation. Tampered replicas for the fast tests; a planted Paxos bug (the
bug zoo's "no-adopt") for the slow one."""

from __future__ import annotations

import dataclasses

import pytest
from ch4_runs import run

from chapters.run import simulate
from checks.history import pair_operations
from checks.transfers import check_ledger
from reference.ledger.directory import transfer_id
from reference.ledger.service import LedgerReplica


def _fresh_run():  # not memoized: these tests damage the replicas
    return simulate("ch4", "steady", seed=7, duration_s=0.3)


def _first_acked(res) -> dict:
    ops = pair_operations(res.history)
    return next(op.invoke.value for op in ops if op.f == "transfer" and op.type == "ok")


def _erase(node: LedgerReplica, payment_id: str) -> None:
    """Make a replica forget one applied payment: its ledger record and its log entries."""
    node.machine.ledger._transfers.pop(transfer_id(payment_id))
    rid = f"pay:{payment_id}"
    for slot in [s for s, (_, b) in node.accepted.items() if any(r == rid for r, _ in b)]:
        del node.accepted[slot]
    for slot in [s for s, b in node.chosen.items() if any(r == rid for r, _ in b)]:
        del node.chosen[slot]


def test_the_checks_pass_on_an_untouched_run() -> None:
    res = _fresh_run()
    assert res.verdicts["lost-payments"].valid is True
    assert res.verdicts["double-entry"].valid is True


def test_lost_payments_names_a_payment_two_replicas_forgot() -> None:
    res = _fresh_run()
    dep = res.deployment
    paid = _first_acked(res)
    group = dep.groups[dep.directory.group_of(paid["from"])]
    for replica in group.replicas[:2]:
        _erase(dep.rt.node(replica), paid["id"])
    verdicts = dep.run_checks()
    lost = verdicts["lost-payments"]
    assert lost.valid is False
    assert paid["id"] in lost.summary and lost.details["lost"] == [paid["id"]]
    # The forgotten transfer also leaves its accounts' balances unexplained.
    entry = verdicts["double-entry"]
    assert entry.valid is False and "balances" in entry.summary


def test_one_replica_forgetting_is_not_a_loss_but_breaks_its_audit() -> None:
    res = _fresh_run()
    dep = res.deployment
    paid = _first_acked(res)
    group = dep.groups[dep.directory.group_of(paid["from"])]
    _erase(dep.rt.node(group.replicas[0]), paid["id"])
    verdicts = dep.run_checks()
    assert verdicts["lost-payments"].valid is True  # two of three still hold it
    assert verdicts["double-entry"].valid is False
    assert group.replicas[0] in verdicts["double-entry"].summary


def test_double_entry_sees_replicas_that_disagree() -> None:
    """Same log index, different ledgers: each passes its own audit, not the comparison."""
    res = _fresh_run()
    dep = res.deployment
    group = next(iter(dep.groups.values()))
    a, b = (dep.rt.node(r) for r in group.replicas[:2])
    assert a.commit_index == b.commit_index
    ledger = b.machine.ledger
    ledger._clock_ms += 1  # a replica that applied some batch at another time
    verdict = dep.run_checks()["double-entry"]
    assert verdict.valid is False and "different ledgers" in verdict.summary


@pytest.mark.slow
def test_a_planted_paxos_bug_loses_acknowledged_payments() -> None:
    """The bug zoo's "no-adopt": a new leader ignores what the acceptors accepted,
    so a payment chosen under the old leader is overwritten. Losing Shanghai with
    seed 2 elects such a leader; the ledger and lost-payments checks both see it."""
    res = run("ch4", "crash", seed=2, extra={"mutations": "no-adopt"})
    assert res.verdicts["lost-payments"].valid is False
    assert res.verdicts["ledger"].valid is False
    assert not res.as_expected


def _stale_copy(res) -> tuple[list, dict]:
    """The history with one mid-run read made stale: it misses the last payment
    acknowledged before it began (and so still adds up)."""
    ops = pair_operations(res.history)
    read = next(
        op for op in ops if op.f == "read" and op.type == "ok" and op.invoke.time_ms > 1_000.0
    )
    before = [
        op.invoke.value
        for op in ops
        if op.f == "transfer" and op.type == "ok" and op.completion.time_ms < read.invoke.time_ms
    ]
    paid = before[-1]
    stale = dict(read.completion.value)
    stale[paid["from"]] += paid["amount_cents"]  # as if the payment had not happened yet
    stale[paid["to"]] -= paid["amount_cents"]
    history = [
        dataclasses.replace(e, value=stale) if e.index == read.completion.index else e
        for e in res.history
    ]
    return history, paid


def test_lease_reads_are_linearizable_in_a_city_loss() -> None:
    """Every mid-run read (a lease read of each group) shows every payment
    acknowledged before it began: the ledger checker in real-time mode, over
    the whole crash run. (Not the stage's default ledger check: in real time
    a read that waits out a failover overlaps hundreds of payments, and the
    search for the subset it saw can take a minute.)"""
    res = run("ch4", "crash", seed=3)
    verdict = check_ledger(res.history, initial=res.deployment.initial, realtime=True)
    assert verdict.valid is True, verdict.summary
    assert verdict.details["reads_unchecked"] == 0
    assert verdict.details["complete_reads"] > 20


def test_a_stale_read_adds_up_but_is_not_linearizable() -> None:
    """Bank passes a stale read (its total is right); the stage's lin check (the
    ledger model, wallet by wallet) and the real-time ledger check do not."""
    res = run("ch4", "crash", seed=3)
    history, paid = _stale_copy(res)
    verdicts = res.deployment.run_checks(history)
    assert verdicts["bank"].valid is True
    assert verdicts["lin"].valid is False
    assert paid["from"] in verdicts["lin"].summary
    verdict = check_ledger(history, initial=res.deployment.initial, realtime=True)
    assert verdict.valid is False and "not-realtime" in verdict.summary
