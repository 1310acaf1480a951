"""The ledger checker on the histories that used to make it slow.

A failing chapter run hands the checker a few thousand transfers over a
thousand-odd accounts, a handful of indefinite ones, and a final read that
is off on a few accounts (lost payments) or on hundreds (a naive transfer
crashed mid-way). These tests pin what the fast search must keep: the same
answers as a brute-force search, explanations found from the accounts that
are off, and a bounded number of search steps (never a timed assertion).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st
from other_builder import History

from checks.transfers import (
    Budget,
    Fault,
    Transfer,
    Vec,
    _Space,
    add,
    check_ledger,
    explain,
    faults,
    reachable,
    sparse,
    sub,
)

STEPS = "explain"  # the details key holding the explanation search's figures


def T(tid: str, src: str, dst: str, cents: int) -> dict[str, object]:
    return {"id": tid, "from": src, "to": dst, "amount_cents": cents}


# --- the search against brute force ---------------------------------------


@dataclass
class Case:
    target: Vec
    reached: list[Vec]
    fs: list[Fault]


def _transfer(rng: random.Random, i: int, accounts: list[str]) -> Transfer:
    src, dst = rng.sample(accounts, 2)
    return Transfer(f"t{i}", src, dst, rng.choice([5, 7, 10, 12]), invoke_index=i)


def _case(seed: int) -> Case:
    """Random faults and in-flight transfers over five accounts, with a
    target made of a reachable vector plus up to three of the faults, or
    nudged off by one cent (then only faults that move a cent could)."""
    rng = random.Random(seed)
    accounts = list("abcde")
    ts = [_transfer(rng, i, accounts) for i in range(rng.randint(3, 9))]
    cut = sorted(rng.sample(range(len(ts) + 1), 3))
    fixed, candidates = ts[: cut[0]], ts[cut[0] : cut[1]]
    failed, future = ts[cut[1] : cut[2]], ts[cut[2] :]
    fs = faults(fixed, candidates, failed, future, final=rng.random() < 0.5)
    space = _Space(a for t in candidates for a in (t.source, t.target))
    every = reachable(space, candidates)
    assert every is not None
    reached = [space.sparse(d) for d in every]
    target = rng.choice(reached)
    for f in rng.sample(fs, min(len(fs), rng.randint(1, 3))):
        target = add(target, f.adjust)
    if rng.random() < 0.2 or target in reached:
        # explain() is asked only about reads no subset explains.
        target = add(target, (("a", 1),))
    return Case(target, reached, fs)


def _brute(case: Case, size: int) -> list[tuple[int, ...]]:
    """Every set of `size` faults on distinct transfers that, with some
    reached vector, makes the target; ranked by first fault, then the
    reached vector, then the other faults (as `explain` ranks them)."""
    ranked = []
    for combo in itertools.combinations(range(len(case.fs)), size):
        if len({case.fs[i].transfer.id for i in combo}) < size:
            continue
        rest: Vec = case.target
        for i in combo:
            rest = sub(rest, case.fs[i].adjust)
        if rest in case.reached:
            ranked.append((combo[0], case.reached.index(rest), *combo[1:]))
    return sorted(ranked)


@settings(max_examples=150)
@given(st.integers(0, 1_000_000))
def test_explain_agrees_with_brute_force(seed: int) -> None:
    case = _case(seed)
    got = explain(case.target, case.reached, case.fs, Budget(10**9), faults_max=3)
    assert not got.cut
    for size in (1, 2, 3):
        want = _brute(case, size)
        if want:
            assert got.size_searched == size
            expected = [[case.fs[i] for i in (k[0], *k[2:])] for k in want[:5]]
            assert got.combos == expected
            return
    assert got.combos == [] and got.size_searched == 3


def test_sparse_vectors_are_canonical() -> None:
    assert sparse({"b": 3, "a": -1, "c": 0}) == (("a", -1), ("b", 3))
    assert add((("a", 5),), (("a", -5), ("b", 1))) == (("b", 1),)
    assert sub((), (("a", 2),)) == (("a", -2),)


# --- chapter-sized histories ------------------------------------------------


def _big_history(
    seed: int, *, lost: int = 0, smeared: int = 0, hub_only: bool = False
) -> tuple[History, list[str]]:
    """Like a failing chapter-3 run: 1,200 user accounts paying 20
    merchants, 2,500 acknowledged payments, a few indefinite ones (some
    applied), and a final read. `lost` acknowledged payments are missing
    from it; `smeared` accounts are off by a cent each (a naive transfer
    crashing mid-way, many times); `hub_only` leaves one merchant short of
    one payment's credit and nothing else off."""
    rng = random.Random(seed)
    users = [f"u{i}" for i in range(1200)]
    merchants = [f"m{i}" for i in range(20)]
    balances = dict.fromkeys(users, 10_000_000) | dict.fromkeys(merchants, 0)
    h = History()
    h.op("setup", "init", None, dict(balances))
    acked: list[dict[str, object]] = []
    for i in range(2500):
        t = T(f"p{i}", rng.choice(users), rng.choice(merchants), rng.randint(100, 20_000))
        h.op(i % 8, "transfer", t)
        acked.append(t)
    applied = list(acked)
    for i in range(4):
        t = T(f"x{i}", rng.choice(users), rng.choice(merchants), rng.randint(100, 20_000))
        h.invoke(100 + i, "transfer", t).info(100 + i, "transfer", None)
        if i % 2 == 0:
            applied.append(t)
    gone = rng.sample(acked, lost)
    for t in applied:
        if t not in gone:
            balances[str(t["from"])] -= int(str(t["amount_cents"]))
            balances[str(t["to"])] += int(str(t["amount_cents"]))
    for u in rng.sample(users, smeared):
        balances[u] -= 1
    if hub_only:
        t = acked[7]
        balances[str(t["to"])] -= int(str(t["amount_cents"]))
    h.op("final", "read", None, balances)
    return h, [str(t["id"]) for t in gone]


def test_lost_payments_named_from_the_accounts_that_are_off() -> None:
    h, gone = _big_history(1, lost=4)
    v = check_ledger(h.events, realtime=False, explain_time_ms=None)
    assert v.valid is False
    (err,) = v.witness
    assert err["kind"] == "not-exactly-once"
    first = err["explanations"][0]
    for tid in gone:
        assert f"acknowledged transfer {tid} (" in first
    assert first.count(" was not applied") == 4
    # Four user accounts and at most four merchants are off: the search
    # starts from them, never from the 10,000 faults the history allows.
    # Listing those faults costs 2,500 steps; the search itself, a few dozen.
    assert v.details[STEPS]["steps"] <= 2_500 + 500, v.details[STEPS]
    assert v.details[STEPS]["cut_short"] is False


def test_smeared_balances_are_not_searched() -> None:
    """Hundreds of accounts off cannot be a few faults (each moves at most
    two accounts): the checker says so without searching."""
    h, _ = _big_history(2, smeared=300)
    v = check_ledger(h.events, realtime=False, explain_time_ms=None)
    assert v.valid is False
    (err,) = v.witness
    assert err["kind"] == "half-applied" and err["explanations"] == []
    assert "no combination of up to 6 faults explains it" in err["message"]
    assert v.details[STEPS]["steps"] == 0


def test_hub_account_search_is_bounded_and_says_when_cut_short() -> None:
    """Only a merchant is off: every payment it received is a suspect.
    Small budgets cut the search short, the verdict stays the same, and it
    says so."""
    h, _ = _big_history(3, hub_only=True)
    full = check_ledger(h.events, realtime=False, explain_time_ms=None)
    assert full.valid is False
    assert "half-applied: its debit without its credit" in full.witness[0]["explanations"][0]
    for steps in (0, 3):
        v = check_ledger(h.events, realtime=False, explain_steps=steps, explain_time_ms=None)
        assert v.valid is False
        assert [e["kind"] for e in v.witness] == [e["kind"] for e in full.witness]
        assert v.details[STEPS]["cut_short"] is True
        # The subset search may overrun by one layer (here at most 2**4 vectors).
        assert v.details[STEPS]["steps"] <= steps + 16
        assert "cut short by its budget" in v.witness[0]["message"]


@settings(max_examples=25)
@given(st.integers(0, 10_000), st.integers(0, 3), st.integers(0, 4))
def test_explanation_budget_never_changes_the_verdict(seed: int, lost: int, smeared: int) -> None:
    rng = random.Random(seed)
    h = History()
    accounts = [f"a{i}" for i in range(12)]
    balances = dict.fromkeys(accounts, 1_000)
    h.op("setup", "init", None, dict(balances))
    oks = []
    for i in range(40):
        src, dst = rng.sample(accounts, 2)
        t = T(f"t{i}", src, dst, rng.randint(1, 50))
        kind = rng.choice(["ok", "ok", "ok", "info", "fail"])
        h.op(i % 3, "transfer", t, None, kind)
        if kind == "ok":
            oks.append(t)
        if kind == "ok" or (kind == "info" and rng.random() < 0.5):
            balances[src] -= int(str(t["amount_cents"]))
            balances[dst] += int(str(t["amount_cents"]))
    for t in rng.sample(oks, min(lost, len(oks))):
        balances[str(t["from"])] += int(str(t["amount_cents"]))
        balances[str(t["to"])] -= int(str(t["amount_cents"]))
    for a in rng.sample(accounts, smeared):
        balances[a] += rng.choice([-3, 2])
    h.op("final", "read", None, balances)
    verdicts = [
        check_ledger(h.events, realtime=False, explain_steps=s, explain_time_ms=None)
        for s in (0, 5, 5_000)
    ]
    assert len({v.valid for v in verdicts}) == 1
    assert len({tuple(e["kind"] for e in v.witness or []) for v in verdicts}) == 1
    if lost and not smeared:
        assert verdicts[-1].valid is False
