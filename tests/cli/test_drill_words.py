"""`d11 degrade drill` words its verdicts as the harness's reports do (the newcomer's
trial): it printed `slo: False - goodput 61% ...`, Python's repr of the verdict,
where a reader expects a word."""

from __future__ import annotations

from typer.testing import CliRunner

from tui.cli import app


def test_a_drill_s_verdicts_are_words() -> None:
    argv = ["degrade", "drill", "--scenario", "overload-3x", "--flow-qps", "30",
            "--switch", "notify=off", "--back-s", "8"]  # fmt: skip
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output  # money held: bank and ledger valid
    verdicts = {
        line.split(": ", 1)[0]: line.split(": ", 1)[1].split(" - ", 1)[0]
        for line in result.output.splitlines()
        if " - " in line
    }
    assert verdicts == {"bank": "valid", "ledger": "valid", "slo": "INVALID"}, result.output
