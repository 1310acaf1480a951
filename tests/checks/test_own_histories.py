"""`d11 check ...` on d11's own histories: the verdict the run printed, read back.

A reader who stores a run (`d11 run ch4 --store DIR`) and checks its
history.jsonl again must get the run's verdict: the model detected from the
operations (init/read/transfer: the ledger), the opening balances taken from
`init`, each wallet checked alone as chapter 4's own check does.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chapters.run import RunResult, simulate
from checks.history import Event, write_jsonl
from checks.lin.detect import detect_model
from tui.cli import app

runner = CliRunner()


@functools.cache
def _run(chapter: str) -> RunResult:
    return simulate(chapter, "steady", seed=1, duration_s=1.0)


def _check(tmp_path: Path, checker: str, events: list[Event], *args: str) -> dict[str, object]:
    path = tmp_path / "history.jsonl"
    write_jsonl(path, events)
    res = runner.invoke(app, ["check", checker, str(path), "--json", *args])
    verdict = json.loads(res.stdout)
    assert res.exit_code == {True: 0, False: 1}.get(verdict["valid"], 2), res.output
    return verdict


def test_init_read_transfer_is_the_ledger_model() -> None:
    detected = detect_model("jsonl", _run("ch4").history)
    assert detected is not None and detected.model == "ledger"


@pytest.mark.parametrize(
    ("chapter", "checker"),
    [("ch4", "lin"), ("ch4", "bank"), ("ch4", "ledger"), ("ch1", "bank"), ("ch5", "delivery")],
)
def test_a_stored_run_checks_as_the_run_did(tmp_path: Path, chapter: str, checker: str) -> None:
    run = _run(chapter)
    verdict = _check(tmp_path, checker, run.history)
    assert run.verdicts[checker].valid is True
    assert verdict["valid"] is True, verdict["summary"]


def test_ch4_lin_checks_the_same_wallets_and_operations(tmp_path: Path) -> None:
    run = _run("ch4")
    details = run.verdicts["lin"].details
    for model in ((), ("--model", "ledger")):
        verdict = _check(tmp_path, "lin", run.history, *model)
        got = verdict["details"]
        assert isinstance(got, dict)
        assert (got["parts"], got["operations"]) == (details["wallets"], details["operations"])


def test_a_stale_wallet_read_fails_both_the_run_check_and_the_command(tmp_path: Path) -> None:
    from chapters.ch4_paxos.wallets import check_wallets_linearizable

    run = _run("ch4")
    events = list(run.history)
    initial = next(e.value for e in events if e.f == "init" and e.type == "ok")
    paid = next(
        e.value["from"] for e in events if e.f == "transfer" and e.type == "ok"
    )  # a wallet that paid: its last full read must show less than it opened with
    last = max(i for i, e in enumerate(events) if e.f == "read" and e.type == "ok")
    e = events[last]
    stale = {**e.value, paid: initial[paid]}
    events[last] = Event(e.type, e.process, e.f, stale, e.time_ms, e.index, e.extra)
    assert check_wallets_linearizable(events, initial, shares=1).valid is False
    verdict = _check(tmp_path, "lin", events, "--explain-timeout-s", "0")
    assert verdict["valid"] is False, verdict["summary"]


def test_a_ledger_history_without_init_is_searched_whole(tmp_path: Path) -> None:
    """Deposits and full reads, no init: not d11's kind, so no wallet is left out."""
    from checks.lin.models.wallets import is_wallet_history

    h = [
        Event("invoke", 0, "deposit", {"account": "a", "amount": 5}, 0.0, 0),
        Event("ok", 0, "deposit", {"account": "a", "amount": 5}, 1.0, 1),
        Event("invoke", 1, "read", None, 2.0, 2),
        Event("ok", 1, "read", {"a": 5}, 3.0, 3),
    ]
    assert not is_wallet_history(h)
    assert _check(tmp_path, "lin", h)["valid"] is True


def test_a_ch5_history_is_a_ledger_with_the_queue_set_aside() -> None:
    """Chapter 5 records the queue's bookkeeping beside the payments: still a ledger."""
    detected = detect_model("jsonl", _run("ch5").history)
    assert detected is not None and detected.model == "ledger"
    assert "receive" in detected.reason and "set aside" in detected.reason


def test_check_lin_reads_a_run_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _run("ch5")
    write_jsonl(tmp_path / "history.jsonl", run.history)
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["check", "lin", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["details"]["model"] == "ledger"


@pytest.mark.slow
def test_the_capstone_history_is_checked_one_part_at_a_time(tmp_path: Path) -> None:
    """Three ledgers and a queue in one file: each ledger alone, the queue set aside;
    the cells part gives the run's own ch4:lin figures."""
    run = _run("double11")
    verdict = _check(tmp_path, "lin", run.history)
    assert verdict["valid"] is True, verdict["summary"]
    details = verdict["details"]
    assert isinstance(details, dict)
    assert sorted(details["parts_checked"]) == ["cells", "degrade", "rehearsal"]
    assert list(details["parts_set_aside"]) == ["mq"]
    cells = details["parts_checked"]["cells"]["details"]
    own = run.verdicts["ch4:lin"].details
    assert (cells["parts"], cells["operations"]) == (own["wallets"], own["operations"])
    one = _check(tmp_path, "lin", run.history, "--part", "degrade")["details"]
    assert isinstance(one, dict) and list(one["parts_checked"]) == ["degrade"]
    given = _check(tmp_path, "lin", run.history, "-m", "ledger")["details"]
    assert isinstance(given, dict) and list(given["parts_set_aside"]) == ["mq"]
