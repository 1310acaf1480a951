"""The capstone, `d11 run double11`: chapters 4 to 7 on one simulator through one night,
chapters 4 and 5 as one payment pipeline (`chapters/capstone/pipeline.py`).

One cheap run in the default suite (2 s of traffic at 1/4000 scale, ~10 s on
2 cores); the full-size night for every city lost, and the harness's
nemeses on three seeds, run with `-m slow`.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from chapters.capstone.door import door_view
from chapters.capstone.pipeline import producer_of
from chapters.capstone.stage import CapstoneDeployment
from chapters.ch4_paxos.stage import PaxosDeployment
from chapters.run import RunResult, simulate
from checks.harness.runner import TestSpec, run_test
from checks.history import Event
from checks.verdict import Verdict
from reference.ledger.directory import transfer_id
from reference.ledger.service import LedgerReplica
from tests.chapters.conftest import not_valid

CHAPTER_CHECKS = {
    "ch4": {"bank", "ledger", "lin", "lost-payments", "double-entry"},
    "ch5": {"bank", "delivery", "half-messages", "settlement", "broker-audit", "isolation"},
    # At the pipeline's door (chapters/capstone/door.py), and chapter 6's own system's.
    "ch6": {"slo", "ledger", "core-bank", "core-ledger", "core-slo"},
    "ch7": {"bank", "ledger", "isolation"},
}
CHEAP = {"duration_s": 2.0, "scale": 1 / 4000}


@pytest.fixture(scope="module")
def night() -> RunResult:
    # Seed 3: its pipeline still retries payments in the final phase (three), which
    # the over-time table's test needs; seed 2's retried none once a follower's
    # promise re-armed its election timer (b11a1ef).
    return simulate("double11", "double11", seed=3, **CHEAP)


def _all_checks() -> set[str]:
    # The capstone's own: the elastic cell's handovers, the pipeline end to end.
    own = {"double11:one-owner", "double11:pipeline"}
    return own | {f"{ch}:{c}" for ch, names in CHAPTER_CHECKS.items() for c in names}


def test_the_night_keeps_every_checker_of_every_chapter_green(night: RunResult) -> None:
    assert set(night.verdicts) == _all_checks()
    bad = not_valid(night.verdicts)
    assert not bad, bad
    s = night.summary
    lost = s["city_lost"]
    # Hangzhou, the GZone's city, lost 10 ms after midnight: the standby GZone in
    # Shanghai moves its uid range, which pays again well within a second.
    assert lost["city"] == "hangzhou" and lost["after_midnight_ms"] == 10.0
    assert lost["cells_recovered_after_ms"] is not None
    assert lost["cells_recovered_after_ms"] < 1_000.0
    # Why the seeds say sub-100 ms and chapter 4 says ~640 ms: the reroute itself
    # (rules to every surviving gateway) is tens of ms; detection is chapter 4's
    # 400 ms of silence; the rest is clients retrying into the new route.
    assert lost["routing_ms"] < 100.0 < lost["detected_after_ms"] <= 450.0
    assert lost["rerouted_after_ms"] < lost["cells_recovered_after_ms"]
    lag = s["consumer_lag"]
    assert lag["max_lag"] > 0 and lag["drained_after_ms"] is not None
    # The stalled members came back (a paused node is "paused", not "up": the
    # first capstone never resumed them, and the group drained only when a
    # rebalance gave their queues to a member restarted in the final phase).
    dep = night.deployment
    assert isinstance(dep, CapstoneDeployment)
    assert lag["paused"] and all(dep.rt.status(n) == "up" for n in lag["paused"])
    # The drill stalls the shadow twin with it (the load test's lane sees the lag
    # production sees), and times its drain the same way.
    shadow = lag["shadow"]
    assert shadow["group"] == "pt_settlement" and shadow["paused"], shadow
    assert shadow["paused_at_ms"] == lag["paused_at_ms"], shadow
    assert shadow["max_lag"] > 0 and shadow["drained_after_ms"] is not None, shadow
    assert all(dep.rt.status(n) == "up" for n in shadow["paused"])
    assert s["load_test"]["load_test_payments"] > 0 and s["load_test"]["violations"] == {}
    # The queue is no system of its own: the cells' payments pass through it.
    assert set(s["parts"]) == {"cells", "degrade", "rehearsal"}
    assert all(p["ok"] > 0 for p in s["parts"].values()), s["parts"]
    pipe = s["pipeline"]
    # Every payment that passed the door reached a payment service and was settled;
    # those the gateways refused at once (a range in handover) did neither.
    door = {"handover", "flow:pay", "misrouted"}
    refused = [
        e for e in dep.parts["cells"].history
        if e.f == "transfer" and e.type == "fail" and e.extra.get("error") in door
    ]  # fmt: skip
    assert pipe["payments"] == pipe["settled"] > 0, pipe
    assert pipe["payments"] + len(refused) == s["parts"]["cells"]["payments"], pipe
    assert night.verdicts["double11:pipeline"].details["paid"] == pipe["settled"]
    # Chapter 7's tagged traffic through the same pipeline, in its shadow lane.
    shadow = pipe["load_test"]
    assert shadow["payments"] == shadow["settled"] == shadow["load_test_payments"] > 0, shadow
    assert shadow["tagged_spans"] > 0 and shadow["violations"] == {}, shadow
    assert night.verdicts["double11:pipeline"].details["load_test_settled"] == shadow["settled"]


def test_a_broken_part_is_caught_through_the_merged_history(night: RunResult) -> None:
    """The merged history goes back to each part's checkers intact: one final read
    of chapter 4 made wrong fails chapter 4's bank check, and chapter 5's (the one
    pipeline's final read is both parts'), and nothing of chapters 6 and 7."""
    dep = night.deployment
    assert isinstance(dep, CapstoneDeployment)
    history = list(dep.history)
    at = next(
        i
        for i, e in enumerate(history)
        if e.extra.get("part") == "cells" and e.f == "read" and e.type == "ok"
        and e.extra.get("final")
    )  # fmt: skip
    read = history[at]
    account = sorted(read.value)[0]
    history[at] = dataclasses.replace(read, value={**read.value, account: read.value[account] + 1})
    verdicts = dep.run_checks(history)
    assert verdicts["ch4:bank"].valid is False and verdicts["ch5:bank"].valid is False
    pipeline = ("ch4:", "ch5:")
    others = {name: v for name, v in verdicts.items() if not name.startswith(pipeline)}
    assert all(v.valid is True for v in others.values()), not_valid(others)


def test_the_elastic_cell_takes_a_range_for_the_peak_and_gives_it_back(night: RunResult) -> None:
    """Out before midnight, back after the peak, between live cells both ways (el-1 in
    Shanghai, the range Shenzhen's: neither is the city lost), each handover
    released by the old owner, not forced."""
    moves = night.summary["elastic"]["moves"]
    assert [m["to"] for m in moves] == ["el-1", "sz-1"]
    assert all(m["how"] == ["released"] for m in moves), moves
    assert all(0 < m["handover_ms"] < 1_000.0 for m in moves), moves
    verdict = night.verdicts["double11:one-owner"]
    assert verdict.valid is True and verdict.details["releases"] == 2 * moves[0]["buckets"]


def test_each_payment_is_the_local_transaction_of_its_cells_producer(night: RunResult) -> None:
    """Every payment a producer committed is in its payer's group's ledger, and so is
    its settlement; after the city is lost, a standby cell's producer pays into the
    lost cell's group (the range moved, its data did not)."""
    dep = night.deployment
    assert isinstance(dep, CapstoneDeployment)
    cells = dep.parts["cells"]
    assert isinstance(cells, PaxosDeployment) and cells.directory is not None
    applied: dict[str, set[int]] = {}
    for cell, plan in cells.groups.items():
        node = next(
            dep.rt.node(r)  # type: ignore[attr-defined]
            for r in plan.replicas
            if dep.rt.status(r) == "up"
        )
        assert isinstance(node, LedgerReplica)
        applied[cell] = {t.id for t in node.machine.ledger.snapshot().transfers}
    committed = [
        e for e in dep.parts["mq"].history
        if e.f == "commit" and e.type == "ok" and e.value.get("by") != "check"
    ]  # fmt: skip
    payers = {
        str(e.value["id"]): str(e.value["from"])
        for e in cells.history  # a load-test payment's shadow twins share its group
        if e.f in ("transfer", "load-test:transfer") and e.type == "invoke"
    }
    elsewhere = 0
    for e in committed:
        pid = str(e.value["id"])
        group = cells.directory.group_of(payers[pid])
        assert transfer_id(pid) in applied[group], pid
        assert transfer_id(f"settle:{pid}") in applied[group], pid
        producer = str(e.process).split("#", 1)[0]
        elsewhere += producer != producer_of(group)
    assert committed and elsewhere > 0, "no payment was served outside its payer's cell"


def test_a_payment_left_unsettled_is_caught_end_to_end(night: RunResult) -> None:
    """Drop one paid payment's settlements from the history: chapter 4's ledger
    (its escrow's final balance no longer adds up) and the pipeline check fail."""
    dep = night.deployment
    assert isinstance(dep, CapstoneDeployment)
    history = list(dep.history)
    pid = next(e.value["payment"] for e in history if e.f == "settle" and e.type == "ok")
    kept = [e for e in history if not (e.f == "settle" and e.value.get("payment") == pid)]
    verdicts = dep.run_checks(kept)
    failed = {name for name, v in verdicts.items() if v.valid is not True}
    assert failed == {"ch4:ledger", "double11:pipeline"}, failed
    assert verdicts["double11:pipeline"].details["problems"] == {"paid-not-settled": 1}


@pytest.mark.slow
def test_two_owners_of_a_range_at_once_are_caught() -> None:
    """The planted bug: the new owner serves the range at once ("no-wait"), while the
    old one still has payments of it in flight. At the peak (the move back) that is
    caught; the money checks stay green (the ledger's log dedups), only the owner
    check sees it. The same night with the drain is valid."""
    bad = simulate("double11", "double11", seed=1, variant="two-owners")
    verdict = bad.verdicts["double11:one-owner"]
    assert verdict.valid is False, verdict.summary
    assert bad.judged["double11:one-owner"].ok  # the variant's expected failure
    assert "two owners at once" in verdict.details["violations"][0]
    good = simulate("double11", "double11", seed=1)
    assert all(v.valid is True for v in good.verdicts.values()), not_valid(good.verdicts)
    assert [m["how"] for m in good.summary["elastic"]["moves"]] == [["released"], ["released"]]


@pytest.mark.slow
def test_a_cheap_seed_under_the_harness_kill_nemesis() -> None:
    """`d11 test double11 --nemesis kill`, small: the harness kills a node of the
    merged deployment (this seed: the GZone), every chapter's checker valid."""
    spec = TestSpec(chapter="double11", nemeses=("kill",), time_s=2.0, seed=1, scale=1 / 4000)
    result = run_test(spec)
    assert [a.op for a in result.schedule.actions] == ["crash", "restart"]
    assert set(result.verdicts) == _all_checks()
    assert result.valid is True, not_valid(result.verdicts)


@pytest.mark.slow
def test_a_notification_in_its_retry_delay_does_not_hold_the_final_read() -> None:
    """Seed 6: a notification fails three times (2% a handling), its third retry due
    a minute on. The final read waited for the retry topic's lag, which counted it,
    and never came (ch4:ledger, ch5:settlement unknown; ch5:delivery effect-lost).
    The read now waits for what is due; the message in its delay is in flight.
    (The night as it was found: before the pipeline carried load-test traffic,
    whose tagging draws change which notification fails.)"""
    spec = TestSpec(
        chapter="double11", nemeses=("kill",), time_s=2.0, seed=6, scale=1 / 4000,
        extra={"load_test_share": 0.0},
    )  # fmt: skip
    result = run_test(spec)
    bad = not_valid(result.verdicts)
    assert not bad, bad
    delivery = result.verdicts["ch5:delivery"]
    assert delivery.details["problems"].get("retry-pending") == 1, delivery.summary


def test_an_unknown_lost_city_is_refused() -> None:
    from chapters import get_stage
    from chapters.stage import StageError

    with pytest.raises(StageError, match="lost_city"):
        get_stage("double11").options(extra={"lost_city": "beijing"})


@pytest.mark.slow
@pytest.mark.parametrize("city", ["hangzhou", "shanghai", "shenzhen"])
def test_any_city_may_be_lost_at_the_peak(city: str) -> None:
    result = simulate("double11", "double11", seed=1, extra={"lost_city": city})
    bad = not_valid(result.verdicts)
    assert not bad, bad
    recovered_ms = result.summary["city_lost"]["cells_recovered_after_ms"]
    assert recovered_ms is not None and recovered_ms < 1_000.0


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_capstone_is_valid_under_the_harness_nemeses(seed: int) -> None:
    spec = TestSpec(chapter="double11", nemeses=("kill", "partition-halves"), time_s=4.0, seed=seed)
    result = run_test(spec)
    assert result.valid is True, not_valid(result.verdicts)


def test_a_steady_rate_asked_of_the_night_is_each_parts() -> None:
    """`--rate` (a real backend's default of 60/s) reaches every part, capped at the
    share of its own capacity its chapter alone is offered; the night's parts ran
    at their simulator rates on real processes before (~1,400 payments/s in all)."""
    from chapters import get_stage
    from chapters.common import STEADY_SHARE, PaymentDeployment
    from reference.runtime.sim import SimRuntime

    stage = get_stage("double11")
    opts = stage.options(seed=1, duration_s=1.0, extra={"steady_tps": 60.0})
    rt = SimRuntime(topology=stage.topology(opts), seed=1)
    dep = stage.build(rt, opts)
    assert isinstance(dep, CapstoneDeployment)
    dep.start_traffic(0.0, 1_000.0)
    rates = {name: part.options.extra["steady_tps"] for name, part in dep.parts.items()}
    for name, part in dep.parts.items():
        assert isinstance(part, PaymentDeployment)
        assert rates[name] == min(60.0, STEADY_SHARE * part.capacity_tps()), rates
    assert rates["cells"] == rates["rehearsal"] == 60.0 > rates["degrade"], rates


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_capstone_runs_on_real_processes() -> None:
    """Every part on OS processes over TCP (chapter 5's producers and consumers, and
    every client, in the harness's process): every chapter's checker valid."""
    result = run_test(TestSpec(chapter="double11", time_s=2.0, seed=1, backend="process"))
    assert set(result.verdicts) == _all_checks()
    assert result.valid is True, not_valid(result.verdicts)


def test_the_rehearsals_night_drills_judge_the_night(night: RunResult) -> None:
    """`d11 rehearse --night`: the failover passes on routing under 100 ms (the seeds'
    claim), the lag drill on a drain; a slower routing fails the first."""
    from chapters.ch7_rehearsal.rehearsal import drills_of_the_night

    failover, lag, elastic = drills_of_the_night(night.summary, night.verdicts)
    assert failover["passed"] and lag["passed"], (failover, lag)
    assert elastic["passed"] and elastic["cost"]["saving"] == 0.885, elastic
    assert "handed over to el-1 in" in elastic["what"]
    assert "rerouted" in failover["what"] and "after resuming" in lag["what"]
    slow = {**night.summary, "city_lost": {**night.summary["city_lost"], "routing_ms": 150.0}}
    assert drills_of_the_night(slow, night.verdicts)[0]["passed"] is False


def test_the_headline_latency_covers_the_payments_it_counts(night: RunResult) -> None:
    """The headline's 'p50 .. p99 .. p999 per payment (N acknowledged in time)' is
    over exactly the night table's ok payments, and summary.json's real rates are
    the headline's (a trial, seed 1 at 1/400: p99 4,041 ms over the merged
    history's 3,237 oks beside '2,746 acknowledged in time', with a deadline of
    1,000 ms; offered_real_tps 198,123 against a printed 182,152)."""
    from chapters.metrics import ok_latencies_ms, percentile

    dep = night.deployment
    assert isinstance(dep, CapstoneDeployment)
    s = night.summary
    rows = [dep.parts[name] for name in s["parts"]]
    ok_ms = sorted(ms for part in rows for ms in ok_latencies_ms(part))
    assert len(ok_ms) == s["ok"] == sum(p["ok"] for p in s["parts"].values())
    for p, key in ((50, "payment_p50_ms"), (99, "payment_p99_ms"), (99.9, "payment_p999_ms")):
        assert s[key] == round(percentile(ok_ms, p), 3), key
    assert s["payment_p999_ms"] <= s["deadline_ms"]  # an ok is in time by construction
    assert s["payment_p99_ms"] <= max(p["payment_p99_ms"] for p in s["parts"].values())
    assert s["offered_real_tps"] == round(s["offered_tps"] / s["scale"])
    assert s["goodput_real_tps"] == round(s["goodput_tps"] / s["scale"])


# -- chapter 6's checks at the pipeline's door (chapters/capstone/door.py) ---------------
# `ch6:slo` and `ch6:ledger` judge the cell gateways' controls from the night's
# history; each is trusted only once it catches a violation planted at the door
# (edits of the cheap night's history, and one slow run with a starving door).
def _dep(night: RunResult) -> CapstoneDeployment:
    dep = night.deployment
    assert isinstance(dep, CapstoneDeployment)
    return dep


def test_the_door_checks_read_the_pipelines_payments_and_the_nights_midnight(
    night: RunResult,
) -> None:
    dep = _dep(night)
    slo = night.verdicts["ch6:slo"]
    assert slo.valid is True and slo.summary.startswith("at the pipeline's door"), slo.summary
    # The pipeline's capacity (its ledger groups'), the night's midnight for the
    # duration: chapter 6's own spike marks, the door's under their own names.
    assert slo.details["capacity_tps"] == dep.parts["cells"].capacity_tps()
    midnight = dep.midnight_ms
    assert slo.details["spike_ms"] == [midnight, midnight + 2_000.0]
    view = door_view(dep.history)
    parts = {e.extra.get("part") for e in view if e.f == "transfer"}
    assert parts == {"cells"}, parts  # not chapter 6's nor chapter 7's own clients
    cells_ops = sum(
        1 for e in dep.parts["cells"].history if e.f == "transfer" and e.type == "invoke"
    )
    assert sum(1 for e in view if e.f == "transfer" and e.type == "invoke") == cells_ops
    # Chapter 6's own system is judged too, by its own checkers, under ch6:core-.
    assert night.verdicts["ch6:core-slo"].valid is True
    assert "through the spike" in night.verdicts["ch6:core-slo"].summary
    assert night.verdicts["ch6:ledger"].valid is True


def test_a_door_that_starts_work_after_its_deadline_is_caught(night: RunResult) -> None:
    """The door's sidecar records a payment it handed on after its deadline
    (`serves`); one such record in the pipeline's part fails the door's SLO, and
    nothing else (chapter 6's own system is not the door)."""
    dep = _dep(night)
    history = list(dep.history)
    at = next(i for i, e in enumerate(history) if e.time_ms > dep.midnight_ms)
    value = {"req_id": "cells-client-1:9:1"}
    late = Event("info", "nemesis", "degrade:served-late", value, history[at].time_ms, 0,
                 {"part": "cells"})  # fmt: skip
    history.insert(at, late)
    history = [dataclasses.replace(e, index=i) for i, e in enumerate(history)]
    verdicts = dep.run_checks(history)
    assert verdicts["ch6:slo"].valid is False, verdicts["ch6:slo"].summary
    assert "1 requests served after their deadline" in verdicts["ch6:slo"].summary
    failed = {n for n, v in verdicts.items() if v.valid is not True}
    assert failed == {"ch6:slo"}, failed


def test_a_door_that_refuses_a_payment_and_passes_it_on_is_caught(night: RunResult) -> None:
    """A payment its user was told the door refused (flow:pay), which a payment
    service then took: `ch6:ledger` names it."""
    dep = _dep(night)
    history = list(dep.history)
    reached = {str(e.value["id"]) for e in history if e.f == "commit" and e.type == "ok"}
    asked = Counter(  # the final phase asks a timed-out payment again, by its id
        e.value["id"] for e in history
        if e.extra.get("part") == "cells" and e.f == "transfer" and e.type == "invoke"
    )  # fmt: skip
    reached = {pid for pid in reached if asked[pid] == 1}
    at = next(
        i for i, e in enumerate(history)
        if e.extra.get("part") == "cells" and e.f == "transfer" and e.type == "ok"
        and e.value["id"] in reached
    )  # fmt: skip
    ok = history[at]
    history[at] = dataclasses.replace(ok, type="fail", extra={**ok.extra, "error": "flow:pay"})
    verdict = dep.run_checks(history)["ch6:ledger"]
    assert verdict.valid is False, verdict.summary
    assert verdict.details["reached"] == 1 and verdict.details["refused"] == 1
    assert verdict.witness and verdict.witness[0]["payment"] == ok.value["id"]


@pytest.mark.slow
def test_a_door_whose_rule_starves_the_spike_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real planted door: each cell gateway's flow rule sized to 4 payments/s
    (the spike offers ~40/s to four gateways). It refuses most of the spike at
    once: the door's SLO fails on goodput; what it refused did nothing."""
    from chapters.capstone import parts

    plain = parts.entry_controls
    monkeypatch.setattr(parts, "entry_controls", lambda: plain(gateway_capacity_tps=4.0))
    result = simulate("double11", "double11", seed=2, **CHEAP)
    slo = result.verdicts["ch6:slo"]
    assert slo.valid is False and "goodput" in slo.summary, slo.summary
    assert slo.details["goodput_share"] < 0.9
    refusals = result.verdicts["ch6:ledger"]
    assert refusals.valid is True and refusals.details["by_reason"]["flow:pay"] > 0, refusals


def test_the_over_time_table_and_the_replies_cover_the_headlines_payments(
    night: RunResult,
) -> None:
    """The over-time table counts exactly the payments the headline counts (each
    system's in its own traffic window), and the per-reply percentiles are over
    the replies its clients got then: not the merged history's window, the longest
    system's, over which the pipeline's final-phase retries were payments."""
    from chapters.metrics import BUCKET_MS, percentile

    dep = _dep(night)
    s = night.summary
    series = s["series"]
    per_bucket = BUCKET_MS / 1000.0
    assert round(sum(series["offered_tps"]) * per_bucket) == s["payments"]
    assert round(sum(series["goodput_tps"]) * per_bucket) <= s["ok"]
    replies = []
    for name in s["parts"]:
        part = dep.parts[name]
        start_ms, end_ms = part.traffic_window  # type: ignore[attr-defined]
        until_ms = end_ms + part.deadline_ms
        replies += [r["latency_ms"] for r in part.responses if start_ms <= r["time_ms"] < until_ms]  # type: ignore[attr-defined]
    assert s["replies"] == len(replies) > 0
    assert s["p99_ms"] == round(percentile(sorted(replies), 99), 3)
    # The pipeline's final phase (its retries and lookups by id) is not in the table.
    final_ms = next(t for t, kind, _ in dep.parts["cells"].timeline if kind == "final-phase")
    retried = [
        e for e in dep.parts["cells"].history
        if e.f == "transfer" and e.type == "invoke" and e.time_ms >= final_ms
    ]  # fmt: skip
    merged = sum(
        1 for e in dep.history
        if e.f == "transfer" and e.type == "invoke"
        and dep.traffic_window[0] <= e.time_ms < dep.traffic_window[1]
    )  # fmt: skip
    assert retried and merged > s["payments"], (len(retried), merged)


def test_a_door_with_nothing_acknowledged_is_not_judged_valid(night: RunResult) -> None:
    """Chapter 6's checker reads no acknowledged payment as a p99 of 0 ms. A run with
    no spike marked whose every pipeline payment timed out before the final phase
    (d11 test double11 --backend process on a host at load 25 did) says 'could not
    tell' at the door (with the night's spike, goodput 0% fails), and a record
    of chapter 6's own system forwarded as the capstone's own is not the door's."""
    dep = _dep(night)
    final_ms = next(t for t, kind, _ in dep.parts["cells"].timeline if kind == "final-phase")
    history = [
        dataclasses.replace(e, type="info", extra={**e.extra, "error": "deadline"})
        if e.extra.get("part") == "cells" and e.f == "transfer" and e.type == "ok"
        and e.time_ms < final_ms + dep.deadline_ms
        else e
        for e in dep.history
    ]  # fmt: skip
    assert dep.run_checks(history)["ch6:slo"].valid is False  # the spike: goodput 0%
    steady = [e for e in history if e.f not in ("door:spike-start", "door:spike-end")]
    slo = dep.run_checks(steady)["ch6:slo"]  # no spike marked: a harness run's
    assert slo.valid == "unknown" and "no payment was acknowledged" in slo.summary, slo.summary
    # Chapter 6's own gateway's record, as the capstone's own (a real backend's way):
    # not the door's; the same from a cells client's request is.
    theirs = Event("info", "nemesis", "degrade:served-late", {"req_id": "client-1:3:1"},
                   dep.midnight_ms, 0, {"part": ""})  # fmt: skip
    mine = dataclasses.replace(theirs, value={"req_id": "cells-client-1:3:1"})
    assert door_view([theirs]) == [] and len(door_view([mine])) == 1


def test_the_parts_judged_side_by_side_say_what_they_say_one_after_the_other(
    night: RunResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The night's checks run in jobs (its own, then one per part), forked side by
    side on a long history: the same verdicts, word for word, as in one process."""
    import checks.parallel

    dep = night.deployment
    assert isinstance(dep, CapstoneDeployment)
    monkeypatch.setattr(checks.parallel, "PARALLEL_MIN_EVENTS", 10**9)  # never forks
    alone = dep.run_checks()
    monkeypatch.setattr(checks.parallel, "PARALLEL_MIN_EVENTS", 0)  # always forks
    assert checks.parallel.forks(len(dep.history), 1 + len(dep.parts))
    forked = dep.run_checks()
    assert list(forked) == list(alone) == list(night.verdicts)

    def said(v: Verdict) -> tuple[object, ...]:
        details = {k: x for k, x in v.details.items() if k != "elapsed_s"}  # wall time
        return v.valid, v.summary, details

    assert {n: said(v) for n, v in forked.items()} == {n: said(v) for n, v in alone.items()}
