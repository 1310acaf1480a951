"""The runner: start, check, hint, solution, reset, status, report; a badly edited workspace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from learn.catalog import all_exercises, get_exercise
from learn.cli import register
from learn.regions import RegionError, blank_region, find_region, replace_region
from learn.workspace import STATE_FILE, Workspace
from tests.learn.conftest import ROOT, check

FIRST = all_exercises()[0].id


@pytest.fixture
def d11() -> typer.Typer:
    app = typer.Typer()
    register(app, typer.Typer())
    return app


def run(app: typer.Typer, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_regions_blank_and_restore() -> None:
    text = "def f():\n    # --8<-- [start:body]\n    return 1\n    # --8<-- [end:body]\n"
    blanked = blank_region(text, "body", "ex-1", "Return one.")
    assert "return 1" not in blanked and "d11 learn: ex-1 is not done yet" in blanked
    compile(blanked, "f.py", "exec")  # the stub keeps the file valid Python
    assert replace_region(blanked, "body", "    return 1\n") == text
    with pytest.raises(RegionError):
        find_region(text, "missing")


def test_the_cli_round_trip(d11: typer.Typer, tmp_path: Path) -> None:
    ws = str(tmp_path / "ws")
    code, out, _ = run(d11, "learn", "status", "--workspace", ws)
    assert code == 0 and f"d11 learn start {FIRST}" in out
    code, out, _ = run(d11, "learn", "start", FIRST, "--workspace", ws)
    assert code == 0 and "Edit:" in out and f"d11 learn check {FIRST}" in out
    code, out, _ = run(d11, "learn", "check", "--workspace", ws)
    assert code == 1 and "NOT DONE" in out and "still raises" in out
    code, out, _ = run(d11, "learn", "hint", FIRST, "--level", "2")
    assert code == 0 and "Hint 2/3" in out
    code, out, _ = run(d11, "learn", "solution", FIRST, "--workspace", ws)
    assert code == 0 and "ctx.disk.sync()" in out
    code, out, _ = run(d11, "learn", "status", "--workspace", ws)
    assert code == 0 and "now" in out and f"d11 learn check {FIRST}" in out
    code, out, _ = run(d11, "learn", "list", "--workspace", ws)
    assert code == 0 and len(out.splitlines()) == len(all_exercises())


def test_start_and_check_name_the_same_line_the_blank(d11: typer.Typer, tmp_path: Path) -> None:
    """`start` said the region's first line, the check the `raise` line: one blank, two
    places. Both name the line to replace, the raise the blank holds."""
    import re

    ws = str(tmp_path / "ws")
    _, out, _ = run(d11, "learn", "start", FIRST, "--workspace", ws)
    edit = re.search(r"Edit:\s+(\S+):(\d+)", out)
    assert edit is not None, out
    path, line = Path(edit.group(1)), int(edit.group(2))
    assert "raise NotImplementedError" in path.read_text().splitlines()[line - 1]
    code, out, _ = run(d11, "learn", "check", "--workspace", ws)
    ex = get_exercise(FIRST)
    assert code == 1 and f"the blank at {ex.file}:{line} still raises" in out, out


def test_usage_errors_are_one_line(d11: typer.Typer, tmp_path: Path) -> None:
    for args in (
        ("learn", "start", "no-such-exercise"),
        ("learn", "check", "--workspace", str(tmp_path / "none")),
        ("learn", "report", str(tmp_path / "none")),
    ):
        code, _out, err = run(d11, *args)
        assert code == 2, args
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err


def test_a_badly_edited_workspace_gets_a_clear_message(ws: Workspace) -> None:
    ex = get_exercise("ch2-empty-rollback")
    ws.start(ex)
    target = ws.path / ex.file
    # A blank left blank: no run at all, the line of the blank.
    result = check(ws, ex)
    assert result.status == "not-done" and f"{ex.file}:" in result.headline
    # A syntax error: the file and line, no traceback.
    good = replace_region(target.read_text(), ex.region, "        return True\n")
    target.write_text(good.replace("return True\n", "return True +\n", 1))
    result = check(ws, ex)
    assert result.status == "syntax" and result.headline.startswith(f"{ex.file}:")
    # A deleted file: how to get it back.
    target.unlink()
    result = check(ws, ex)
    assert result.status == "missing" and f"d11 learn reset {ex.id}" in result.headline
    ws.reset(ex)
    assert check(ws, ex).status == "not-done"
    # A package folder gone (the workspace half deleted): which, and what to do.
    (ws.path / "reference").rename(ws.path / "elsewhere")
    result = check(ws, ex)
    assert result.status == "missing" and result.headline.startswith("reference/ is missing")


def test_code_that_raises_is_reported_in_one_line(ws: Workspace) -> None:
    ex = get_exercise("ch2-empty-rollback")
    ws.start(ex)
    target = ws.path / ex.file
    target.write_text(replace_region(target.read_text(), ex.region, "        return 1 / 0\n"))
    result = check(ws, ex)
    assert result.status == "crash"
    assert "ZeroDivisionError" in result.headline and "reference/tcc/fence.py:" in result.headline
    assert "Traceback" not in result.headline


def test_an_unknown_state_file_is_named(ws: Workspace) -> None:
    ws.start(get_exercise(FIRST))
    ws.state_path.write_text("{not json")
    with pytest.raises(Exception, match="unreadable"):
        ws.load()


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "unreadable"),
        (b'{"version": 1, "passed": {', "unreadable"),  # truncated
        (b"\xff\xfe", "unreadable"),  # not UTF-8
        (b"[1, 2]", "not a d11 learn state file"),
        (b'{"version": 1, "passed": [], "started": "x"}', "damaged"),
        (b'{"version": 1, "current": 3}', "damaged"),
    ],
)
def test_a_damaged_state_file_is_one_line_and_exit_2(
    d11: typer.Typer, tmp_path: Path, content: bytes, words: str
) -> None:
    ws = str(tmp_path / "ws")
    assert run(d11, "learn", "start", FIRST, "--workspace", ws)[0] == 0
    assert run(d11, "learn", "start", "ch1-single-point", "--workspace", ws)[0] == 0
    (tmp_path / "ws" / STATE_FILE).write_bytes(content)
    for command in ("status", "list", "check"):
        code, _out, err = run(d11, "learn", command, "--workspace", ws)
        assert code == 2, (command, err)
        assert err.startswith("error: ") and words in err, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert f"copy {STATE_FILE}.bak over it" in err, "the last good state is offered"
    code, _out, err = run(d11, "learn", "start", FIRST, "--workspace", ws)
    assert code == 2 and words in err


def test_a_deleted_state_file_keeps_the_learners_code(ws: Workspace) -> None:
    ex = get_exercise("ch2-empty-rollback")
    ws.start(ex)
    target = ws.path / ex.file
    target.write_text(target.read_text() + "# my work\n")
    ws.state_path.unlink()
    ws.start(get_exercise(FIRST))  # makes the record again, copies nothing over
    assert target.read_text().endswith("# my work\n")


def test_a_misspelt_exercise_is_guessed(d11: typer.Typer) -> None:
    code, _out, err = run(d11, "learn", "hint", FIRST[:-1])
    assert code == 2 and err.strip() == f"error: no exercise {FIRST[:-1]!r}: did you mean {FIRST}?"
    code, _out, err = run(d11, "learn", "start", "zz-nothing-like-it")
    assert code == 2 and "d11 learn list shows them all" in err


def test_report_summarises_a_folder_of_workspaces(d11: typer.Typer, tmp_path: Path) -> None:
    ids = [e.id for e in all_exercises()]
    for name, passed in (("ana", ids[:3]), ("bo", ids[:1]), ("cy", [])):
        folder = tmp_path / "class" / name
        folder.mkdir(parents=True)
        state = {
            "version": 1,
            "current": ids[len(passed)],
            "started": {},
            "passed": {i: {"at": "2026-11-11T00:00:00Z", "seeds": 1} for i in passed},
            "attempts": {**{i: 2 for i in passed}, ids[len(passed)]: 5},
        }
        (folder / STATE_FILE).write_text(json.dumps(state))
    (tmp_path / "class" / "dee").mkdir()
    (tmp_path / "class" / "dee" / STATE_FILE).write_text("garbage")
    code, out, _ = run(d11, "learn", "report", str(tmp_path / "class"))
    assert code == 0
    lines = out.splitlines()
    assert any(line.startswith("ana") and f" 3/{len(ids)}" in line for line in lines), out
    assert any(line.startswith("ana") and line.endswith(f"{ids[3]} (5)") for line in lines), out
    assert any(line.startswith("dee") and "unreadable" in line for line in lines), out
    assert f"  {ids[0]:22} 2/4" in out
    code, out, _ = run(d11, "learn", "report", str(tmp_path / "class"), "--json")
    data = json.loads(out)
    assert data["passed_by"][ids[0]] == 2 and len(data["learners"]) == 4


def test_the_workspace_is_a_copy(ws: Workspace) -> None:
    ex = get_exercise(FIRST)
    ws.start(ex)
    assert "not done yet" not in (ROOT / ex.file).read_text(), "the source is never touched"
    assert "not done yet" in (ws.path / ex.file).read_text()


def test_exercises_in_one_file_keep_each_others_work(ws: Workspace) -> None:
    first, second = get_exercise("ch4-accept-sync"), get_exercise("ch4-lease-skew")
    assert first.file == second.file
    ws.start(first)
    target = ws.path / first.file
    mine = (
        "        self.sync(ctx)  # my work\n"
        "        ctx.send(src, Accepted(msg.ballot, msg.slot, True, self.promised))\n"
    )
    target.write_text(replace_region(target.read_text(), first.region, mine))
    ws.start(second)
    text = target.read_text()
    assert "# my work" in text and "d11 learn: ch4-lease-skew is not done yet" in text
    ws.start(first)  # started already: nothing is rewritten
    assert "# my work" in target.read_text()
    ws.reset(first)
    text = target.read_text()
    assert "# my work" not in text and "d11 learn: ch4-accept-sync is not done yet" in text
    assert "d11 learn: ch4-lease-skew is not done yet" in text, "reset touches its own region"


def test_a_file_without_its_markers_is_reset_from_the_source(ws: Workspace) -> None:
    ex = get_exercise("ch2-empty-rollback")
    ws.start(ex)
    target = ws.path / ex.file
    target.write_text("# the learner rewrote everything\n")
    ws.reset(ex)
    assert "is not done yet" in target.read_text()
    assert (
        target.with_name(target.name + ".bak").read_text() == "# the learner rewrote everything\n"
    )


def test_code_that_never_returns_is_stopped(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("D11_LEARN_TIMEOUT_S", "3")
    ex = get_exercise("ch2-empty-rollback")
    ws.start(ex)
    target = ws.path / ex.file
    target.write_text(
        replace_region(target.read_text(), ex.region, "        while True:\n            pass\n")
    )
    result = check(ws, ex)
    assert result.status == "timeout" and "a loop that never ends" in result.headline


def test_the_book_links_every_exercise() -> None:
    """Each exercise's chapter page shows its start command; the workshop plan names it."""
    docs = ROOT / "book" / "docs"
    plan = (docs / "workshop.md").read_text()
    for ex in all_exercises():
        assert ex.page, ex.id
        assert f"d11 learn start {ex.id}" in (docs / ex.page).read_text(), (ex.id, ex.page)
        assert f"`{ex.id}`" in plan, f"workshop.md's plan does not name {ex.id}"


def test_seeds_on_a_measure_is_said_not_to_apply(d11: typer.Typer, tmp_path: Path) -> None:
    ws = str(tmp_path / "ws")
    assert run(d11, "learn", "start", "ch1-single-point", "--workspace", ws)[0] == 0
    code, out, _ = run(d11, "learn", "check", "--seeds", "3", "--workspace", ws)
    assert code == 1 and "--seeds does not apply to ch1-single-point" in out


def test_a_right_answer_on_unfixed_code_is_acknowledged(d11: typer.Typer, tmp_path: Path) -> None:
    """find-bug: the bug's name right, the code not fixed yet: say both, and still exit 1."""
    ws = str(tmp_path / "ws")
    ex = get_exercise("ch5-find-recommit")
    assert run(d11, "learn", "start", ex.id, "--workspace", ws)[0] == 0
    code, out, _ = run(d11, "learn", "check", ex.id, "--answer", ex.answer, "--workspace", ws)
    assert code == 1 and f"Your answer {ex.answer!r} is right; the code still fails" in out
    code, out, _ = run(d11, "learn", "check", ex.id, "--answer", "nope", "--workspace", ws)
    assert code == 1 and "Your answer 'nope' is not the bug's name, and the code" in out


def test_a_rewritten_file_is_kept_but_never_the_solution(ws: Workspace) -> None:
    """ch2's fence region holds the empty rollback: starting the fence's find-bug rewrites the
    learner's unfinished rollback, so the file as it was is kept beside it."""
    first, second = get_exercise("ch2-empty-rollback"), get_exercise("ch2-find-fence-bug")
    ws.start(first)
    target = ws.path / first.file
    backup = target.with_name(target.name + ".bak")
    assert not backup.exists(), "a fresh start keeps no copy (it would be the solution)"
    mine = "        return 1  # mine\n"
    target.write_text(replace_region(target.read_text(), first.region, mine))
    ws.start(second)
    assert "# mine" not in target.read_text() and "# mine" in backup.read_text()
    assert ws.backups == [backup]


def test_inside_a_workspace_it_is_the_default(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A learner who went into the workspace (or one of its folders) to edit finds it again,
    and `start` there does not make a workspace inside the workspace."""
    from learn.workspace import ENV_WORKSPACE, default_workspace

    monkeypatch.delenv(ENV_WORKSPACE, raising=False)
    ws.start(get_exercise(FIRST))
    assert default_workspace(ws.path) == ws.path
    assert default_workspace(ws.path / "reference" / "sqlstore") == ws.path
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert default_workspace(elsewhere) == elsewhere.resolve() / "d11-workshop"


def test_pythonpath_into_a_workspace_is_refused(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`PYTHONPATH=.` (for the replay command) left exported: the learner's copy must not be
    taken for the installed code (the solution would be their own code)."""
    from importlib.machinery import ModuleSpec

    import learn.workspace as workspace

    ws.start(get_exercise(FIRST))

    def from_the_workspace(name: str) -> ModuleSpec:
        spec = ModuleSpec(name, None, is_package=True)
        spec.submodule_search_locations = [str(ws.path / name)]
        return spec

    monkeypatch.setattr(workspace, "find_spec", from_the_workspace)
    with pytest.raises(workspace.LearnError, match="unset PYTHONPATH"):
        workspace.source_root()
