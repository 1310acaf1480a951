"""A misspelt chapter or command module is an error at start-up, never silently skipped."""

from __future__ import annotations

import re

import pytest

import chapters
import tui.cli


def test_every_listed_chapter_exists() -> None:
    chapters._check_listed()  # what `import chapters` runs
    assert len(chapters.STAGES.chapters()) == len(chapters.STAGE_MODULES)


def test_a_misspelt_chapter_module_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chapters, "STAGE_MODULES", ("chapters.ch1_monolith", "chapters.ch2_shard"))
    with pytest.raises(ImportError, match=re.escape("'chapters.ch2_shard', which does not exist")):
        chapters._check_listed()


def test_a_chapter_module_without_a_stage_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chapters, "STAGE_MODULES", ("chapters.ch1_monolith", "chapters.metrics"))
    with pytest.raises(ImportError, match=re.escape("chapters.metrics is in STAGE_MODULES")):
        chapters._Registry()["ch2"]  # imported in order: ch1, then the one without


def test_a_misspelt_command_module_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tui.cli, "COMMAND_MODULES", ("checks.harness.clii",))
    with pytest.raises(ModuleNotFoundError, match=re.escape("checks.harness.clii")):
        tui.cli._register_all()
