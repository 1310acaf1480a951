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
