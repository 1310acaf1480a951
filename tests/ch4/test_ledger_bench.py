"""`d11 bench ledger`: it runs, it prints its table, and it refuses bad options."""

from __future__ import annotations

from typer.testing import CliRunner

from reference.ledger.bench import render, run_ledger_bench
from tui.cli import app


def test_bench_rows_and_speedup_line() -> None:
    rows = run_ledger_bench(clients=32, seconds=0.3)
    assert [r.mode for r in rows] == ["unloaded", "no batching", "batching"]
    unloaded, single, batched = rows
    assert single.per_slot == 1.0  # batching off: one command per slot
    assert batched.per_slot > 1.0
    assert 1.0 <= unloaded.p50_rtts < 1.5  # a commit is one cross-city round trip
    text = render(rows, 0.3)
    assert text.splitlines()[-1].startswith("batching_speedup: ")


def test_bench_cli_refuses_bad_options() -> None:
    result = CliRunner().invoke(app, ["bench", "ledger", "--clients", "0"])
    assert result.exit_code == 2
    assert "invalid value for --clients: must be a finite number from 1 to 4,096" in result.output
