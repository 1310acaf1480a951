"""`d11 check bank|ledger|txn|delivery`: verdicts, JSON, exit statuses, markers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from bank_sim import simulate
from other_builder import History
from typer.testing import CliRunner

from checks.history import Event, write_jsonl
from tui.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[3]


def write(tmp_path: Path, name: str, events: list[Event]) -> Path:
    path = tmp_path / name
    write_jsonl(path, events)
    return path


def bank_files(tmp_path: Path) -> tuple[Path, Path]:
    run = simulate(3)
    good = write(tmp_path, "good.jsonl", run.history.events)
    events = list(run.history.events)
    last = events[-1]
    bad_final = {**last.value, "a": last.value["a"] - 5}
    events[-1] = Event(last.type, last.process, last.f, bad_final, last.time_ms, last.index)
    return good, write(tmp_path, "bad.jsonl", events)


@pytest.mark.parametrize("checker", ["bank", "ledger"])
def test_bank_and_ledger_exit_statuses(tmp_path: Path, checker: str) -> None:
    good, bad = bank_files(tmp_path)
    ok = runner.invoke(app, ["check", checker, str(good)])
    assert ok.exit_code == 0, ok.output
    assert "VALID" in ok.output
    res = runner.invoke(app, ["check", checker, str(bad), "--json"])
    assert res.exit_code == 1, res.output
    verdict = json.loads(res.stdout)
    assert verdict["checker"] == checker and verdict["valid"] is False
    human = runner.invoke(app, ["check", checker, str(bad)])
    assert "INVALID" in human.output and "What to look at" in human.output


def test_bank_plot_option(tmp_path: Path) -> None:
    _, bad = bank_files(tmp_path)
    png = tmp_path / "totals.png"
    res = runner.invoke(app, ["check", "bank", str(bad), "--plot", str(png), "--total", "400"])
    assert res.exit_code == 1
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_txn_and_delivery_commands(tmp_path: Path) -> None:
    h = History()
    h.invoke(0, "txn", [["append", "x", 1], ["append", "y", 1]])
    h.invoke(1, "txn", [["r", "x", None], ["r", "y", None]])
    h.ok(0, "txn", [["append", "x", 1], ["append", "y", 1]])
    h.ok(1, "txn", [["r", "x", []], ["r", "y", [1]]])
    png = tmp_path / "cycle.png"
    path = write(tmp_path, "t.jsonl", h.events)
    res = runner.invoke(app, ["check", "txn", str(path), "--plot", str(png)])
    assert res.exit_code == 1, res.output
    assert "G-single" in res.output and "snapshot isolation" in res.output
    assert png.read_bytes()[:4] == b"\x89PNG"
    d = History()
    d.op("p", "send", {"id": "m1", "key": "k"}).op("p", "commit", {"id": "m1"})
    path = write(tmp_path, "d.jsonl", d.events)
    res = runner.invoke(app, ["check", "delivery", str(path), "--group", "g", "--json"])
    assert res.exit_code == 1 and json.loads(res.stdout)["details"]["problems"] == {"lost": 1}


def test_unreadable_history_is_exit_2_without_traceback(tmp_path: Path) -> None:
    junk = tmp_path / "junk.jsonl"
    junk.write_text('{"type": "ok", "process": 0, "f": "read"}\n{"type": \n')
    for checker in ("bank", "ledger", "txn", "delivery"):
        res = runner.invoke(app, ["check", checker, str(junk)])
        assert res.exit_code == 2, res.output
        assert "Traceback" not in res.output and "error:" in res.output
    missing = runner.invoke(app, ["check", "txn", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2
    bad_txn = write(tmp_path, "bad.jsonl", History().op(0, "txn", [["frob", 1, 2]]).events)
    res = runner.invoke(app, ["check", "txn", str(bad_txn)])
    assert res.exit_code == 2 and "micro-op" in res.output


def test_unknown_verdict_is_exit_2(tmp_path: Path) -> None:
    h = History().op(0, "transfer", {"id": "t1", "from": "a", "to": "b", "amount_cents": 5})
    res = runner.invoke(app, ["check", "ledger", str(write(tmp_path, "u.jsonl", h.events))])
    assert res.exit_code == 2 and "UNKNOWN" in res.output


@pytest.mark.parametrize(
    ("path", "marker"),
    [
        ("checks/bank.py", "bank-check"),
        ("checks/transfers/search.py", "ledger-resolve"),
        ("checks/txn/graph.py", "txn-cycles"),
    ],
)
def test_book_markers_present(path: str, marker: str) -> None:
    text = (ROOT / path).read_text()
    start, end = f"# --8<-- [start:{marker}]", f"# --8<-- [end:{marker}]"
    assert text.count(start) == 1 and text.count(end) == 1
    assert text.index(start) < text.index(end)
    assert re.search(r"\S", text[text.index(start) + len(start) : text.index(end)])


def test_jepsen_edn_bank_history(tmp_path: Path) -> None:
    edn = tmp_path / "bank.edn"
    edn.write_text(
        "{:type :invoke, :f :read, :value nil, :process 0, :time 1000000}\n"
        "{:type :ok, :f :read, :value {0 50, 1 50}, :process 0, :time 2000000}\n"
        "{:type :invoke, :f :transfer, :value {:from 0, :to 1, :amount 5}, :process 1}\n"
        "{:type :ok, :f :transfer, :value {:from 0, :to 1, :amount 5}, :process 1}\n"
        "{:type :invoke, :f :read, :value nil, :process 0}\n"
        "{:type :ok, :f :read, :value {0 45, 1 50}, :process 0}\n"
    )
    res = runner.invoke(app, ["check", "bank", str(edn), "--total", "100", "--json"])
    assert res.exit_code == 1, res.output
    (bad,) = json.loads(res.stdout)["witness"]
    assert bad["index"] == 5 and bad["total"] == 95


def _many_accounts(bad: bool) -> list[Event]:
    """Fifty accounts, two full reads; with `bad`, the second read is one cent short."""
    opening = {f"acct{i:02d}": 100 for i in range(50)}
    h = History().op(0, "read", None, opening)
    h.op(0, "read", None, {**opening, "acct49": 99 if bad else 100})
    return h.events


def test_bank_summarises_a_long_account_list_but_not_the_violation(tmp_path: Path) -> None:
    path = write(tmp_path, "many.jsonl", _many_accounts(bad=False))
    out = runner.invoke(app, ["check", "bank", str(path)], terminal_width=200).output
    assert "50: acct00, acct01, acct02, acct03, acct04, …and 45 more" in out
    assert "acct20" not in out
    bad = write(tmp_path, "bad.jsonl", _many_accounts(bad=True))
    res = runner.invoke(app, ["check", "bank", str(bad)], terminal_width=200)
    assert res.exit_code == 1
    assert "4999" in res.output  # the bad read's total, whole in the evidence
    full = json.loads(runner.invoke(app, ["check", "bank", str(bad), "--json"]).stdout)
    assert len(full["details"]["accounts"]) == 50


def test_unknown_advice_fits_the_verdict(tmp_path: Path) -> None:
    path = write(tmp_path, "bank.jsonl", _many_accounts(bad=False))
    res = runner.invoke(app, ["check", "txn", str(path)], terminal_width=200)
    assert res.exit_code == 2
    assert "cycle" not in res.output and "What it needs" in res.output
    assert "f='txn'" in res.output


@pytest.mark.parametrize("checker", ["lin", "bank", "ledger", "txn", "delivery"])
def test_every_check_command_documents_its_exit_statuses(checker: str) -> None:
    out = runner.invoke(app, ["check", checker, "--help"], terminal_width=200).output
    assert "0 valid, 1 invalid, 2 unknown" in out
