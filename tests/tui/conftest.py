"""Shared pieces of the TUI tests: a ch1 session a few seconds in, a stored run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui.session import Session, SessionConfig


@pytest.fixture
def session() -> Session:
    s = Session(SessionConfig(chapter="ch1", scenario="steady", seed=7))
    s.step(1_500.0)
    return s


@pytest.fixture(scope="session")
def stored_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `d11 test` store folder: ch1 under a kill nemesis, 3 s, seed 3."""
    from checks.harness.runner import TestSpec, run_test
    from checks.harness.store import write_store

    result = run_test(TestSpec(chapter="ch1", nemeses=("kill",), time_s=3.0, seed=3))
    return write_store(result, tmp_path_factory.mktemp("store"), html=False)
