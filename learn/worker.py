"""The subprocess `d11 learn check` starts: one exercise's check on the learner's code.

Run as `python -m learn.worker ID [--seeds N] [--answer X] [--truth] [--here PATH]` with the
workspace first on PYTHONPATH and as the working directory. It prints one
line, `RESULT_PREFIX` followed by JSON, whatever happens: a check's outcome,
or what went wrong with the learner's code, in words (never a traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from learn.catalog import Exercise
    from learn.checks import Outcome

RESULT_PREFIX = "@@d11-learn-result@@ "
PACKAGES: tuple[str, ...] = ("reference", "checks", "chapters")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="learn.worker")
    parser.add_argument("exercise")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--answer", default=None)
    parser.add_argument("--truth", action="store_true")
    parser.add_argument("--here", default=".")  # the workspace, from where the learner is
    args = parser.parse_args(argv)
    workspace = Path.cwd().resolve()
    with contextlib.redirect_stdout(sys.stderr):  # the learner's prints stay out of the result
        result = run(args.exercise, workspace, args.seeds, args.answer, args.truth, args.here)
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    return 0


def _use_workspace_stages() -> None:
    """This process's top: the harness runs the workspace's chapters (its own copies)."""
    from chapters import get_stage
    from checks.harness.contract import use_stages

    use_stages(get_stage)


def run(
    exercise_id: str,
    workspace: Path,
    seeds: int,
    answer: str | None,
    truth: bool,
    here: str = ".",
) -> dict[str, object]:
    from learn.catalog import get_exercise
    from learn.checks import CHECKS, CheckRequest

    ex = get_exercise(exercise_id)
    try:
        misplaced = _misplaced_packages(workspace)
        if misplaced:
            return _problem("setup", f"{misplaced} was not imported from {workspace}")
        _use_workspace_stages()
        outcome = CHECKS[ex.check](ex, CheckRequest(seeds, answer, truth, here))
    except NotImplementedError as exc:
        where = _where(exc, workspace)
        other = re.match(r"d11 learn: (\S+) is not done yet", str(exc))
        if other and other.group(1) != ex.id:  # a blank of another exercise, still open
            return _problem(
                "not-done",
                f"the code it runs reaches the blank of {other.group(1)}, still open at {where}: "
                f"do that one first (d11 learn start {other.group(1)}), or paste its "
                f"reference (d11 learn solution {other.group(1)})",
            )
        if other:
            return _problem("not-done", f"{exc} ({where})")
        return _problem("crash", f"your code raised NotImplementedError: {exc} ({where})")
    except SyntaxError as exc:
        return _problem("syntax", f"{_rel(exc.filename, workspace)}:{exc.lineno}: {exc.msg}")
    except ImportError as exc:
        where = _where(exc, workspace)
        return _problem("import", f"{type(exc).__name__}: {exc} ({where})")
    except RecursionError:
        return _problem("crash", "your code recursed without end (RecursionError)")
    except Exception as exc:  # the learner's code may raise anything: say where, in one line
        where = _where(exc, workspace)
        return _problem("crash", f"your code raised {type(exc).__name__}: {exc} ({where})")
    if outcome.passed and ex.kind == "find-bug" and not truth:
        outcome = _name_check(ex, answer, outcome)
    if not outcome.passed and ex.kind == "find-bug":
        outcome = _without_the_name(ex, outcome)
    return {"status": "pass" if outcome.passed else "fail", **outcome.to_json()}


def _name_check(ex: Exercise, answer: str | None, outcome: Outcome) -> Outcome:
    from learn.checks import Outcome

    given = (answer or "").strip().lower()
    if given == ex.answer:
        return outcome
    if not given:
        return Outcome(
            False,
            "the code holds now; name the bug too: --answer NAME",
            [outcome.headline, ex.answer_help],
        )
    return Outcome(
        False, f"the code holds now, but the bug is not called {answer!r}", [ex.answer_help]
    )


def _without_the_name(ex: Exercise, outcome: Outcome) -> Outcome:
    """A failing find-bug's feedback with the bug's name taken out wherever a check
    said it (a zoo scenario is named after its mutation): the learner is asked it."""
    from learn.checks import Outcome

    name = re.compile(rf"(?<![\w-]){re.escape(ex.answer)}(?![\w-])", re.IGNORECASE)

    def hide(text: str) -> str:
        return name.sub("[the bug's name]", text)

    return Outcome(False, hide(outcome.headline), [hide(x) for x in outcome.lines], outcome.truth)


def _misplaced_packages(workspace: Path) -> str:
    import importlib

    for name in PACKAGES:
        module = importlib.import_module(name)
        origin = Path(module.__file__ or "").resolve()
        if workspace not in origin.parents:
            return f"{name} ({origin})"
    return ""


def _where(exc: BaseException, workspace: Path) -> str:
    """The innermost frame in the learner's workspace (else the innermost one)."""
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if f.filename and str(workspace) in os.path.abspath(f.filename)]
    if not (mine or frames):
        return "no location"
    frame = (mine or frames)[-1]
    return f"{_rel(frame.filename, workspace)}:{frame.lineno}"


def _rel(filename: str | None, workspace: Path) -> str:
    if not filename:
        return "?"
    path = Path(filename).resolve()
    return str(path.relative_to(workspace)) if workspace in path.parents else str(path)


def _problem(status: str, message: str) -> dict[str, object]:
    return {"status": status, "passed": False, "headline": message, "lines": [], "truth": ""}


if __name__ == "__main__":
    raise SystemExit(main())
