"""Bank and ledger checkers: planted violations caught, correct runs pass."""

from __future__ import annotations

import json
from pathlib import Path

from bank_sim import ACCOUNTS, INITIAL_CENTS, simulate
from hypothesis import given, settings
from hypothesis import strategies as st
from other_builder import History

from checks.bank import check_bank
from checks.transfers import STATES_MAX, check_ledger
from checks.verdict import Verdict

TOTAL = INITIAL_CENTS * len(ACCOUNTS)


def T(tid: str, src: str, dst: str, cents: int) -> dict[str, object]:
    return {"id": tid, "from": src, "to": dst, "amount_cents": cents}


def roundtrip(v: Verdict) -> Verdict:
    json.dumps(v.to_json())
    return v


# --- bank ----------------------------------------------------------------


def test_bank_clean_history() -> None:
    run = simulate(seed=1)
    v = roundtrip(check_bank(run.history.events, total=TOTAL))
    assert v.valid is True, v.summary
    assert v.details["complete_read_count"] >= 1


def test_bank_wrong_total_reported_with_time_and_index() -> None:
    h = History()
    h.op(0, "read", None, {"a": 50, "b": 50})
    h.op(1, "transfer", {"from": "a", "to": "b", "amount": 10})
    h.op(0, "read", None, {"a": 40, "b": 50})  # the debit without the credit
    v = roundtrip(check_bank(h.events, total=100))
    assert v.valid is False
    (bad,) = v.witness
    assert bad["kind"] == "wrong-total" and bad["index"] == 5 and bad["time_ms"] == 5.0
    assert "90, not 100" in bad["message"]
    assert "index 5" in v.summary


def test_bank_summary_counts_agree_for_one_read() -> None:
    """A run with one complete read once said 'All 1 complete reads ... in 1 reads'."""
    h = History()
    h.op(0, "read", None, {"a": 50, "b": 50})
    v = check_bank(h.events, total=100)
    assert v.valid is True
    assert v.summary == "The only complete read adds up to 100; no bad balance in 1 read."
    h.op(0, "read", None, {"a": 60, "b": 40})
    assert "All 2 complete reads add up to 100; no bad balance in 2 reads." in (
        check_bank(h.events, total=100).summary
    )


def test_bank_negative_and_unknown_accounts() -> None:
    h = History()
    h.op(0, "read", None, {"a": -10, "b": 110})
    h.op(0, "read", None, {"a": 50, "b": 50, "zz": 0})
    h.op(0, "read", None, {"a": 100})
    v = check_bank(h.events, total=100, accounts=["a", "b"])
    assert set(v.details["errors"]) == {"negative-balance", "unexpected-account", "missing-account"}
    assert check_bank(h.events[:2], total=100, negative_allowed=True).valid is True


def test_bank_total_inferred_and_unknown_without_reads() -> None:
    h = History()
    for total_b in (50, 50, 49):
        h.op(0, "read", None, {"a": 50, "b": total_b})
    v = check_bank(h.events)
    assert v.valid is False and v.details["expected_total"] == 100
    assert "most common" in v.details["total_source"]
    empty = History().op(0, "transfer", {"from": "a", "to": "b", "amount": 1})
    assert check_bank(empty.events).valid == "unknown"


def test_bank_plot_written(tmp_path: Path) -> None:
    from checks.plots import plot_bank_totals

    h = History()
    h.op(0, "read", None, {"a": 50, "b": 50}).op(0, "read", None, {"a": 40, "b": 50})
    out = plot_bank_totals(check_bank(h.events, total=100), tmp_path / "totals.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- ledger --------------------------------------------------------------


def ledger(*ops: tuple[str, str, object, object, str]) -> History:
    h = History()
    h.op("setup", "init", None, {"a": 100, "b": 100, "c": 0})
    for p, f, value, result, type_ in ops:
        h.op(p, f, value, result, type_)
    return h


def test_ledger_resolves_info_transfers() -> None:
    h = ledger((1, "transfer", T("t1", "a", "b", 10), None, "ok"))
    h.invoke(2, "transfer", T("t2", "b", "c", 5)).info(2, "transfer", None)
    h.invoke(3, "transfer", T("t3", "a", "c", 7)).info(3, "transfer", None)
    h.op(0, "read", None, {"a": 90, "b": 105, "c": 5})
    v = roundtrip(check_ledger(h.events))
    assert v.valid is True, v.summary
    res = v.details["resolution"]
    assert res["status"] == "resolved"
    assert res["applied"] == ["t2"] and res["not_applied"] == ["t3"]


def test_ledger_ambiguous_resolution_is_still_valid() -> None:
    h = ledger()
    h.invoke(2, "transfer", T("t2", "a", "b", 5)).info(2, "transfer", None)
    h.invoke(3, "transfer", T("t3", "a", "b", 5)).info(3, "transfer", None)
    h.op(0, "read", None, {"a": 95, "b": 105, "c": 0})
    v = check_ledger(h.events)
    assert v.valid is True and v.details["resolution"]["status"] == "ambiguous"
    assert v.details["resolution"]["subsets"] == 2


def test_ledger_lost_acknowledged_transfer() -> None:
    h = ledger(
        (1, "transfer", T("t1", "a", "b", 10), None, "ok"),
        (1, "transfer", T("t2", "b", "c", 30), None, "ok"),
        (0, "read", None, {"a": 90, "b": 110, "c": 0}, "ok"),
    )
    v = roundtrip(check_ledger(h.events))
    assert v.valid is False
    (err,) = v.witness
    assert err["kind"] == "not-exactly-once"
    assert "acknowledged transfer t2 (b->c 30c) was not applied" in err["explanations"]
    assert v.summary.startswith("1 ledger violation (")  # not "1 ledger violations"


def test_ledger_several_lost_transfers_explained_together() -> None:
    """Three lost payments: no one or two faults fit, three do, and the
    smallest explanation names exactly them."""
    h = ledger(
        (1, "transfer", T("t1", "a", "b", 10), None, "ok"),
        (1, "transfer", T("t2", "b", "c", 30), None, "ok"),
        (1, "transfer", T("t3", "a", "c", 7), None, "ok"),
        (1, "transfer", T("t4", "b", "a", 2), None, "ok"),
        (0, "read", None, {"a": 102, "b": 98, "c": 0}, "ok"),  # only t4 applied
    )
    v = roundtrip(check_ledger(h.events, explain_time_ms=None))
    assert v.valid is False
    (err,) = v.witness
    assert err["explanations"][0] == (
        "acknowledged transfer t1 (a->b 10c) was not applied and acknowledged transfer "
        "t2 (b->c 30c) was not applied and acknowledged transfer t3 (a->c 7c) was not applied"
    )
    assert v.details["explain"]["cut_short"] is False
    # With one or two faults allowed, it says that none fit.
    v2 = check_ledger(h.events, faults_max=2, explain_time_ms=None)
    assert v2.valid is False and v2.witness[0]["explanations"] == []
    assert "no combination of up to 2 faults explains it" in v2.witness[0]["message"]


def test_ledger_duplicate_and_failed_applied() -> None:
    dup = ledger(
        (1, "transfer", T("t1", "a", "b", 10), None, "ok"),
        (1, "transfer", T("t1", "a", "b", 10), None, "ok"),  # an idempotent retry
        (0, "read", None, {"a": 80, "b": 120, "c": 0}, "ok"),
    )
    v = check_ledger(dup.events)
    assert v.valid is False
    assert "transfer t1 (a->b 10c) was applied twice" in v.witness[0]["explanations"]
    failed = ledger(
        (1, "transfer", T("t1", "a", "c", 10), None, "fail"),
        (0, "read", None, {"a": 90, "b": 100, "c": 10}, "ok"),
    )
    v = check_ledger(failed.events)
    assert v.valid is False
    assert "failed, yet was applied" in v.witness[0]["explanations"][0]


def test_ledger_half_applied_transfer_seen_by_a_read() -> None:
    h = ledger()
    h.invoke(1, "transfer", T("t1", "a", "c", 25))
    h.op(0, "read", None, {"a": 75, "b": 100, "c": 0})  # debit visible, credit not
    h.ok(1, "transfer", None)
    h.op(0, "read", None, {"a": 75, "b": 100, "c": 25})
    for realtime in (True, False):
        v = check_ledger(h.events, realtime=realtime)
        assert v.valid is False
        (err,) = v.witness
        assert err["kind"] == "half-applied" and err["index"] == 4
        assert "t1 (a->c 25c)" in err["explanations"][0]
        assert "debit without its credit" in err["explanations"][0]


def test_ledger_stale_read_only_under_realtime() -> None:
    h = ledger((1, "transfer", T("t1", "a", "b", 10), None, "ok"))
    h.op(0, "read", None, {"a": 100, "b": 100, "c": 0})  # misses t1, acked before
    h.op(0, "read", None, {"a": 90, "b": 110, "c": 0})
    # The stale read comes after the last transfer, so it is a final read too.
    v = check_ledger(h.events)
    assert v.valid is False
    h2 = ledger()
    h2.invoke(2, "transfer", T("t9", "b", "c", 1))
    h2.add("ok", 2, "transfer", None)
    h2.invoke(1, "transfer", T("t1", "a", "b", 10)).ok(1, "transfer", None)
    h2.invoke(2, "transfer", T("t2", "b", "c", 1))
    h2.op(0, "read", None, {"a": 100, "b": 99, "c": 1})  # misses t1
    h2.ok(2, "transfer", None)
    h2.op(0, "read", None, {"a": 90, "b": 108, "c": 2})
    v = check_ledger(h2.events)
    assert v.valid is False and v.witness[0]["kind"] == "not-realtime"
    assert "is not visible" in v.witness[0]["explanations"][0]
    assert check_ledger(h2.events, realtime=False).valid is True


def test_ledger_unknown_without_final_read_or_initial() -> None:
    h = ledger((1, "transfer", T("t1", "a", "b", 10), None, "ok"))
    assert check_ledger(h.events).valid == "unknown"
    no_init = History().op(1, "transfer", T("t1", "a", "b", 10))
    assert check_ledger(no_init.events).valid == "unknown"
    assert check_ledger(no_init.events, initial={"a": 10, "b": 0}).valid == "unknown"


def test_ledger_without_final_read_says_whether_a_final_phase_went_unanswered() -> None:
    """Chapter 6's spike without controls runs a final phase whose reads time out:
    the verdict said "Add a final read phase to the workload", which a `d11 run`
    user cannot do and which was not the cause (a newcomer's trial)."""
    no_phase = ledger((1, "transfer", T("t1", "a", "b", 10), None, "ok"))
    v = check_ledger(no_phase.events)
    assert v.valid == "unknown" and "Add a final read phase" in v.summary
    unanswered = ledger((1, "transfer", T("t1", "a", "b", 10), None, "ok"))
    unanswered.invoke(0, "read").info(0, "read")
    unanswered.invoke(4, "read")  # never answered at all
    v = check_ledger(unanswered.events)
    assert v.valid == "unknown", v.summary
    assert "The final phase's 2 reads of the balances got no answer" in v.summary
    assert "Add a final read phase" not in v.summary


def test_ledger_too_many_indefinite_transfers_is_unknown() -> None:
    h = History()
    accounts = [f"acct{i}" for i in range(8)]
    h.op("setup", "init", None, dict.fromkeys(accounts, 10_000))
    for i in range(40):
        t = T(f"t{i}", accounts[i % 8], accounts[(i * 3 + 1) % 8], 1 + i * 7)
        h.invoke(i, "transfer", t).info(i, "transfer", None)
    h.op("final", "read", None, dict.fromkeys(accounts, 10_000))
    v = check_ledger(h.events)
    assert v.valid == "unknown"
    assert "too many" in v.summary and str(STATES_MAX) in v.summary


def test_ledger_id_conflict() -> None:
    h = ledger(
        (1, "transfer", T("t1", "a", "b", 10), None, "ok"),
        (1, "transfer", T("t1", "a", "b", 11), None, "ok"),
        (0, "read", None, {"a": 90, "b": 110, "c": 0}, "ok"),
    )
    v = check_ledger(h.events)
    assert v.valid is False and v.details["errors_by_kind"] == {"id-conflict": 1}


# --- lookups by id settle indefinite transfers ----------------------------


def test_ledger_lookups_resolve_what_subsets_cannot() -> None:
    """40 indefinite transfers are too many subsets to enumerate; a lookup of
    each by id settles every one, and the final read is checked exactly."""
    h = History()
    accounts = [f"acct{i}" for i in range(8)]
    h.op("setup", "init", None, dict.fromkeys(accounts, 10_000))
    transfers = [
        T(f"t{i}", accounts[i % 8], accounts[(i * 3 + 1) % 8], 1 + i * 7) for i in range(40)
    ]
    for i, t in enumerate(transfers):
        h.invoke(i, "transfer", t).info(i, "transfer", None)
    applied = {f"t{i}" for i in range(40) if i % 3 == 0}
    answers = {f"t{i}": "applied" if f"t{i}" in applied else "absent" for i in range(40)}
    h.op("lookup", "lookup-transfer", sorted(answers), answers)
    balances = dict.fromkeys(accounts, 10_000)
    for t in transfers:
        if t["id"] in applied:
            balances[str(t["from"])] -= int(str(t["amount_cents"]))
            balances[str(t["to"])] += int(str(t["amount_cents"]))
    h.op("final", "read", None, balances)
    v = roundtrip(check_ledger(h.events))
    assert v.valid is True, v.summary
    assert v.details["transfers"] == {"acknowledged": 14, "failed": 26, "indefinite": 0}
    assert v.details["lookups"] == {"answers": 40, "settled_applied": 14, "settled_absent": 26}
    assert "Lookups by id settled 40 transfers" in v.summary
    # Without the lookup the same history is "unknown" (the subset search gives up).
    no_lookup = [e for e in h.events if e.f != "lookup-transfer"]
    assert check_ledger(no_lookup).valid == "unknown"


def looked_up(final: dict[str, int]) -> History:
    """Two transfers end unknown; a lookup finds t2 applied and t3 absent."""
    h = ledger()
    h.invoke(2, "transfer", T("t2", "a", "b", 5)).info(2, "transfer", None)
    h.invoke(3, "transfer", T("t3", "a", "c", 7)).info(3, "transfer", None)
    h.op("lookup", "lookup-transfer", ["t2", "t3"], {"t2": "applied", "t3": "absent"})
    return h.op(0, "read", None, final)


def test_ledger_lookup_applied_but_balances_do_not_show_it() -> None:
    h = looked_up({"a": 100, "b": 100, "c": 0})  # t2 missing
    v = roundtrip(check_ledger(h.events, explain_time_ms=None))
    assert v.valid is False
    (err,) = v.witness
    assert err["kind"] == "not-exactly-once"
    assert "acknowledged transfer t2 (a->b 5c) was not applied" in err["explanations"]
    # Balances that show t2 and not t3 are valid; t3 as well is not.
    assert check_ledger(looked_up({"a": 95, "b": 105, "c": 0}).events).valid is True
    assert check_ledger(looked_up({"a": 88, "b": 105, "c": 7}).events).valid is False


def test_ledger_transfer_applied_after_a_lookup_fenced_it() -> None:
    h = ledger()
    h.invoke(2, "transfer", T("t2", "a", "c", 7)).info(2, "transfer", None)
    h.op("lookup", "lookup-transfer", ["t2"], {"t2": "absent"})
    h.op(0, "read", None, {"a": 93, "b": 100, "c": 7})  # t2 applied after all
    v = roundtrip(check_ledger(h.events, explain_time_ms=None))
    assert v.valid is False
    assert v.witness[0]["explanations"] == [
        "transfer t2 (a->c 7c) was fenced by a lookup that found it absent, yet was applied"
    ]
    # Without the lookup, applying it was one correct outcome among two.
    assert check_ledger([e for e in h.events if e.f != "lookup-transfer"]).valid is True


def test_ledger_lookup_contradicting_the_history() -> None:
    h = ledger((1, "transfer", T("t1", "a", "b", 10), None, "ok"))
    h.invoke(2, "transfer", T("t2", "a", "c", 5)).fail(2, "transfer", None)
    h.invoke(3, "transfer", T("t3", "b", "c", 1)).info(3, "transfer", None)
    h.op("lookup", "lookup-transfer", ["t1", "t2"], {"t1": "absent", "t2": "applied"})
    h.op("lookup", "lookup-transfer", ["t3"], {"t3": "applied"})
    h.op("lookup", "lookup-transfer", ["t3", "t9"], {"t3": "absent", "t9": "applied"})
    h.op(0, "read", None, {"a": 85, "b": 109, "c": 6})
    v = check_ledger(h.events, explain_time_ms=None)
    assert v.valid is False
    kinds = v.details["errors_by_kind"]
    assert kinds["lost"] == 1 and kinds["failed-applied"] == 1
    assert kinds["lookup-contradiction"] == 1 and kinds["phantom"] == 1


def test_ledger_lookup_applied_counts_only_for_reads_after_it() -> None:
    """A read taken before the lookup ended may miss the transfer the lookup
    finds applied: it may have been applied in between."""
    h = ledger()
    h.invoke(2, "transfer", T("t2", "a", "b", 5)).info(2, "transfer", None)
    h.op(0, "read", None, {"a": 100, "b": 100, "c": 0})  # before: t2 not yet applied
    h.op("lookup", "lookup-transfer", ["t2"], {"t2": "applied"})
    h.op(0, "read", None, {"a": 95, "b": 105, "c": 0})
    assert check_ledger(h.events).valid is True
    late = ledger()
    late.invoke(2, "transfer", T("t2", "a", "b", 5)).info(2, "transfer", None)
    late.op("lookup", "lookup-transfer", ["t2"], {"t2": "applied"})
    late.op(0, "read", None, {"a": 100, "b": 100, "c": 0})  # after: it must show
    v = check_ledger(late.events)
    assert v.valid is False and v.witness[0]["kind"] == "not-exactly-once"


def test_ledger_lookup_of_the_wrong_shape_is_refused() -> None:
    import pytest

    from checks.history import HistoryError

    h = ledger()
    h.invoke(2, "transfer", T("t2", "a", "b", 5)).info(2, "transfer", None)
    h.op("lookup", "lookup-transfer", ["t2"], {"t2": True})
    with pytest.raises(HistoryError, match="applied"):
        check_ledger(h.events)


# --- properties: simulated correct runs pass, mutations are caught --------


@settings(max_examples=40)
@given(st.integers(0, 10_000))
def test_simulated_linearizable_runs_are_valid(seed: int) -> None:
    run = simulate(seed)
    assert check_bank(run.history.events, total=TOTAL).valid is True
    v = check_ledger(run.history.events)
    assert v.valid is True, v.summary


@settings(max_examples=40)
@given(st.integers(0, 10_000), st.sampled_from(["drop", "duplicate"]))
def test_mutated_final_balances_are_caught(seed: int, mutation: str) -> None:
    # No indefinite transfers: nothing may stand in for the mutated one.
    run = simulate(seed, info_rate=0.0)
    events = list(run.history.events)
    acked = {e.value["id"] for e in events if e.f == "transfer" and e.type == "ok"}
    applied = [t for t in run.applied if t["id"] in acked]
    if not applied:
        return
    t = applied[len(applied) // 2]
    final = dict(run.balances)
    sign = -1 if mutation == "drop" else 1
    final[t["from"]] -= sign * t["amount_cents"]
    final[t["to"]] += sign * t["amount_cents"]
    last = events[-1]
    events[-1] = type(last)(last.type, last.process, last.f, final, last.time_ms, last.index)
    v = check_ledger(events)
    assert v.valid is False, v.summary
    shape = (t["from"], t["to"], t["amount_cents"])
    same = {
        e.value["id"]
        for e in events
        if e.f == "transfer"
        and e.type == "invoke"
        and (e.value["from"], e.value["to"], e.value["amount_cents"]) == shape
    }
    said = " ".join(v.witness[-1]["explanations"])
    assert any(f"{tid} (" in said for tid in same), v.witness
