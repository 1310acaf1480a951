"""Numeric command-line options checked at the edge: finite, and in a stated range.

Click reads `--timeout-s nan` as a float and `--rate 1e400` as infinity,
and its ranges let NaN through (every comparison with NaN is false). A NaN
budget switches a deadline off; an infinite rate grows a queue without
bound. So every numeric option of `d11` names its range here, once:

    timeout_s: float = typer.Option(60.0, "--timeout-s", callback=in_range(0.001, 86_400))

and a value outside it is a usage error: one line on stderr in the shape every
d11 error has (`error: invalid value for --timeout-s: must be ..., not nan`)
and exit 2, not a run and not click's boxed usage panel.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

import typer

N = TypeVar("N", int, float)

# Seeds are 64-bit, as every RNG here takes them, and never negative: a store
# folder names its seed (`...-s7`), and one run has one way to be asked for.
SEED_MIN, SEED_MAX = 0, 2**63 - 1


def in_range(
    lo: float, hi: float, unit: str = "", words: str = ""
) -> Callable[[N | None], N | None]:
    """A typer callback accepting a finite number from `lo` to `hi` (or None);
    `words` says what it accepts, when the bounds alone do not say it well."""
    assert lo <= hi and math.isfinite(lo) and math.isfinite(hi), (lo, hi)
    unit_text = f" {unit}" if unit else ""
    words = words or f"a finite number from {_bound(lo)} to {_bound(hi)}{unit_text}"

    def check(param: typer.CallbackParam, value: N | None) -> N | None:
        if value is None:
            return None
        if not math.isfinite(value) or not lo <= value <= hi:
            flag = max(param.opts, key=len) if param.opts else str(param.name)
            typer.echo(
                f"error: invalid value for {flag}: must be {words}, not {_show(value)}",
                err=True,
            )
            raise typer.Exit(2)
        return value

    return check


def seed_range() -> Callable[[int | None], int | None]:
    """The callback of every `--seed`: a whole number from 0 to 2**63 - 1."""
    return in_range(SEED_MIN, SEED_MAX, words="a whole number from 0 to 2**63 - 1")


def _bound(x: float) -> str:
    """1e7 reads as 10,000,000 and 0.001 as 0.001: a bound a reader can type back."""
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


def _show(value: float) -> str:
    if isinstance(value, int) and abs(value) >= 10**20:
        return "an integer that large"
    return f"{value:g}" if isinstance(value, float) else str(value)


class Interrupted:
    """Ctrl-C in a long command: one line on stderr saying what was kept, and exit
    130 (128 + SIGINT, as a shell reports it). The command updates `kept` as it
    goes; inside `with Interrupted() as said:` a KeyboardInterrupt becomes

        interrupted: nothing was stored
    """

    def __init__(self, kept: str = "nothing was stored") -> None:
        self.kept = kept

    def __enter__(self) -> Interrupted:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is not None and issubclass(kind, KeyboardInterrupt):
            fresh_line = "\n" if sys.stderr.isatty() else ""  # after the terminal's ^C
            typer.echo(f"{fresh_line}interrupted: {self.kept}", err=True)
            raise typer.Exit(130) from None


def d11_command(argv0: str | None = None, path_env: str | None = None) -> str:
    """`d11` as the user can type it again, for the commands a run prints
    (`replay: d11 replay FOLDER`).

    A bare `d11` works only where it is on PATH (the venv activated). Otherwise
    the running executable is named: `.venv/bin/d11` when it is under the
    current directory, else its absolute path. `argv0` and `path_env` stand
    for sys.argv[0] and $PATH (tests give their own)."""
    import os
    import shlex
    import shutil
    from pathlib import Path

    argv0 = sys.argv[0] if argv0 is None else argv0
    running = Path(argv0)
    if running.name != "d11" or not running.is_file():
        # Not the console script (python -m, a test runner): the venv's own, if any.
        running = Path(sys.executable).parent / "d11"
        if not running.is_file():
            return "d11"
    on_path = shutil.which("d11", path=os.environ.get("PATH") if path_env is None else path_env)
    if on_path is not None and os.path.samefile(on_path, running):
        return "d11"
    where = running.absolute()
    try:
        shown = str(where.relative_to(Path.cwd()))
        shown = shown if "/" in shown else f"./{shown}"  # a bare name would search PATH
    except ValueError:
        shown = str(where)
    return shlex.quote(shown)
