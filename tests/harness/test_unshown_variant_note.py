"""`d11 test` of a broken variant whose faults miss what breaks it says so.

Before: `d11 test ch5 --variant naive-after --nemesis kill --seed 1` printed
"overall: valid" and nothing else (its kills hit only ledger replicas), which
reads as if the variant the book calls broken were fine (a newcomer's trial).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tui.cli import app


# About 6 s of wall (two chapter runs): run by name in .ci/run.
@pytest.mark.slow
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


def test_an_expected_failure_replayed_says_so_and_names_its_variant() -> None:
    """`d11 run ch5 --scenario crash --variant naive-after --seed 3` printed EXPECTED
    FAILURE; its `d11 replay` printed "overall: INVALID" under the title "ch5-crash ·
    seed 3", the variant nowhere (a newcomer's trial)."""
    from types import SimpleNamespace
    from typing import cast

    from checks.harness.cli import _expected_failure_note, _title
    from checks.harness.runner import TestResult, TestSpec
    from checks.verdict import Verdict

    spec = SimpleNamespace(name="ch5-crash", scenario="crash", variant="naive-after", seed=3)
    assert _title(cast(TestSpec, spec)) == "ch5-crash · variant naive-after · seed 3"
    verdicts = {"bank": Verdict("bank", True, "ok"), "settlement": Verdict("settlement", False, "")}
    judged = {"bank": SimpleNamespace(outcome="pass")}
    judged["settlement"] = SimpleNamespace(outcome="expected-failure")
    result = cast(TestResult, SimpleNamespace(spec=spec, verdicts=verdicts, judged=judged))
    note = _expected_failure_note(result)
    assert note is not None and "every invalid check (settlement)" in note
    assert "expects of the variant naive-after" in note
    judged["settlement"] = SimpleNamespace(outcome="unexpected-failure")
    assert _expected_failure_note(result) is None
    plain = SimpleNamespace(name="ch5-default-payments-kill", scenario="", variant="", seed=1)
    assert _title(cast(TestSpec, plain)) == "ch5-default-payments-kill · seed 1"
