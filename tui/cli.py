"""The `d11` command: one root, with each area registering its own commands.

Every area of the repository keeps its commands next to its code, in a module
with `register(app, bench)`; this root only gathers them. Heavy imports
(textual, matplotlib, docker) happen inside the commands, so `d11 --help`
stays fast.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="d11",
    help="Double 11, built to be read: run, break and check a payment platform.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
bench = typer.Typer(help="Benchmarks: each prints its figure and the ratio to its comparison.")
app.add_typer(bench, name="bench", no_args_is_help=True)

# Modules holding `register(app, bench)`, in the order their commands appear.
COMMAND_MODULES = (
    "reference.sim.cli",  # d11 sim ..., d11 bench sim
    "reference.traffic.cli",  # d11 traffic
    "chapters.cli",  # d11 run, d11 bench cells
    "checks.cli",  # d11 check lin, d11 bench checker
    "checks.cli_checkers",  # d11 check bank|ledger|txn|delivery
    "checks.harness.cli",  # d11 test, d11 hunt, d11 replay
    "checks.zoo",  # d11 zoo
    "reference.ledger.cli",  # d11 bench ledger
    "reference.runtime.cli",  # d11 node (process backend), d11 bench process
    "tui.commands",  # d11 tui
)


def _register_all() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and name.startswith(exc.name):
                continue  # that area is not part of this checkout
            raise
        module.register(app, bench)


_register_all()


def main() -> None:
    app()
