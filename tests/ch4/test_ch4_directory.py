"""The static half of chapter 4: where accounts live, and the genesis ledger."""

from __future__ import annotations

from chapters import get_stage
from reference.ledger.directory import TREASURY_ID, transfer_id
from reference.ledger.records import ID_MAX
from reference.runtime.sim import SimRuntime


def _directory():
    stage = get_stage("ch4")
    options = stage.options(seed=1)
    dep = stage.build(SimRuntime(topology=stage.topology(options), seed=1), options)
    return dep, dep.directory


def test_transfer_ids_are_stable_and_in_range() -> None:
    assert transfer_id("client-1-7") == transfer_id("client-1-7")
    assert transfer_id("client-1-7") != transfer_id("client-1-8")
    assert all(1 <= transfer_id(f"p{i}") <= ID_MAX for i in range(200))


def test_every_account_has_one_group_and_users_follow_their_buckets() -> None:
    dep, d = _directory()
    assert sorted(d.ids) == sorted(dep.initial)
    assert sum(len(m) for m in d.members.values()) == len(d.ids)
    assert d.group_of("u0") == "hz-1" and d.group_of("u99") == "sz-1"
    assert d.group_of("u134") == d.group_of("u34")  # uid % 100
    assert d.group_of("m3@sh-1") == "sh-1"


def test_genesis_is_the_opening_balances_and_balances_double_entry() -> None:
    dep, d = _directory()
    for cell in d.groups:
        ledger = d.genesis(cell).ledger
        ledger.check_invariants()
        balances = d.balances(ledger.accounts())
        assert balances == {a: dep.initial[a] for a in d.accounts_of(cell)}
        treasury = ledger.lookup_accounts([TREASURY_ID])[0]
        assert treasury.debits_posted_cents == sum(balances.values())
    # Same genesis on every replica: snapshots compare equal.
    assert d.genesis("hz-1").snapshot() == d.genesis("hz-1").snapshot()


def test_groups_span_three_cities_leader_candidate_first() -> None:
    dep, _ = _directory()
    for cell, group in dep.groups.items():
        cities = [dep.topology.city_of(r) for r in group.members()]
        assert len(set(cities)) == 3
        assert cities[0] == dep.cell_city[cell]  # the home city campaigns first
