"""Every `d11` command's help reads well: a one-line summary in its group's list,
a body that fits 80 columns, every option and argument explained."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
import typer

from tui.cli import app

WIDTH = 80  # rich indents the body by one column and needs one at the right


def _commands(command: Any, path: str) -> Iterator[tuple[str, Any]]:
    """(`d11 bench cells`, its click command) for every command and group, depth first."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, f"{path} {name}")


COMMANDS = list(_commands(typer.main.get_command(app), "d11"))[1:]  # not the root itself


def _short_help(command: Any) -> str:
    """What a group's command list shows: click's short_help, else the first paragraph."""
    if command.short_help:
        return str(command.short_help)
    return inspect.cleandoc(command.help or "").partition("\f")[0].split("\n\n")[0]


def test_the_walk_reaches_nested_commands() -> None:
    names = {path for path, _ in COMMANDS}
    assert {"d11 run", "d11 bench cells", "d11 learn check", "d11 degrade drill"} <= names


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_summary_is_one_line(path: str, command: Any) -> None:
    """A hard line break in the first paragraph shows in `d11 --help` mid-sentence."""
    summary = _short_help(command)
    assert summary.strip(), f"{path}: no summary"
    assert "\n" not in summary, f"{path}: summary breaks mid-sentence: {summary!r}"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_body_lines_fit_80_columns(path: str, command: Any) -> None:
    """The body keeps the source's line breaks: in a paragraph broken by hand, a line
    wider than the terminal wraps, and the paragraph reads ragged (one line alone
    wraps as a paragraph should)."""
    body = inspect.cleandoc(command.help or "").partition("\f")[0].split("\n\n")[1:]
    broken = [para.splitlines() for para in body if "\n" in para.strip()]
    long = [line for lines in broken for line in lines if len(line) > WIDTH - 2]
    assert not long, f"{path}: body lines wider than {WIDTH - 2} columns: {long}"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_parameter_is_explained(path: str, command: Any) -> None:
    bare = [
        p.name
        for p in command.params
        if not getattr(p, "help", None) and p.name != "help" and not getattr(p, "hidden", False)
    ]
    assert not bare, f"{path}: no help for {bare}"
