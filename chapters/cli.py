"""`d11 run CHAPTER` and `d11 bench cells`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperCommand

from checks.harness.timing import Stopwatch, time_line
from reference.cli_options import Interrupted, in_range, seed_range

__all__ = ["register"]

BENCH_CELLS = (1, 2, 4, 8, 16)


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.command("run", cls=_RunCommand)(run)
    bench.command("cells")(bench_cells)


class _RunCommand(TyperCommand):
    """`d11 run`, whose help lists every chapter, variant and scenario there is.

    The lists come from the chapter registry (`chapters.STAGES`), so a chapter
    that lands appears with no edit here. Loading every chapter takes seconds,
    so it happens only when this command's help is shown: `d11 --help` and
    every other command stay fast.
    """

    def format_help(self, ctx: Any, formatter: Any) -> None:
        helps = stage_help()
        for param in self.params:
            if param.name in helps:
                param.help = helps[param.name]  # type: ignore[attr-defined]
        super().format_help(ctx, formatter)


def stage_help() -> dict[str, str]:
    """Help texts of `run`'s chapter, --variant and --scenario, from every registered stage."""
    from chapters import STAGES

    stages = STAGES.chapters()
    chapters = ", ".join(
        f"{s.id}" + (f" ({', '.join(s.aliases)})" if s.aliases else "") for s in stages
    )
    variants = "; ".join(
        f"{s.id}: "
        + " | ".join(f"{v}{' (default)' if v == s.default_variant else ''}" for v in s.variants)
        for s in stages
    )
    by_list: dict[tuple[str, ...], list[str]] = {}  # chapters sharing a list say it once
    for s in stages:
        by_list.setdefault(tuple(s.scenarios), []).append(s.id)
    scenarios = "; ".join(f"{', '.join(ids)}: {' | '.join(ls)}" for ls, ids in by_list.items())
    from chapters.ch2_sharding.stage import DEFAULT_SHARDS, SHARDS_MAX
    from chapters.ch3_cells.stage import CELLS_MAX, DEFAULT_CELLS
    from chapters.ch4_paxos.stage import CELLS_MAX as CH4_CELLS_MAX
    from chapters.ch4_paxos.stage import DEFAULT_CELLS as CH4_CELLS

    return {
        "shards": f"Chapter 2: number of shards, 1-{SHARDS_MAX} (0: the chapter's own, "
        f"{DEFAULT_SHARDS}).",
        "cells": f"Chapter 3: number of RZone cells, 1-{CELLS_MAX} (0: the chapter's own, "
        f"{DEFAULT_CELLS}); chapter 4: Paxos cells, up to {CH4_CELLS_MAX} (0: {CH4_CELLS}).",
        "chapter": f"The chapter: {chapters}.",
        "variant": f"The stage's variant (default: its own). {variants}.",
        "scenario": f"{scenarios}.",
    }


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def parse_scale(text: str) -> float:
    """'1/453' or '0.0022' -> a scale in (0, 1]; ValueError otherwise."""
    try:
        if "/" in text:
            num, den = text.split("/", 1)
            value = float(num) / float(den)
        else:
            value = float(text)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"--scale must be a number like 1/453 or 0.002, not {text!r}") from None
    if not 0 < value <= 1:
        raise ValueError(f"--scale must be in (0, 1] (e.g. 1/453), not {text}")
    return value


def run(
    chapter: str = typer.Argument(..., help="The chapter: ch1, ch2, ... (or monolith, ...)."),
    scenario: str = typer.Option(
        "",
        "--scenario",
        help="steady | double11 | crash | partition | ... per chapter (default: the "
        "chapter's own, steady for all but the capstone)",
    ),
    seed: int = typer.Option(
        1, "--seed", callback=seed_range(), help="The run's seed: same seed, same run."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as one JSON object."),
    shards: int = typer.Option(
        0,
        "--shards",
        callback=in_range(0, 255),
        show_default=False,
        help="Chapter 2: number of shards (0: the chapter's own).",
    ),
    cells: int = typer.Option(
        0,
        "--cells",
        callback=in_range(0, 255),
        show_default=False,
        help="Chapter 3: number of RZone cells (0: the chapter's own).",
    ),
    variant: str = typer.Option("", "--variant", help="The stage's variant (default: its own)."),
    duration_s: float = typer.Option(
        4.0,
        "--duration-s",
        callback=in_range(0.001, 600, "s"),
        help="Simulated seconds of traffic; in chapter 6's event scenarios, of the event "
        "(the spike, the slow dependency), with calm traffic before and after it.",
    ),
    scale: str = typer.Option("", "--scale", help="Simulated payments per real one, e.g. 1/453."),
    store: Path | None = typer.Option(
        None, "--store", help="Run folder (default store/CH-SCENARIO/TIME)."
    ),
    no_store: bool = typer.Option(False, "--no-store", help="Do not write the run folder."),
    settings: list[str] = typer.Option(
        [],
        "--set",
        help="NAME=VALUE: one of the chapter's own settings, repeatable (e.g. ch5: "
        "load_test_share=0.3; ch6: gateways=3, cluster=leases; double11: lost_city=shanghai). "
        "A wrong name lists the chapter's settings.",
    ),
) -> None:
    """Run a chapter's stage on the simulator and report throughput, latency and verdicts.

    Exit status: 0 every check said what the chapter says it should (a naive
    variant's expected violation counts as that) or could not tell (UNKNOWN:
    the report marks it expected or not), 1 a check did not, 2 an error (a bad
    option, an unknown chapter or scenario, an unwritable --store).
    """
    from chapters.run import save_run, simulate
    from chapters.stage import StageError

    options: dict[str, Any] = {
        "seed": seed, "variant": variant, "shards": shards, "cells": cells,
        "duration_s": duration_s,
    }  # fmt: skip
    if not no_store:  # before the run: its results must have somewhere to go
        from checks.harness.store import writable_folder_problem

        problem = writable_folder_problem(store or Path("store"))
        if problem:
            _fail(f"--store {store or 'store'}: {problem}")
    with Interrupted() as said:
        try:
            if scale:
                options["scale"] = parse_scale(scale)
            from chapters import get_stage
            from checks.harness.contract import parse_settings

            stage = get_stage(chapter)
            if settings:
                options["extra"] = parse_settings(stage.id, stage.settings, settings)
            if not scenario:
                scenario = getattr(stage, "default_scenario", "steady")
            result = simulate(chapter, scenario, **options)
            if not no_store:
                said.kept = f"the run folder {store or 'under store/'} may be incomplete"
            with Stopwatch(result.timing_s).phase("store"):
                folder = None if no_store else save_run(result, store)
            said.kept = "nothing was stored" if folder is None else f"the run is in {folder}"
        except (StageError, ValueError) as exc:
            _fail(str(exc))
            return
        except OSError as exc:
            _fail(f"cannot write the run folder: {exc.filename or ''}: {exc.strerror or exc}")
            return
        summary = dict(result.summary)
        if folder is not None:
            summary["store"] = str(folder)
        # A broken variant where its break cannot show: say where it does.
        note = stage.variant_note(summary["variant"], scenario)
        if note:
            summary["note"] = note
        if json_out:
            typer.echo(json.dumps(summary, default=repr))
        else:
            from rich.console import Console

            from chapters.report import render

            render(summary, Console(), None if folder is None else str(folder))
            if summary.get("note"):
                typer.echo(f"note: {summary['note']}")
            typer.echo(time_line(result.timing_s))  # last: where the wall time went
        if not result.as_expected:
            raise typer.Exit(1)


def bench_cells(
    duration_s: float = typer.Option(
        2.0, "--duration-s", callback=in_range(0.001, 600, "s"), help="Simulated seconds per size."
    ),
    seed: int = typer.Option(
        1, "--seed", callback=seed_range(), help="Seed of every run: same seed, same figures."
    ),
    cross_cell: float | None = typer.Option(
        None,
        "--cross-cell",
        callback=in_range(0, 1, words="a share from 0 to 1"),
        help="Share of payments to a user of another cell in the mixed run "
        "(default: chapter 3's own).",
    ),
) -> None:
    """Goodput at saturation with 1, 2, 4, 8 and 16 cells; last line scaling_efficiency_16.

    Each size runs twice: with single-cell traffic, then with chapter 3's mix of
    cross-cell and misrouted payments. The last two lines are the efficiency of
    16 cells (goodput of 16 over 16 times that of one), mixed and single-cell.
    """
    from chapters.ch3_cells.stage import CROSS_CELL_RATIO, MISROUTE_RATIO

    cross = CROSS_CELL_RATIO if cross_cell is None else cross_cell
    typer.echo("single-cell traffic: every payment between two users of one cell, none misrouted")
    alone = _bench_cells_goodput(duration_s, seed, cross=0.0, misroute=0.0)
    typer.echo(
        f"mixed traffic: {cross:.0%} of payments to a user of another cell (a TCC transfer "
        f"across cells), {MISROUTE_RATIO:.0%} sent to the wrong cell first (forwarded)"
    )
    mixed = _bench_cells_goodput(duration_s, seed, cross=cross, misroute=MISROUTE_RATIO)
    typer.echo(f"scaling_efficiency_16_mixed: {_efficiency_16(mixed):.3f}")
    typer.echo(f"scaling_efficiency_16: {_efficiency_16(alone):.3f}")


def _efficiency_16(goodput: dict[int, float]) -> float:
    """Goodput of 16 cells over 16 times that of one: 1.0 is perfectly linear."""
    return goodput[16] / (16 * goodput[1]) if goodput[1] else 0.0


def _bench_cells_goodput(
    duration_s: float, seed: int, *, cross: float, misroute: float
) -> dict[int, float]:
    """Saturate each size of BENCH_CELLS with this traffic mix; print and return goodputs."""
    from chapters.run import simulate
    from chapters.stage import StageError
    from reference.traffic.plan import describe_rate

    goodput: dict[int, float] = {}
    for n in BENCH_CELLS:
        try:
            result = simulate(
                "ch3", "saturate", checks=(), seed=seed, cells=n, duration_s=duration_s,
                extra={"cross_cell_ratio": cross, "misroute_ratio": misroute},
            )  # fmt: skip
        except (StageError, ValueError) as exc:
            _fail(str(exc))
            raise AssertionError("unreachable") from None
        s = result.summary
        goodput[n] = s["goodput_tps"]
        per_cell = goodput[n] / n
        typer.echo(
            f"cells {n:>2}: goodput {goodput[n]:>9,.1f} payments/s ({per_cell:,.1f} per cell; "
            f"{describe_rate(goodput[n], s['scale'], 'payments/s')})"
        )
    return goodput
