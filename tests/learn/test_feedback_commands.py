"""What `d11 learn check` prints must hold up when a learner acts on it (a newcomer's
trial, 2026-12-07):

- its `d11 run` command runs as printed: every setting it passes is one of the
  chapter's `--set` settings (it printed `--set check_interval_ms=1000`, and
  `d11 run` answered "ch5 has no setting 'check_interval_ms'", exit 2);
- that command runs the learner's copy, from where they ran the check, and
  shows the failure it reports (pasted as printed it ran the installed code
  and passed);
- a find-bug exercise's feedback never says the bug's name (the explorer's
  headline was "a violation in 'minority-commit'", the accepted answer);
- after a pass, the exercise in progress comes next, before an unstarted one.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from chapters import get_stage
from checks.harness.contract import parse_settings
from learn.catalog import all_exercises, get_exercise, next_up
from learn.cli import _print_result
from learn.runs import run_command
from learn.workspace import CheckResult, Workspace, shown_path
from tests.learn.conftest import ROOT, check, solve


def test_every_printed_run_passes_only_the_chapters_own_settings() -> None:
    runs = [e for e in all_exercises() if e.check in ("chapter_run", "idempotent_consumer")]
    assert runs, "chapter_run exercises exist"
    for ex in runs:
        words = shlex.split(run_command(ex, seed=1))
        pairs = [words[i + 1] for i, w in enumerate(words) if w == "--set"]
        stage = get_stage(ex.params["chapter"])
        parse_settings(stage.id, stage.settings, pairs)  # StageError: not runnable as printed
        assert set(parse_settings(stage.id, stage.settings, pairs)) == set(
            ex.params.get("extra", {})
        ), ex.id


def test_the_workspace_is_named_as_seen_from_where_check_ran(tmp_path: Path) -> None:
    ws = tmp_path / "d11-workshop"
    (ws / "reference" / "mq").mkdir(parents=True)
    assert shown_path(ws, cwd=tmp_path) == "d11-workshop"
    assert shown_path(ws, cwd=ws) == "."
    assert shown_path(ws, cwd=ws / "reference" / "mq") == "../.."
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    assert shown_path(ws, cwd=elsewhere) == str(ws.resolve())  # absolute, not ../d11-workshop


@pytest.mark.slow
def test_the_printed_run_reproduces_the_failure_on_the_learners_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The planted count-young bug, unsolved: the command from the feedback, pasted in
    the folder `check` ran in, fails as the feedback says; the same run on the
    installed code passes (so it is the learner's copy that ran)."""
    monkeypatch.chdir(tmp_path)
    ws = Workspace(tmp_path / "d11-workshop", source=ROOT)
    ex = get_exercise("ch5-find-count-young")
    ws.start(ex)
    result = check(ws, ex, answer="not-it")
    assert result.status == "fail", result.headline
    said = re.search(r"^In `(.+)` \(your code\):$", result.lines[0])
    assert said is not None, result.lines[0]
    command = said.group(1)
    assert command.startswith("PYTHONPATH=d11-workshop d11 run ch5 "), command
    lost = re.search(r"delivery: (\d+) delivery violations", "\n".join(result.lines))
    assert lost is not None, result.lines
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env.pop("PYTHONPATH", None)
    pasted = subprocess.run(
        f"{command} --no-store", shell=True, cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert pasted.returncode == 1, pasted.stdout + pasted.stderr  # unexpected failure
    assert f"{lost.group(1)} delivery violations" in pasted.stdout
    assert "UNEXPECTED FAILURE" in pasted.stdout
    installed = command.removeprefix("PYTHONPATH=d11-workshop ")
    clean = subprocess.run(
        f"{installed} --no-store", shell=True, cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert clean.returncode == 0 and "delivery violations" not in clean.stdout
    assert "count-young" not in "\n".join([result.headline, *result.lines])


@pytest.mark.parametrize("ex_id", ["ch4-find-minority", "ch2-find-fence-bug"])
def test_a_find_bug_failure_keeps_its_trace_but_not_the_bugs_name(
    ws: Workspace, ex_id: str
) -> None:
    ex = get_exercise(ex_id)
    ws.start(ex)
    result = check(ws, ex, answer="bogus")
    assert result.status == "fail", result.headline
    text = "\n".join([result.headline, *result.lines])
    assert ex.answer not in text.lower(), text
    if ex.check == "explore":  # the trace is kept
        assert "The shortest schedule that gets there" in text
        assert "n1, n2, n3" in text  # the scenario, by its shape


@pytest.mark.slow  # the explorer's whole space on the fixed code: 13 s at load 8
def test_a_fixed_bug_without_its_name_is_not_told_the_name(ws: Workspace) -> None:
    ex = get_exercise("ch4-find-minority")
    ws.start(ex)
    solve(ws, ex)
    result = check(ws, ex)
    assert result.status == "fail" and "name the bug too" in result.headline
    assert ex.answer not in "\n".join(result.lines)


def test_after_a_pass_the_exercise_in_progress_comes_next(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """ch5-dedup started last (`status`: "now"), then ch2-find-fence-bug checked by its id
    and passed: next is ch5-dedup, not the first exercise never started."""
    done, now = get_exercise("ch2-find-fence-bug"), get_exercise("ch5-dedup")
    passed = {done.id}
    _print_result(done, CheckResult("pass", "it holds", [], 0.5), passed, done.answer, now.id)
    out = capsys.readouterr().out
    assert f"Next:   d11 learn check {now.id}   (you are on {now.title!r})" in out, out
    _print_result(done, CheckResult("pass", "it holds", [], 0.5), passed, done.answer, done.id)
    out = capsys.readouterr().out  # nothing in progress: the next one not passed
    after = next_up([e.id for e in all_exercises()], passed, done.id)
    assert after is not None and not after[1]
    assert f"Next:   d11 learn start {after[0]} " in out, out
