"""The exercises: one record each, gathered from one module per chapter.

To add a chapter's exercises, write `learn/exercises/chN.py` holding a list
`EXERCISES` of `Exercise` records and add its module name to
`CHAPTER_MODULES`; the order of that tuple, then of each list, is the order
in which a learner meets them. A chapter whose code is not in this checkout
is skipped. tests/learn proves every exercise both ways: unsolved it fails,
with its reference solution it passes; and checks that the chapter's book
page shows `d11 learn start ID` and that book/docs/workshop.md's plan names it.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "CHAPTER_MODULES",
    "KINDS",
    "Exercise",
    "all_exercises",
    "get_exercise",
    "next_up",
]

Kind = Literal["implement", "find-bug", "measure", "configure"]
KINDS: dict[str, str] = {
    "implement": "fill in a blanked region of the real code",
    "find-bug": "a planted bug is switched on: name it (--answer) and fix the line",
    "measure": "answer a question from a run (--answer); checked against the run",
    "configure": "set values in a file of the workspace; checked by a checker",
}

CHAPTER_MODULES: tuple[str, ...] = (
    "learn.exercises.ch1",
    "learn.exercises.ch2",
    "learn.exercises.ch3",
    "learn.exercises.ch4",
    "learn.exercises.ch5",
    "learn.exercises.ch6",
    "learn.exercises.ch7",
)

CHECK_SECONDS_MAX = 30.0  # a check of a chapter run answers within this
EXPLORER_SECONDS_MAX = 120.0  # a check that runs the exhaustive explorer


@dataclass(frozen=True)
class Exercise:
    """One exercise: what the learner is asked, where, and how it is checked."""

    id: str  # "ch2-empty-rollback": chapter, then what it is about
    chapter: int
    kind: Kind
    title: str
    task: str  # the statement, shown by `start` and written into the stub
    hints: tuple[str, str, str]  # level 1 points the way, 3 nearly gives it away
    check: str  # a function of learn/checks.py, run in the learner's subprocess
    holds: str  # what holds once it passes (shown on success)
    file: str = ""  # the workspace file the learner edits ("" for measure)
    region: str = ""  # the marked region blanked (implement) or holding the bug
    patches: tuple[tuple[str, str], ...] = ()  # find-bug: (original, buggy) in `file`
    params: dict[str, Any] = field(default_factory=dict)  # the check's settings
    answer: str = ""  # find-bug: the bug's name; configure: the reference file content
    answer_help: str = ""  # what --answer takes (find-bug, measure)
    config_file: str = ""  # configure: the file's name in the workspace
    config_template: str = ""  # configure: what `start` writes there
    solution_note: str = ""  # measure: how the answer is read off the run
    explorer: bool = False  # the check runs the explorer (allowed 2 minutes)
    page: str = ""  # the book page the exercise belongs to

    def __post_init__(self) -> None:
        assert len(self.hints) == 3, f"{self.id}: three hint levels"
        if self.kind == "implement":
            assert self.file and self.region, f"{self.id}: an implement exercise blanks a region"
        if self.kind == "find-bug":
            assert self.patches and self.answer, f"{self.id}: a planted bug and its name"
        if self.kind == "configure":
            assert self.config_file and self.answer, f"{self.id}: a file and its reference"

    @property
    def seconds_max(self) -> float:
        return EXPLORER_SECONDS_MAX if self.explorer else CHECK_SECONDS_MAX

    @property
    def needs_answer(self) -> bool:
        return self.kind in ("find-bug", "measure")


def all_exercises() -> list[Exercise]:
    """Every exercise, in the order a learner meets them."""
    out: list[Exercise] = []
    for name in CHAPTER_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # that chapter's exercises are not written yet
            raise
        out.extend(module.EXERCISES)
    ids = [e.id for e in out]
    assert len(ids) == len(set(ids)), "exercise ids are unique"
    return out


def get_exercise(exercise_id: str) -> Exercise:
    """The exercise `exercise_id`; KeyError with the known ids if there is none."""
    for exercise in all_exercises():
        if exercise.id == exercise_id:
            return exercise
    raise KeyError(exercise_id)


def next_up(order: Sequence[str], passed: Collection[str], current: str) -> tuple[str, bool] | None:
    """What a learner does next, the one rule `check`, `status` and `report` say it by:
    (exercise id, True) if it is the one they started last and have not passed (they
    are on it: check it again); else (id, False), the first exercise not passed after
    the one they started last, in the track's order, coming round to the start (none
    started yet: from the start); None when every exercise is passed."""
    if current in order and current not in passed:
        return current, True
    start = order.index(current) + 1 if current in order else 0
    return next(((e, False) for e in [*order[start:], *order[:start]] if e not in passed), None)
