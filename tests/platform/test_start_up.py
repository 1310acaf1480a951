"""A misspelt chapter or command module is an error at start-up, never silently skipped."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys

import pytest
import typer

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
    monkeypatch.setattr(tui.cli, "COMMAND_MODULES", {"checks.harness.clii": ("test",)})
    with pytest.raises(ModuleNotFoundError, match=re.escape("checks.harness.clii")):
        tui.cli._register_all()


def _words_registered(module: str) -> set[str]:
    """What `module.register` adds, on a root and a bench of its own."""
    root, bench = typer.Typer(), typer.Typer()
    importlib.import_module(module).register(root, bench)
    words = set(_names(root))
    words |= {f"bench {name}" for name in _names(bench)}
    return words


def _names(typer_app: typer.Typer) -> list[str]:
    """Its commands' and groups' names, in the order --help lists them."""
    commands = [info.name or "" for info in typer_app.registered_commands]
    return commands + [info.name or "" for info in typer_app.registered_groups]


@pytest.mark.parametrize("module", list(tui.cli.COMMAND_MODULES))
def test_command_modules_name_every_word_they_register(module: str) -> None:
    # A command missing from its module's words would be "no such command"
    # when run alone (main loads only the modules naming the word).
    assert _words_registered(module) <= set(tui.cli.COMMAND_MODULES[module])


def test_a_command_loads_only_its_modules() -> None:
    assert tui.cli._modules_for(["--debug", "test", "ch4", "--seed", "12"]) == [
        "checks.harness.cli"
    ]
    assert tui.cli._modules_for(["check", "bank", "h.jsonl"]) == [
        "checks.cli",
        "checks.cli_checkers",
    ]
    assert tui.cli._modules_for(["bench", "mq"]) == ["reference.mq.cli"]
    everything = list(tui.cli.COMMAND_MODULES)
    for argv in ([], ["--help"], ["--help", "test"], ["bench"], ["bench", "nope"], ["tset"]):
        assert tui.cli._modules_for(argv) == everything, argv


def test_d11_test_does_not_import_the_queue_or_the_explorer() -> None:
    code = (
        "import sys; from tui.cli import _modules_for, _register; "
        "_register(_modules_for(['test', 'ch4'])); "
        "print(sorted(m for m in ('reference.mq.broker', 'checks.explore') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_help_lists_commands_in_module_order_whatever_came_first() -> None:
    # In a process of its own: a registration earlier in this one would hide the order.
    code = (
        "import tui.cli; tui.cli._register(['learn.cli', 'checks.harness.cli']); "
        "app = tui.cli.app; "  # then everything
        "print(' '.join(i.name for i in [*app.registered_commands, *app.registered_groups]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == _names(tui.cli.app)
