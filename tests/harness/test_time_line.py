"""`d11 test` and `d11 run` end with where the wall time went."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from checks.harness.timing import Stopwatch, time_line
from tui.cli import app

LINE = re.compile(r"^time: simulation \d+\.\d s, checks \d+\.\d s, store \d+\.\d s$")


def test_the_line_names_each_phase_in_order() -> None:
    watch = Stopwatch()
    with watch.phase("simulation"):
        pass
    watch.add("checks", 6.24)
    watch.add("store", 0.4)
    watch.add("checks", 1.0)  # a phase that runs twice adds up
    line = time_line(watch.phases_s)
    assert line.startswith("time: simulation 0.0 s, ")
    assert line.endswith("checks 7.2 s, store 0.4 s")


# Slow: the store's HTML report draws its plots. The book's first `d11 test`
# transcript shows the line in the default run.
@pytest.mark.slow
def test_d11_test_ends_with_the_split(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["test", "ch1", "--nemesis", "kill", "--time", "1", "--store", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert LINE.match(result.output.strip().splitlines()[-1]), result.output


def test_d11_run_ends_with_the_split() -> None:
    args = ["run", "ch1", "--scenario", "crash", "--seed", "3", "--duration-s", "1", "--no-store"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert LINE.match(result.output.strip().splitlines()[-1]), result.output


def test_store_work_done_while_forked_checks_ran_is_the_checks_time() -> None:
    """The store's figures gathered from 10 s to 14 s while checkers ran until 13 s:
    3 s are the checks' (the store work hid behind them), 1 s the store's."""
    watch = Stopwatch()
    watch.add("checks", 0.5)
    watch.add("store", 4.0)
    watch.hand_over("store", "checks", (10.0, 14.0), until_s=13.0)
    assert watch.phases_s == {"checks": 3.5, "store": 1.0}
    watch.hand_over("store", "checks", (20.0, 21.0), until_s=19.0)  # they had ended before
    assert watch.phases_s == {"checks": 3.5, "store": 1.0}
