"""`d11 learn`: list, start, check, hint, solution, reset, status, report.

Exit statuses: 0 when the command did what was asked (`check`: the exercise
passed), 1 when a check did not pass (failed, not done yet, the learner's code
does not parse or raised), 2 for a usage error (one line on stderr).
"""

from __future__ import annotations

import difflib
import textwrap
from pathlib import Path

import typer

from learn.catalog import KINDS, Exercise, all_exercises, get_exercise, next_up
from learn.workspace import ENV_WORKSPACE, CheckResult, LearnError, Workspace, default_workspace

__all__ = ["register"]

learn_app = typer.Typer(
    help="Workshops: exercises on the real code that fail until solved, with hints.",
    no_args_is_help=True,
)

_WORKSPACE_HELP = (
    f"The learner's workspace folder (default: ${ENV_WORKSPACE}, else the workspace you are "
    "in, else ./d11-workshop)."
)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _workspace(path: Path | None) -> Workspace:
    return Workspace(path or default_workspace())


def _exercise(exercise_id: str) -> Exercise:
    try:
        return get_exercise(exercise_id)
    except KeyError:
        ids = [e.id for e in all_exercises()]
        near = difflib.get_close_matches(exercise_id, ids, n=1, cutoff=0.6)
        hint = f"did you mean {near[0]}?" if near else "d11 learn list shows them all"
        _fail(f"no exercise {exercise_id!r}: {hint}")
        raise  # unreachable: _fail exits


def _say_next(passed: set[str], current: str) -> None:
    """The `Next:` line, by the rule `status` and `report` share (`next_up`)."""
    nxt = next_up([e.id for e in all_exercises()], passed, current)
    if nxt is None:
        typer.echo("Every exercise is done. d11 learn status shows them all.")
        return
    ex = get_exercise(nxt[0])
    if nxt[1]:  # started last, not passed yet: the learner is on it
        answer = " --answer ..." if ex.needs_answer else ""
        typer.echo(f"Next:   d11 learn check {ex.id}{answer}   (you are on {ex.title!r})")
    else:
        typer.echo(f"Next:   d11 learn start {ex.id}   ({ex.title})")


def _wrap(text: str, indent: str = "  ") -> list[str]:
    out: list[str] = []
    for paragraph in textwrap.dedent(text).strip().split("\n\n"):
        if paragraph.startswith("    "):  # a command: keep it as it is
            out.extend(indent + line for line in paragraph.splitlines())
        else:
            out.extend(textwrap.wrap(" ".join(paragraph.split()), 88, initial_indent=indent,
                                     subsequent_indent=indent))  # fmt: skip
        out.append("")
    return out[:-1]


_ID_HELP = "The exercise, e.g. ch1-durable-commit (d11 learn list names them all)."

WorkspaceOption = typer.Option(
    None, "--workspace", "-w", envvar=ENV_WORKSPACE, help=_WORKSPACE_HELP
)


@learn_app.command("list")
def list_command(workspace: Path | None = WorkspaceOption) -> None:
    """Every exercise, in order, with its kind and (if you have a workspace) your progress."""
    ws = _workspace(workspace)
    passed: set[str] = set()
    current = ""
    if ws.exists():
        try:
            state = ws.load()
        except LearnError as exc:
            _fail(str(exc))
        passed, current = set(state["passed"]), state.get("current", "")
    for ex in all_exercises():
        mark = "done" if ex.id in passed else ("now" if ex.id == current else "")
        typer.echo(f"{mark:4} ch{ex.chapter}  {ex.id:22} {ex.kind:9}  {ex.title}")


@learn_app.command("start")
def start_command(
    exercise_id: str = typer.Argument(..., metavar="ID", help=_ID_HELP),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Set an exercise up in your workspace (made on first use) and say what to do."""
    ex = _exercise(exercise_id)
    ws = _workspace(workspace)
    try:
        created = not ws.exists()
        written, fresh = ws.start(ex)
    except LearnError as exc:
        _fail(str(exc))
    if created:
        typer.echo(f"Made your workspace: {ws.path} (a copy of reference/, checks/, chapters/)")
    if not fresh:
        typer.echo(f"(already started: your work is kept; d11 learn reset {ex.id} starts over)")
    typer.echo(f"{ex.id} · chapter {ex.chapter} · {ex.kind}: {ex.title}")
    typer.echo(f"  ({KINDS[ex.kind]})")
    typer.echo("")
    for line in _wrap(ex.task):
        typer.echo(line)
    typer.echo("")
    for path in written:
        where = f"{path}:{ws.region_line(ex)}" if ex.kind == "implement" else str(path)
        typer.echo(f"Edit:   {where}")
    for path in ws.backups:
        typer.echo(f"        (the file as it was: {path})")
    answer = " --answer ..." if ex.needs_answer else ""
    typer.echo(f"Check:  d11 learn check {ex.id}{answer}")
    typer.echo(f"Stuck?  d11 learn hint {ex.id}   (--level 2 and 3 say more)")


@learn_app.command("check")
def check_command(
    exercise_id: str = typer.Argument(
        None, metavar="ID", help="The exercise (default: the one you started last)."
    ),
    seeds: int = typer.Option(1, "--seeds", min=1, max=50, help="Run over this many seeds."),
    answer: str = typer.Option(
        None,
        "--answer",
        help="Your answer (find-bug, measure). Kept: a later check without --answer judges "
        "your last one again, and says so.",
    ),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Run the checkers on YOUR code in the workspace; say what broke, or what now holds.

    Exit status: 0 the exercise passed, 1 it did not (it failed, is not done
    or not started yet, or your code does not parse or raised), 2 a usage
    error (no such exercise, no workspace, a state file that cannot be read).
    """
    ws = _workspace(workspace)
    try:
        state = ws.load()
        if exercise_id is None:
            exercise_id = state.get("current")
            if not exercise_id:
                raise LearnError("no exercise started yet: d11 learn start ID")
        ex = _exercise(exercise_id)
        remembered = answer is None and state.get("answers", {}).get(ex.id) is not None
        if answer is not None:
            state.setdefault("answers", {})[ex.id] = answer
            ws.save(state)
        else:
            answer = state.get("answers", {}).get(ex.id)
        result = ws.precheck(ex) or ws.run_check(ex, seeds=seeds, answer=answer)
        if result.status != "not-started":
            ws.record(ex, result, seeds)
        state = ws.load()
        passed, current = set(state["passed"]), state.get("current", "")
    except LearnError as exc:
        _fail(str(exc))
    _print_result(ex, result, passed, answer, current, remembered)
    if seeds > 1 and ex.kind == "measure":
        typer.echo(f"(--seeds does not apply to {ex.id}: its question is about one run)")
    if not result.passed:
        raise typer.Exit(1)


def _say_about_answer(ex: Exercise, result: CheckResult, answer: str | None) -> None:
    """A find-bug check that failed on the code: was the bug's name right all the same?"""
    if ex.kind != "find-bug" or result.passed or result.status == "not-started" or not answer:
        return
    if answer.strip().lower() == ex.answer:
        typer.echo(f"Your answer {answer!r} is right; the code still fails: fix it, check again.")
    elif not result.headline.startswith("the code holds now"):  # else the name was the problem
        typer.echo(f"Your answer {answer!r} is not the bug's name, and the code still fails.")


def _print_result(
    ex: Exercise,
    result: CheckResult,
    passed: set[str],
    answer: str | None = None,
    current: str = "",
    remembered: bool = False,
) -> None:
    took = f"({result.seconds:.1f} s)" if result.seconds else ""
    if remembered and result.status != "not-started":
        # No --answer this time: the one given to an earlier check is judged again.
        typer.echo(f"(no --answer given: your last answer, {answer!r}, is judged again)")
    if result.passed:
        typer.echo(f"PASS {ex.id}: {result.headline} {took}".rstrip())
        for line in result.lines:
            typer.echo(f"  {line}" if line else "")
        typer.echo("")
        typer.echo("What now holds:")
        for line in _wrap(ex.holds):
            typer.echo(line)
        typer.echo("")
        _say_next(passed, current or ex.id)
        return
    label = {"not-done": "NOT DONE", "fail": "FAIL"}.get(result.status, "PROBLEM")
    typer.echo(f"{label} {ex.id}: {result.headline} {took}".rstrip())
    for line in result.lines:
        typer.echo(f"  {line}" if line else "")
    _say_about_answer(ex, result, answer)
    typer.echo("")
    if result.status == "not-started":
        return
    typer.echo(f"Again:  d11 learn check {ex.id}" + (" --answer ..." if ex.needs_answer else ""))
    typer.echo(f"Stuck?  d11 learn hint {ex.id}")


@learn_app.command("hint")
def hint_command(
    exercise_id: str = typer.Argument(..., metavar="ID", help=_ID_HELP),
    level: int = typer.Option(
        1, "--level", min=1, max=3, help="1 points the way; 3 nearly says it."
    ),
) -> None:
    """A hint for an exercise: level 1, 2 or 3."""
    ex = _exercise(exercise_id)
    typer.echo(f"Hint {level}/3 for {ex.id}:")
    for line in ex.hints[level - 1].splitlines():
        typer.echo(f"  {line}")
    if level < 3:
        typer.echo(f"(more: d11 learn hint {ex.id} --level {level + 1})")


@learn_app.command("solution")
def solution_command(
    exercise_id: str = typer.Argument(..., metavar="ID", help=_ID_HELP),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """The reference solution: the original code of the region, the file, or the figure."""
    ex = _exercise(exercise_id)
    ws = _workspace(workspace)
    try:
        if ex.kind == "measure":
            result = ws.run_check(ex, truth=True)
            if result.status != "pass":
                raise LearnError(f"could not measure it: {result.headline}")
            typer.echo(f"{ex.id}: {result.headline} (measured now, on the reference code)")
            typer.echo(f"  {ex.solution_note}")
            return
        text = ws.solution(ex)
    except LearnError as exc:
        _fail(str(exc))
    where = f"{ex.file}, region {ex.region}" if ex.file else ex.config_file
    if ex.kind == "find-bug":
        typer.echo(f"{ex.id}: the bug is {ex.answer}; the original code ({where}):")
    else:
        typer.echo(f"{ex.id}: the reference solution ({where}):")
    typer.echo(textwrap.dedent(text).rstrip())


@learn_app.command("reset")
def reset_command(
    exercise_id: str = typer.Argument(..., metavar="ID", help=_ID_HELP),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Put an exercise's file back as `start` wrote it (your changes there are lost)."""
    ex = _exercise(exercise_id)
    ws = _workspace(workspace)
    try:
        written = ws.reset(ex)
    except LearnError as exc:
        _fail(str(exc))
    for path in written:
        typer.echo(f"reset: {path}")
    for path in ws.backups:
        typer.echo(f"(the file as it was: {path})")


@learn_app.command("status")
def status_command(workspace: Path | None = WorkspaceOption) -> None:
    """What is done, what is next, and the command to run."""
    ws = _workspace(workspace)
    exercises = all_exercises()
    if not ws.exists():
        typer.echo(f"No workspace at {ws.path} yet.")
        typer.echo(f"Next:   d11 learn start {exercises[0].id}   ({exercises[0].title})")
        return
    try:
        state = ws.load()
    except LearnError as exc:
        _fail(str(exc))
    passed, current = set(state["passed"]), state.get("current", "")
    typer.echo(f"Workspace {ws.path}: {len(passed)}/{len(exercises)} exercises done")
    for ex in exercises:
        mark = "done" if ex.id in passed else ("now" if ex.id == current else "")
        tries = state["attempts"].get(ex.id, 0)
        tried = f"  ({tries} check{'s' if tries != 1 else ''})" if tries else ""
        typer.echo(f"  {mark:4} {ex.id:22} {ex.kind:9} {ex.title}{tried}")
    typer.echo("")
    _say_next(passed, current)


@learn_app.command("report")
def report_command(
    folder: Path = typer.Argument(..., help="A folder of learners' workspaces (one each)."),
    json_out: bool = typer.Option(False, "--json", help="One JSON object instead of a table."),
) -> None:
    """For instructors: who passed what, from a folder of learners' workspaces."""
    from learn.report import gather, render

    try:
        rows = gather(folder)
    except LearnError as exc:
        _fail(str(exc))
    for line in render(rows, [e.id for e in all_exercises()], json_out=json_out):
        typer.echo(line)


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.add_typer(learn_app, name="learn")
