"""Shared fixtures: chapter runs are cached per test session (they are pure in their seed)."""

from __future__ import annotations

import functools
from typing import Any

from chapters.run import RunResult, simulate


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
