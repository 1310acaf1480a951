"""`d11 test` of a broken variant whose faults miss what breaks it says so.

Before: `d11 test ch5 --variant naive-after --nemesis kill --seed 1` printed
"overall: valid" and nothing else (its kills hit only ledger replicas), which
reads as if the variant the book calls broken were fine (a newcomer's trial).
"""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tui.cli import app


def test_a_broken_variant_judged_valid_names_the_scenario_that_shows_it(tmp_path: Path) -> None:
    args = ["test", "ch5", "--variant", "naive-after", "--nemesis", "kill", "--seed", "1"]
    out = CliRunner().invoke(app, [*args, "--time", "6", "--store", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert "overall: valid" in out.output
    assert "naive-after is a broken variant" in out.output
    assert "--variant naive-after --scenario crash' (or partition)" in out.output
    fixed = ["test", "ch5", "--variant", "transactional", "--nemesis", "kill", "--seed", "1"]
    out = CliRunner().invoke(app, [*fixed, "--time", "6", "--store", str(tmp_path)])
    assert out.exit_code == 0 and "note:" not in out.output, out.output
