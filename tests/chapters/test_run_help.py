"""`d11 run --help` lists every chapter and variant the registry has; `d11 --help` stays cheap."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from chapters import STAGES
from tui.cli import app


def test_run_help_lists_every_chapter_variant_and_scenario() -> None:
    result = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # rich wraps lines inside its boxes
    stages = STAGES.chapters()
    assert {"ch1", "ch2", "ch3", "ch4"} <= {s.id for s in stages}
    for stage in stages:
        assert f"{stage.id}" in text
        for alias in stage.aliases:
            assert alias in text, alias
        for variant in stage.variants:
            assert variant in text, (stage.id, variant)
        for scenario in stage.scenarios:
            assert scenario in text, (stage.id, scenario)
    assert "ch4: 3-replicas (default) | arbiter" in text


def test_root_help_loads_no_chapter() -> None:
    """The chapter lists are built only for `d11 run --help`: every other call stays fast.

    (A chapter that registers a command of its own imports its package: that
    one is its cost, so the probe looks at chapters 1 and 4, which do not.)
    """
    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from tui.cli import app\n"
        "for args in (['--help'], ['bench', '--help']):\n"
        "    assert CliRunner().invoke(app, args).exit_code == 0\n"
        "print(sorted(m for m in sys.modules if m.startswith(('chapters.ch1', 'chapters.ch4'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_bench_cells_reports_the_mixed_traffic_beside_the_single_cell_figure() -> None:
    result = CliRunner().invoke(app, ["bench", "cells", "--duration-s", "0.3"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("single-cell traffic: ")
    mixed_at = next(i for i, line in enumerate(lines) if line.startswith("mixed traffic: "))
    assert "2% of payments to a user of another cell" in lines[mixed_at]
    assert sum(line.startswith("cells ") for line in lines) == 10
    mixed = float(lines[-2].removeprefix("scaling_efficiency_16_mixed: "))
    alone = float(lines[-1].removeprefix("scaling_efficiency_16: "))
    assert alone > 0.99, "single-cell traffic: cells share nothing"
    assert 0.5 < mixed < alone, "cross-cell payments and forwarding cost something"


def test_bench_cells_refuses_a_share_outside_0_to_1() -> None:
    result = CliRunner().invoke(app, ["bench", "cells", "--cross-cell", "1.5"])
    assert result.exit_code == 2
    assert "a share from 0 to 1" in result.output
