"""The exit statuses a command's --help states are the ones it returns, and the
small messages a newcomer meets first say what is true."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tui.cli import app


def d11(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.output


def help_text(*command: str) -> str:
    code, out = d11(*command, "--help")
    assert code == 0, out
    return " ".join(out.replace("│", " ").split())  # rich wraps lines inside its boxes


def test_zoo_exits_0_when_caught_and_2_for_an_unknown_mutation() -> None:
    said = help_text("zoo")
    assert "0 every mutation caught" in said and "2 an unknown mutation name" in said
    code, out = d11("zoo", "minority-commit", "--no-trace")
    assert code == 0 and out.splitlines()[-1] == "caught: 1/1", out
    code, out = d11("zoo", "no-such-bug")
    assert code == 2 and "error: unknown mutation no-such-bug" in out


def test_hunt_exits_0_when_it_finds_no_failure(tmp_path: Path) -> None:
    assert "0 no failure found within --budget runs" in help_text("hunt")
    code, out = d11("hunt", "ch1", "--budget", "1", "--time", "0.3", "--store", str(tmp_path))
    assert code == 0 and "no failure found in 1 runs" in out, out


def test_learn_check_exits_2_for_no_such_exercise(tmp_path: Path) -> None:
    assert "2 a usage error (no such exercise" in help_text("learn", "check")
    code, out = d11("learn", "check", "no-such-exercise", "--workspace", str(tmp_path / "w"))
    assert code == 2 and out.startswith("error: "), out


@pytest.mark.parametrize("command", ["run", "test", "hunt", "tui"])
def test_a_negative_seed_is_refused(command: str) -> None:
    code, out = d11(command, "ch1", "--seed", "-1")
    assert code == 2
    assert "--seed: must be a whole number from 0 to 2**63 - 1, not -1" in out


def test_replay_of_a_folder_that_is_no_store_folder_says_so(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a run\n")
    code, out = d11("replay", str(tmp_path))
    assert code == 2
    assert f"error: {tmp_path}: not a store folder (no test.json)" in " ".join(out.split())


def _ctrl_c(*_: object, **__: object) -> None:
    raise KeyboardInterrupt


def test_ctrl_c_says_what_was_kept_and_exits_130(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import chapters.run
    import checks.harness.cli

    monkeypatch.setattr(chapters.run, "simulate", _ctrl_c)
    monkeypatch.setattr(checks.harness.cli, "_run", _ctrl_c)
    for args in (("run", "ch1", "--no-store"), ("test", "ch1", "--store", str(tmp_path))):
        result = CliRunner().invoke(app, list(args))
        assert result.exit_code == 130, (args, result.output)
        assert result.stderr == "interrupted: nothing was stored\n", args
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "args", [("rehearse",), ("bench", "rehearsal"), ("bench", "degrade"), ("degrade", "drill")]
)
def test_a_negative_seed_is_refused_by_chapters_6_and_7_too(args: tuple[str, ...]) -> None:
    code, out = d11(*args, "--seed", "-1")
    assert code == 2 and "--seed: must be a whole number from 0 to 2**63 - 1, not -1" in out


def test_drill_names_a_bad_scenario_first() -> None:
    code, out = d11("degrade", "drill", "--scenario", "nope")
    assert code == 2 and "ch6 has no scenario 'nope'" in out


def test_option_names_are_whole_in_80_column_help() -> None:
    """At 80 columns rich cut `--batch-max-commands` to `--batch-max-comm…`;
    scripts call options by name, so the help shows every name whole."""
    result = CliRunner().invoke(app, ["bench", "process", "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80
    for name in ("--batch-max-commands", "--snapshot-every-slots", "--compare-pgbench"):
        assert name in result.output, result.output
