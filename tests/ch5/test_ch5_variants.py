"""Chapter 5's variants, each failing the way the chapter says, each caught by a
checker; the transactional fix holding under the same seeds and under the
harness's nemeses. A checker is trusted only once it has caught a real violation."""

from __future__ import annotations

import functools

import pytest
from typer.testing import CliRunner

from chapters.run import RunResult, simulate
from checks.harness.real import run_real
from checks.harness.runner import TestSpec, run_test
from reference.mq.broker import BrokerReplica
from reference.mq.producer import TransactionalProducer
from tui.cli import app

CHECKS = ("bank", "delivery", "half-messages", "settlement", "broker-audit")


@functools.cache
def _run(variant: str, scenario: str, seed: int = 1) -> RunResult:
    return simulate("ch5", scenario, variant=variant, seed=seed)


def _problems(result: RunResult, check: str) -> set[str]:
    """The kinds of violation a verdict counted (allowed duplicates left out)."""
    counts = result.verdicts[check].details["problems"]
    return {kind for kind, n in counts.items() if n and kind != "duplicate-delivery"}


@pytest.mark.parametrize(
    "scenario",
    [
        "steady",
        "crash",
        pytest.param("partition", marks=pytest.mark.slow),
        pytest.param("consumer-lag", marks=pytest.mark.slow),
        pytest.param("double11", marks=pytest.mark.slow),
    ],
)
def test_transactional_holds_in_every_scenario(scenario: str) -> None:
    res = _run("transactional", scenario)
    assert res.as_expected
    assert {n: v.valid for n, v in res.verdicts.items()} == dict.fromkeys(CHECKS, True)


def test_a_crash_is_repaired_by_the_check_back_from_the_ledger() -> None:
    res = _run("transactional", "crash")
    by_check = [e for e in res.history if e.type == "ok" and e.value.get("by") == "check"]
    assert {e.f for e in by_check} == {"commit", "rollback"}, "seed 1 exercises both answers"


def test_naive_after_loses_events_under_a_crash_and_only_the_ledger_sees_it() -> None:
    res = _run("naive-after", "crash")
    assert res.as_expected
    settlement = res.verdicts["settlement"]
    assert settlement.valid is False and _problems(res, "settlement") == {"unsettled"}
    assert "First: unsettled: account " in settlement.summary  # not a Python dict
    # The event was never sent: the delivery checker has nothing to hold it against.
    assert res.verdicts["delivery"].valid is True
    same_seed = _run("transactional", "crash")
    assert same_seed.verdicts["settlement"].valid is True


def test_naive_before_announces_declined_payments() -> None:
    res = _run("naive-before", "steady")
    assert res.as_expected
    assert _problems(res, "delivery") == {"rolled-back-delivered"}
    assert {"settled-not-paid", "over-settled"} <= _problems(res, "settlement")
    assert _run("transactional", "steady").verdicts["delivery"].valid is True


def test_no_dedup_applies_a_redelivered_message_twice() -> None:
    res = _run("no-dedup", "crash")
    assert res.as_expected
    assert _problems(res, "delivery") == {"applied-twice"}
    assert {"settled-twice", "over-settled"} <= _problems(res, "settlement")
    dups = res.verdicts["delivery"].details["problems"]["duplicate-delivery"]
    fixed = _run("transactional", "crash").verdicts["delivery"]
    assert fixed.valid is True and fixed.details["problems"]["duplicate-delivery"] > 0
    assert dups > 0


def test_a_broker_that_never_checks_back_leaves_halves_stuck(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Producers die mid-transaction and the broker never asks about their half
    messages: nobody resolves them, nobody reports them, and the checker says so."""
    monkeypatch.setattr(BrokerReplica, "_on_check_pass", lambda *a: None)
    res = simulate("ch5", "crash", seed=1, duration_s=1.0)
    halves = res.verdicts["half-messages"]
    assert halves.valid is False and halves.details["stuck"] > 0
    assert res.verdicts["settlement"].valid == "unknown"  # the broker never drained


@pytest.mark.slow
@pytest.mark.parametrize("nemesis", ["kill", "isolate-city", "loss", "partition-halves", "pause"])
def test_transactional_is_valid_under_the_harness_nemeses(nemesis: str) -> None:
    result = run_test(TestSpec(chapter="ch5", nemeses=(nemesis,), seed=2))
    assert result.valid is True, {n: v.summary for n, v in result.verdicts.items()}


def test_a_half_message_nobody_answers_for_is_set_aside_and_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Producers that never answer a check: after `check_max` checks the broker sets
    the half messages aside (RocketMQ's check-max topic) and reports each one."""
    monkeypatch.setattr(TransactionalProducer, "_on_check", lambda *a: None)
    extra = {"check_interval_ms": 2_000, "check_max": 2}
    res = simulate("ch5", "crash", seed=1, duration_s=1.0, extra=extra)
    reports = [e for e in res.history if e.f == "check-max" and e.type == "ok"]
    halves = res.verdicts["half-messages"]
    assert reports and halves.valid is True
    # Every acknowledged half left unresolved was reported; so were halves whose
    # send ended unanswered but which the broker had stored.
    unresolved = halves.details["sent"] - halves.details["resolved"]
    assert halves.details["reported"] == len(reports) >= unresolved > 0
    ops = res.deployment.broker_state().ops
    assert all(ops[e.value["id"]] == "discarded" for e in reports)
    for e in reports:  # the message trace: asked check_max times, then set aside
        steps = [step for _, _, step, _ in res.deployment.lives[e.value["id"]]]
        assert steps.count("checked") == 2 and steps[-1] == "set-aside", steps


def test_a_dead_settlement_consumers_queues_are_taken_over_before_it_is_back() -> None:
    res = _run("transactional", "crash")
    crash_ms = next(t for t, kind, _ in res.deployment.timeline if kind == "crash")
    back_ms = next(t for t, kind, _ in res.deployment.timeline if kind == "restart")
    taken = [
        e.time_ms
        for e in res.history
        if e.f == "receive"
        and e.type == "ok"
        and str(e.process).startswith("settlement-hz")
        and str(e.process).endswith(("/payments/1", "/payments/3"))
    ]
    assert taken and crash_ms < min(taken) < back_ms
    # Loyalty keeps its dedup table on each member's disk: it takes the queues over
    # by locks and claims (Shanghai's member died holding no open claim), and
    # applies nothing twice (the delivery check).
    loyalty = [
        e.time_ms for e in res.history
        if e.f == "receive" and str(e.process).startswith("loyalty-hz")
        and str(e.process).endswith(("/payments/1", "/payments/3"))
    ]  # fmt: skip
    assert loyalty and crash_ms < min(loyalty) < back_ms
    assert res.verdicts["delivery"].valid is True


@pytest.mark.slow
def test_transactional_is_valid_on_real_processes_under_kill() -> None:
    """Brokers and ledger replicas as OS processes (fsync on); producers and
    consumers hosted by the harness; a kill nemesis."""
    result = run_real(
        TestSpec(chapter="ch5", backend="process", nemeses=("kill",), time_s=3.0, seed=2)
    )
    assert result.valid is True, {n: v.summary for n, v in result.verdicts.items()}


def test_the_message_trace_tells_each_messages_life_in_order() -> None:
    """Trace events (reference/mq/trace.py) for every step; the report's sample is a
    message the check-back decided, with its check before its verdict."""
    res = _run("transactional", "crash")
    lives = res.deployment.lives
    committed = {e.value["id"] for e in res.history if e.f == "commit" and e.type == "ok"}
    for msg_id in committed:
        steps = [step for _, _, step, _ in sorted(lives[msg_id], key=lambda s: s[0])]
        assert steps[:2] == ["sent", "stored"] and "committed" in steps, (msg_id, steps)
        for step in ("delivered", "consumed", "acknowledged"):
            assert steps.count(step) >= 3, (msg_id, steps)  # one per consumer group
        assert steps.index("committed") < steps.index("delivered")
    by_check = {
        e.value["id"] for e in res.history if e.type == "ok" and e.value.get("by") == "check"
    }
    for msg_id in by_check:
        steps = [step for _, _, step, fields in lives[msg_id] if fields.get("by") != "producer"]
        verdict = next(s for s in steps if s in ("committed", "rolled-back"))
        assert steps.index("checked") < steps.index(verdict)
    sample = res.summary["message_trace"]
    assert sample["id"] in by_check and any(s[2] == "checked" for s in sample["steps"])


@pytest.mark.slow
def test_orderly_local_dedup_groups_rebalance_without_applying_twice() -> None:
    """By default (extra orderly=1) loyalty and notifications rebalance by queue
    locks and claims too: every check holds under the crash, and every group's
    members take their locks."""
    res = simulate("ch5", "crash", seed=1, extra={"orderly": 1})
    assert res.as_expected
    assert {n: v.valid for n, v in res.verdicts.items()} == dict.fromkeys(CHECKS, True)
    locks = [e for e in res.deployment.rt.telemetry.events if e.kind == "mq.lock"]
    assert {e.node for e in locks} >= {"loyalty-hz", "loyalty-sh", "notification-sz"}


@pytest.mark.slow
def test_a_planted_leak_is_judged_as_planted_not_as_the_clean_stage() -> None:
    """`d11 run ch5 --set leak=consumer` plants a shadow consumer that drops the
    load-test tag: isolation, settlement and the bank break, as expected of it."""
    runner = CliRunner()
    args = ["run", "ch5", "--duration-s", "2", "--no-store", "--set", "load_test_share=0.3"]
    out = runner.invoke(app, [*args, "--set", "leak=consumer"])
    assert out.exit_code == 0, out.output
    assert "EXPECTED FAILURE" in out.output and "UNEXPECTED" not in out.output
    clean = runner.invoke(app, args)
    assert clean.exit_code == 0 and "FAILURE" not in clean.output, clean.output


def test_a_planted_setting_makes_its_checks_may_fail_and_keeps_the_variants_own() -> None:
    from chapters import STAGES
    from checks.harness.contract import Expectation, planted_expectations

    settings = STAGES["ch5"].settings
    own = {"settlement": Expectation(False, "the variant's own", always=True)}
    out = planted_expectations(settings, {"leak": "consumer"}, own)
    assert out["settlement"] == own["settlement"]  # the variant already says it fails
    assert out["isolation"].valid is False and out["isolation"].always is False
    assert planted_expectations(settings, {"leak": "", "mutations": ""}, {}) == {}
    planted = planted_expectations(settings, {"mutations": "recommit,count-young"}, {})
    assert set(planted) == {"broker-audit", "delivery", "settlement"}


def test_a_planted_leak_without_tagged_traffic_is_refused() -> None:
    """Without tagged traffic the planted node has no tag to drop: every check
    passed on a bug that never ran (a newcomer's trial). Refused, saying what to add."""
    out = CliRunner().invoke(app, ["run", "ch5", "--no-store", "--set", "leak=consumer"])
    assert out.exit_code == 2, out.output
    assert "load_test_share" in out.output
