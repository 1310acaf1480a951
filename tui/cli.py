"""The `d11` command: one root, with each area registering its own commands.

Every area of the repository keeps its commands next to its code, in a module
with `register(app, bench)`; this root only gathers them: `d11 WORD` imports
only the modules registering WORD. Heavy imports (textual, matplotlib, docker)
happen inside the commands, so `d11 --help` stays fast.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from pathlib import Path
from typing import Any

import typer
import typer.rich_utils
from rich.console import RenderableType
from rich.style import StyleType
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup
from typer.models import CommandInfo, TyperInfo

from chapters import get_stage
from checks.harness.contract import use_stages
from checks.harness.sessions import use_session_replay


def _click_class(name: str) -> type[Exception]:
    """click's exception class `name`, from whichever click typer runs on (recent
    typers carry their own copy, so `import click` would name other classes)."""
    found = next((c for c in typer.BadParameter.__mro__ if c.__name__ == name), None)
    if found is None:
        found = getattr(sys.modules[typer.BadParameter.__module__], name)
    assert isinstance(found, type) and issubclass(found, Exception), name
    return found


_ClickException = _click_class("ClickException")
_UsageError = _click_class("UsageError")
_NoArgsIsHelpError = _click_class("NoArgsIsHelpError")


class _OneLineErrors(TyperGroup):
    """The root group: a usage error (no such option, a value click cannot read)
    is one line on stderr and exit 2, in the shape of every other d11 error,
    instead of click's boxed panel (scripts read the first line of stderr)."""

    def main(self, *args: object, standalone_mode: bool = True, **extra: object) -> object:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **extra)  # type: ignore[arg-type]
        try:
            rv = super().main(*args, standalone_mode=False, **extra)  # type: ignore[arg-type]
        except _NoArgsIsHelpError as exc:
            ctx = getattr(exc, "ctx", None)
            typer.echo(ctx.get_help() if ctx is not None else str(exc))
            sys.exit(2)
        except _ClickException as exc:
            message = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
            hint = ""
            ctx = getattr(exc, "ctx", None)
            if isinstance(exc, _UsageError) and ctx is not None:
                hint = f" (see '{ctx.command_path} --help')"
            typer.echo(f"error: {message}{hint}", err=True)
            sys.exit(getattr(exc, "exit_code", 2))
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        # Without standalone mode click returns an Exit's code, or the command's
        # value (d11's commands return None).
        sys.exit(rv if isinstance(rv, int) else 0)


class _HelpTable(Table):
    """typer's --help table, whose option names are never cut.

    When the help is narrower than its table, rich levels every wrappable
    column to one width: at 80 columns `d11 bench process --help` showed
    `--batch-max-comm…` and `--snapshot-every…`. Scripts call options by
    those names, so a cell holding only option names does not wrap; the help
    text beside it wraps narrower instead.
    """

    def add_row(
        self,
        *renderables: RenderableType | None,
        style: StyleType | None = None,
        end_section: bool = False,
    ) -> None:
        super().add_row(*renderables, style=style, end_section=end_section)
        for column, cell in zip(self.columns, renderables, strict=False):
            if isinstance(cell, Text) and _OPTION_NAMES.fullmatch(cell.plain):
                column.no_wrap = True


_OPTION_NAMES = re.compile(r"--?[\w-]+(,--?[\w-]+)*")  # "--fsync", "--json,-j"
setattr(typer.rich_utils, "Table", _HelpTable)  # noqa: B010 (typer builds its help tables with it)

_app = typer.Typer(
    name="d11",
    cls=_OneLineErrors,
    help="Double 11, built to be read: run, break and check a payment platform.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
bench = typer.Typer(help="Benchmarks: each prints its figure and the ratio to its comparison.")
_app.add_typer(bench, name="bench", no_args_is_help=True)

# Modules holding `register(app, bench)`, in the order their commands appear,
# each with the words it registers ("bench X" for `d11 bench X`). `d11 WORD`
# imports only the modules naming WORD (`d11 test` needs neither the queue's
# broker nor the zoo's explorer); tests/platform/test_start_up.py checks the
# words against what each module registers.
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "reference.sim.cli": ("sim", "bench sim"),
    "reference.traffic.cli": ("traffic",),
    "chapters.cli": ("run", "bench cells"),
    "chapters.ch6_degrade.cli": ("degrade", "bench degrade"),
    "chapters.ch7_rehearsal.cli": ("rehearse", "bench rehearsal"),
    "checks.cli": ("check", "bench checker"),
    "checks.cli_checkers": ("check",),  # bank|ledger|txn|delivery, in checks.cli's group
    "checks.harness.cli": ("test", "hunt", "replay", "bench chapter"),
    "checks.zoo": ("zoo",),
    "reference.ledger.cli": ("bench ledger",),
    "reference.mq.cli": ("bench mq",),
    "reference.runtime.cli": ("node", "bench process"),
    "tui.commands": ("tui",),
    "learn.cli": ("learn",),
}

_registered: set[str] = set()
_rank_of_entry: dict[int, int] = {}  # id(command or group info) -> its module's place


def _register(names: list[str]) -> None:
    """Import the command modules `names` (those not yet in) and let them register.

    A module registered later still lists its commands in `COMMAND_MODULES`
    order, so --help reads the same whichever command came first."""
    rank = {name: i for i, name in enumerate(COMMAND_MODULES)}
    lists: list[list[CommandInfo] | list[TyperInfo]] = [_app.registered_commands]
    lists += [_app.registered_groups, bench.registered_commands, bench.registered_groups]
    for name in names:
        if name in _registered:
            continue
        # A misspelt or missing module fails here, at start-up: never a command
        # that silently is not there.
        module = importlib.import_module(name)
        before = [len(entries) for entries in lists]
        module.register(_app, bench)
        _registered.add(name)
        for entries, start in zip(lists, before, strict=True):
            for entry in entries[start:]:
                _rank_of_entry[id(entry)] = rank[name]
    for entries in lists:
        entries.sort(key=lambda entry: _rank_of_entry.get(id(entry), -1))


def _register_all() -> None:
    _register(list(COMMAND_MODULES))


def _modules_for(argv: list[str]) -> list[str]:
    """The command modules `d11 *argv` needs: those naming its command word (and
    for `bench`, its benchmark), or all of them for the root's --help, no command
    or a word none names (click's error then lists what there is)."""
    words = [arg for arg in argv if not arg.startswith("-")]  # root options take no value
    if not words or "--help" in argv[: argv.index(words[0])]:
        return list(COMMAND_MODULES)
    word = words[0]
    if word == "bench" and len(words) > 1:
        word = f"bench {words[1]}"
    needed = [name for name, named in COMMAND_MODULES.items() if word in named]
    return needed or list(COMMAND_MODULES)


def __getattr__(name: str) -> typer.Typer:
    """`tui.cli.app`: the root with every command (`main` registers only what it runs)."""
    if name == "app":
        _register_all()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# The harness runs whatever stage a spec names through this resolver: the
# chapters are the top's to choose (checks/ never imports chapters/).
use_stages(get_stage)


def _replay_session(folder: Path) -> Any:
    """A folder saved from d11 tui, run again (imported only when one is replayed)."""
    from tui.session import replay_saved

    return replay_saved(folder)


use_session_replay(_replay_session)


# --8<-- [start:last-resort]
DEBUG_ENV = "D11_DEBUG"
_debug_flag = False  # set by --debug, before any command runs


@_app.callback()
def _root(
    debug: bool = typer.Option(
        False, "--debug", help=f"On an unexpected error, show its traceback (or set {DEBUG_ENV}=1)."
    ),
) -> None:
    global _debug_flag
    _debug_flag = debug


def _debugging() -> bool:
    return _debug_flag or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def main() -> None:
    """Run `d11`. An error no command foresaw is a bug: one line and exit 2, never a
    traceback, unless --debug asks for it. Exits and Ctrl-C pass through as they are."""
    _register(_modules_for(sys.argv[1:]))
    try:
        _app()
    except (SystemExit, KeyboardInterrupt):
        raise
    except Exception as exc:
        if _debugging():
            raise
        first = (str(exc).splitlines() or [""])[0][:300]
        line = f"error: unexpected {type(exc).__name__}: {first}"
        line += f" (a bug in d11; --debug or {DEBUG_ENV}=1 shows the traceback)"
        encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
        sys.stderr.write(line.encode(encoding, "backslashreplace").decode(encoding) + "\n")
        raise SystemExit(2) from None


# --8<-- [end:last-resort]
