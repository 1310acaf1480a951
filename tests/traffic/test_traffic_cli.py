"""`d11 traffic`: the shape in a table, both rates, clear errors."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tui.cli import app

runner = CliRunner()


def test_the_table_states_both_rates_and_a_measurement() -> None:
    result = runner.invoke(app, ["traffic", "--day-minutes", "24"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Double 11, 2019: 1,200 orders/s simulated = 544,000 orders/s at scale 1/453"
    assert "day replayed in 24 simulated minutes" in lines
    spike = next(line for line in lines if line.startswith("00:00:01"))
    assert spike.split()[1:4] == ["0:00:00.017", "1,200.0", "544,000"]
    evening = next(line for line in lines if line.startswith("20:00:00"))
    assert evening.split()[1:4] == ["0:20:00.000", "240.0", "108,800"]
    assert any(line.startswith("hottest merchant: ") for line in lines)


def test_the_same_seed_prints_the_same_measurement() -> None:
    first = runner.invoke(app, ["traffic", "--seed", "3"]).output
    assert first == runner.invoke(app, ["traffic", "--seed", "3"]).output
    assert first != runner.invoke(app, ["traffic", "--seed", "4"]).output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--year", "2021"], "no Double 11 peak on record for 2021 (known: 2019, 2020)"),
        (["--sim-peak", "0"], "invalid value for --sim-peak: must be a finite number from 0.001"),
        (["--spike", "0.5"], "invalid value for --spike: must be a finite number from 1 to"),
        (["--day-minutes", "-1"], "invalid value for --day-minutes: must be a finite"),
        (["--merchants", "0"], "invalid value for --merchants: must be a finite number from 1 to"),
    ],
)
def test_bad_options_give_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["traffic", *args])
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and message in result.output
    assert result.output.count("\n") == 1
    assert "Traceback" not in result.output
