"""A find-bug exercise gives nothing away: no comment in the learner's copy names the bug,
and an answer kept from an earlier check is said to be judged again."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from learn.catalog import all_exercises, get_exercise
from learn.cli import register
from learn.regions import redact_bug_names
from learn.workspace import Workspace
from tests.learn.conftest import ROOT


@pytest.fixture
def d11() -> typer.Typer:
    app = typer.Typer()
    register(app, typer.Typer())
    return app


def _run(app: typer.Typer, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout


def test_a_check_without_answer_says_it_judges_the_last_one(
    d11: typer.Typer, tmp_path: Path
) -> None:
    ws = str(tmp_path / "ws")
    ex = get_exercise("ch5-find-recommit")
    assert _run(d11, "learn", "start", ex.id, "--workspace", ws)[0] == 0
    code, out = _run(d11, "learn", "check", ex.id, "--answer", "double-commit", "--workspace", ws)
    assert code == 1 and "your last answer" not in out
    code, out = _run(d11, "learn", "check", ex.id, "--workspace", ws)
    assert code == 1
    assert "(no --answer given: your last answer, 'double-commit', is judged again)" in out
    assert "Your answer 'double-commit' is not the bug's name" in out


@pytest.mark.parametrize(
    "ex_id", [e.id for e in all_exercises() if e.kind == "find-bug" and e.chapter == 5]
)
def test_the_learners_copy_does_not_name_the_bug(ws: Workspace, ex_id: str) -> None:
    ex = get_exercise(ex_id)
    ws.start(ex)
    copy = (ws.path / ex.file).read_text()
    source = (ROOT / ex.file).read_text()
    assert "mutation:" in source and "issue 8158" in source  # the reference keeps its notes
    assert "mutation:" not in copy and "issue 8158" not in copy and "stored the message" not in copy
    assert f"# {ex.answer}" not in copy and "issue" not in " ".join(ex.task.split())
    compile(copy, ex.file, "exec")


def test_only_comments_are_taken_out() -> None:
    text = (
        "        if x:  # keep this (mutation: gone -- away)\n"
        "            y = 1  # mutation: gone -- counted\n"
        "        # mutation: gone -- a pass cut short keeps the old cursor,\n"
        "        # and the next one asks again.\n"
        "        # A comment that stays.\n"
        '        z = "gone" in m  # it says why (Tracker issue 12: the story)\n'
    )
    assert redact_bug_names(text) == (
        "        if x:  # keep this\n"
        "            y = 1\n"
        "        # A comment that stays.\n"
        '        z = "gone" in m  # it says why\n'
    )
