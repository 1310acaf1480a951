"""`d11 run ch6` and `d11 bench degrade` from the command line."""

from __future__ import annotations

import math

from typer.testing import CliRunner

from chapters.ch6_degrade.cli import guarded_call_us
from tui.cli import app


def test_bench_degrade_refuses_a_bad_option_in_one_line() -> None:
    for args in (["--scenario", "steady"], ["--calls", "0"]):
        result = CliRunner().invoke(app, ["bench", "degrade", *args])
        assert result.exit_code == 2
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")


def test_a_guarded_call_is_timed() -> None:
    cost_us = guarded_call_us(2_000)
    assert math.isfinite(cost_us) and cost_us > 0


def test_run_ch6_reports_the_slo_verdict() -> None:
    args = ["run", "ch6", "--scenario", "overload-3x", "--duration-s", "1", "--no-store"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "slo" in result.output and "PASS" in result.output
