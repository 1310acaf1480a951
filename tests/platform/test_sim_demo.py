"""`d11 sim demo` and `d11 bench sim`, run through the CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from reference.sim.demo import run_demo
from tui.cli import app


def test_demo_story_crash_partition_heal_and_convergence() -> None:
    result = run_demo(seed=7)
    kinds = [e.kind for e in result.events]
    for kind in ("crash", "restart", "recovered", "partition", "heal", "silent", "heard_again"):
        assert kind in kinds, kind
    views = [e for e in result.events if e.kind == "views"]
    inside = views[1]["totals"]
    assert inside["hz-a"] != inside["sh-d"]  # the partition split the views
    assert len(set(result.totals.values())) == 1  # after healing, everyone agrees
    assert result.by_class["cross_city"].dropped > 0
    assert run_demo(seed=7).digest == result.digest != run_demo(seed=8).digest


def test_d11_sim_demo_prints_a_timeline_and_summary() -> None:
    out = CliRunner().invoke(app, ["sim", "demo", "--seed", "7"])
    assert out.exit_code == 0, out.output
    for text in ("crash", "partition", "heal", "cross_city", "converged", "trace digest"):
        assert text in out.output


def test_d11_bench_sim_small_ends_with_the_ratio_line() -> None:
    out = CliRunner().invoke(
        app, ["bench", "sim", "--nodes", "6", "--messages", "3000", "--rounds", "1"]
    )
    assert out.exit_code == 0, out.output
    assert re.fullmatch(r"ratio_vs_simpy: \d+\.\d\d", out.output.strip().splitlines()[-1])


def test_bad_options_are_one_line_errors_not_tracebacks() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "d11"), "bench", "sim", "--nodes", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--nodes" in done.stderr
