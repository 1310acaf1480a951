"""Helpers: a fresh workspace, and an exercise solved with its reference solution."""

from __future__ import annotations

from pathlib import Path

import pytest

from learn.catalog import Exercise
from learn.regions import replace_region
from learn.workspace import CheckResult, Workspace

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws", source=ROOT)


def solve(ws: Workspace, ex: Exercise) -> str | None:
    """Put the reference solution in the workspace; the answer to give, if any."""
    return ws.apply_solution(ex)


def fill(ws: Workspace, ex: Exercise, body: str) -> None:
    """Fill the exercise's region with `body` (a learner's attempt)."""
    target = ws.path / ex.file
    target.write_text(replace_region(target.read_text(), ex.region, body))


def check(ws: Workspace, ex: Exercise, answer: str | None = None, seeds: int = 1) -> CheckResult:
    """What `d11 learn check` does: the precheck, then the subprocess."""
    return ws.precheck(ex) or ws.run_check(ex, seeds=seeds, answer=answer)
