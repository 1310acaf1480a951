"""Shared fixtures: chapter runs are cached per test session (they are pure in their seed)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from chapters.run import RunResult, simulate
from checks.verdict import Verdict


@functools.cache
def _run(chapter: str, scenario: str, frozen: tuple[tuple[str, Any], ...]) -> RunResult:
    options = {k: (dict(v) if k == "extra" else v) for k, v in frozen}
    return simulate(chapter, scenario, **options)


def run(chapter: str, scenario: str, **options: Any) -> RunResult:
    """simulate(), memoized: tests that look at the same run share it."""
    frozen = tuple(
        sorted((k, tuple(sorted(v.items())) if k == "extra" else v) for k, v in options.items())
    )
    return _run(chapter, scenario, frozen)


def not_valid(verdicts: Mapping[str, Verdict]) -> str:
    """The checks that are not valid, one line each with its summary: an assert's
    message. (A dict of all twenty-one summaries was cut at 240 characters by
    pytest, so a CI log never showed which check failed.) Empty: all valid."""
    return "\n".join(
        f"{name}: {v.valid}: {v.summary}"
        for name, v in sorted(verdicts.items())
        if v.valid is not True
    )
