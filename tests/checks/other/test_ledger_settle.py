"""Chapter 5's settlements held by the ledger checkers, and operations they do not model.

A chapter-5 history records each settlement consumer's transfer as `settle`
(escrow -> the merchant's settled twin). `d11 check ledger` and `d11 check lin
-m ledger` once ignored them and judged a valid run INVALID; now a settlement is
a transfer like the payment before it, a settlement applied twice is caught, and
an operation neither checker knows makes the verdict unknown (exit 2), never a
guess.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from checks.history import Event, HistoryError
from checks.lin import check_operations
from checks.lin.models.accounts import LedgerModel
from checks.lin.models.wallets import wallet_history
from checks.transfers import check_ledger
from tui.cli import app

OPEN = {"u1": 100, "u2": 100, "m1@pay": 0, "m1@settled": 0}


def history(*steps: tuple[str, Any, str, Any], reads: dict[str, int] | None = None) -> list[Event]:
    """(f, invoke value, completion type, completion value) one process each, then a final read."""
    out = [Event("invoke", "setup", "init", None, 0.0, 0)]
    out.append(Event("ok", "setup", "init", OPEN, 1.0, 1))
    t = 2.0
    for i, (f, value, kind, done) in enumerate(steps):
        out.append(Event("invoke", f"p{i}", f, value, t, len(out)))
        out.append(Event(kind, f"p{i}", f, done, t + 1, len(out)))
        t += 2
    out.append(Event("invoke", "reader", "read", None, t, len(out)))
    out.append(Event("ok", "reader", "read", reads, t + 1, len(out)))
    return out


PAY = ("transfer", {"id": "c-1", "from": "u1", "to": "m1@pay", "amount_cents": 40}, "ok", None)


def settle(result: str, message: str = "c-1") -> tuple[str, Any, str, Any]:
    value = {"id": message, "payment": "c-1", "merchant": "m1@pay", "amount": 40}
    return ("settle", value, "ok", {**value, "result": result})


def test_a_settled_payment_is_valid_to_both_checkers() -> None:
    h = history(PAY, settle("ok"), reads={**OPEN, "u1": 60, "m1@settled": 40})
    v = check_ledger(h)
    assert v.valid is True, v.summary
    assert v.details["transfers"]["acknowledged"] == 2  # the payment and its settlement
    wallets = wallet_history(h)
    assert check_operations(wallets.operations, LedgerModel(wallets.initial)).valid is True


def test_a_redelivery_answered_exists_is_the_same_settlement() -> None:
    h = history(PAY, settle("ok"), settle("exists"), reads={**OPEN, "u1": 60, "m1@settled": 40})
    assert check_ledger(h).valid is True


def test_a_settlement_applied_twice_is_caught() -> None:
    # A consumer without dedup: each delivery a fresh ledger transfer, both "ok".
    h = history(
        PAY, settle("ok"), settle("ok"), reads={**OPEN, "u1": 60, "m1@pay": -40, "m1@settled": 80}
    )
    v = check_ledger(h, negative_allowed=True)
    assert v.valid is False, v.summary
    assert "not-exactly-once" in v.summary


def test_a_read_no_settlement_explains_is_caught() -> None:
    h = history(PAY, settle("ok"), reads={**OPEN, "u1": 60, "m1@pay": -10, "m1@settled": 50})
    assert check_ledger(h, negative_allowed=True).valid is False


def test_a_refused_settlement_moved_nothing() -> None:
    h = history(PAY, settle("exceeds_credits"), reads={**OPEN, "u1": 60, "m1@pay": 40})
    assert check_ledger(h).valid is True
    moved = history(PAY, settle("exceeds_credits"), reads={**OPEN, "u1": 60, "m1@settled": 40})
    assert check_ledger(moved).valid is False  # refused, yet the money moved


def test_the_capstone_names_its_twin_with_a_suffix() -> None:
    opening = {"u1": 100, "m1@hz-1": 0, "m1@hz-1/settled": 0}
    value = {"id": "s", "payment": "c-1", "merchant": "m1@hz-1", "amount": 40}
    pay = {"id": "c-1", "from": "u1", "to": "m1@hz-1", "amount": 40}
    h = [
        Event("invoke", "setup", "init", None, 0.0, 0),
        Event("ok", "setup", "init", opening, 1.0, 1),
        Event("invoke", 1, "transfer", pay, 2.0, 2),
        Event("ok", 1, "transfer", None, 3.0, 3),
        Event("invoke", "c", "settle", value, 4.0, 4),
        Event("ok", "c", "settle", {**value, "result": "ok"}, 5.0, 5),
        Event("invoke", 2, "read", None, 6.0, 6),
        Event("ok", 2, "read", {**opening, "u1": 60, "m1@hz-1/settled": 40}, 7.0, 7),
    ]
    assert check_ledger(h).valid is True


def test_an_operation_neither_checker_models_gives_unknown() -> None:
    refund = ("refund", {"id": "r-1", "account": "u1", "amount": 40}, "ok", None)
    h = history(PAY, refund, reads={**OPEN, "u1": 100, "m1@pay": 40})
    v = check_ledger(h)
    assert v.valid == "unknown" and "refund x1" in v.summary, v.summary
    with pytest.raises(HistoryError, match="refund x1"):
        wallet_history(h)


def test_spans_are_not_operations() -> None:
    # Chapter 7 records one info event per span, process "trace": not a client's.
    h = history(PAY, reads={**OPEN, "u1": 60, "m1@pay": 40})
    h.insert(3, Event("info", "trace", "span", {"node": "gw-0"}, 2.5, 3))
    assert check_ledger(h).valid is True


def _write(tmp_path: Path, events: list[Event]) -> Path:
    path = tmp_path / "history.jsonl"
    rows = [
        {"type": e.type, "process": e.process, "f": e.f, "value": e.value, "time_ms": e.time_ms}
        for e in events
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_the_commands_exit_0_1_2(tmp_path: Path) -> None:
    def d11(*args: str) -> tuple[int, str]:
        r = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
        return r.exit_code, r.output

    valid = _write(tmp_path, history(PAY, settle("ok"), reads={**OPEN, "u1": 60, "m1@settled": 40}))
    assert d11("check", "ledger", str(valid))[0] == 0
    assert d11("check", "lin", "-m", "ledger", "--no-html", str(valid))[0] == 0
    twice = history(
        PAY, settle("ok"), settle("ok"), reads={**OPEN, "u1": 60, "m1@pay": -40, "m1@settled": 80}
    )
    assert d11("check", "ledger", "--allow-negative", str(_write(tmp_path, twice)))[0] == 1
    refund = ("refund", {"id": "r-1", "account": "u1", "amount": 40}, "ok", None)
    unknown = _write(tmp_path, history(PAY, refund, reads={**OPEN, "u1": 100, "m1@pay": 40}))
    code, out = d11("check", "ledger", str(unknown))
    assert code == 2 and "does not model (refund x1)" in " ".join(out.replace("│", " ").split())
    code, out = d11("check", "lin", "-m", "ledger", "--no-html", str(unknown))
    assert code == 2 and "refund x1" in out, out


def test_a_history_of_several_ledgers_is_refused_by_name() -> None:
    # The capstone records one ledger per part, each event's extra `part`.
    h = history(PAY, reads={**OPEN, "u1": 60, "m1@pay": 40})
    h[1] = Event("ok", "setup", "init", OPEN, 1.0, 1, {"part": "cells"})
    h[0] = Event("invoke", "setup", "init", None, 0.0, 0, {"part": "cells"})
    second = [
        Event("invoke", "setup-2", "init", None, 0.5, len(h), {"part": "mq"}),
        Event("ok", "setup-2", "init", OPEN, 0.6, len(h) + 1, {"part": "mq"}),
    ]
    with pytest.raises(HistoryError, match="2 parts \\(cells, mq\\)"):
        check_ledger(h + second)
    with pytest.raises(HistoryError, match="2 parts"):
        wallet_history(h + second)
