"""`d11 rehearse`: the Double 11 readiness report. Exit 0 ready, 1 not ready, 2 could not tell."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from reference.cli_options import Interrupted, seed_range

__all__ = ["register"]


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.command("rehearse")(rehearse)
    bench.command("rehearsal")(bench_rehearsal)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def rehearse(
    seed: int = typer.Option(
        1, "--seed", callback=seed_range(), help="Seed of every run: same seed, same figures."
    ),
    shards: int = typer.Option(
        4, "--shards", help="SQL stores (chapter 2's sharding; --system ch7)."
    ),
    duration_s: float = typer.Option(1.5, "--duration-s", help="Simulated s per load level."),
    forecast_tps: float = typer.Option(
        0.0, "--forecast-tps", help="Forecast peak, simulated payments/s (0: the stage's)."
    ),
    slow: str = typer.Option(
        "", "--slow", help="Plant a bottleneck: this node of the system is slower."
    ),
    slow_factor: float = typer.Option(4.0, "--slow-factor", help="How much slower."),
    leak: bool = typer.Option(False, "--leak", help="Plant a leak: a gateway drops the tag."),
    night: bool = typer.Option(
        True,
        "--night/--no-night",
        help="Drill the capstone's night: a city lost, a group stalled, the elastic cell.",
    ),
    jobs: int = typer.Option(
        0,
        "--jobs",
        help="Runs at once, each in a forked process (0: one per core; 1: one after the "
        "other). The report is the same either way.",
    ),
    as_json: bool = typer.Option(False, "--json", help="The report as JSON."),
    html_path: Path | None = typer.Option(None, "--html", help="Also write an HTML page here."),
    system: str = typer.Option(
        "pipeline",
        "--system",
        help="What to rehearse: pipeline (the capstone's payment pipeline: cells, Paxos "
        "ledger, transactional MQ, chapter 6's door) or ch7 (chapter 7's own system on "
        "chapter 2's shards).",
    ),
) -> None:
    """Rehearse Double 11 on the simulator. Exit 0 ready, 1 not ready, 2 could not tell.

    A capacity sweep with a USL fit; load levels at 0.5x-2x the forecast,
    tagged traffic replayed over production; drills (kill switch; on the
    pipeline a city lost at the peak and the settlement consumers stalled, on
    ch7 a store crash; a slow dependency; and the capstone's night unless
    --no-night: a city lost, consumer lag, the elastic cell's move); isolation.

    The recording is the arrivals of a production run at the forecast, which
    stops when its traffic does (its final phase starts no payment). The runs
    are independent but for the recording, which the levels and the pipeline's
    drills replay: as many go at once as there are cores (--jobs), each in a
    forked process, with the same figures as one after the other.
    """
    from chapters.ch7_rehearsal.rehearsal import SYSTEMS, RehearsalPlan, slowable
    from chapters.ch7_rehearsal.rehearsal import rehearse as run_rehearsal
    from chapters.ch7_rehearsal.report import render_text, write_html
    from chapters.stage import StageError

    if not 0 < duration_s <= 60:
        _fail(f"--duration-s must be in (0, 60], not {duration_s:g}")
    for option, value, ok, must in (
        ("--forecast-tps", forecast_tps, forecast_tps >= 0, ">= 0"),
        ("--jobs", jobs, jobs >= 0, ">= 0"),
        ("--slow-factor", slow_factor, slow_factor > 0, "> 0"),
    ):
        if not ok:
            _fail(f"{option} must be {must}, not {value:g}")
    if system not in SYSTEMS:
        _fail(f"--system must be one of {', '.join(SYSTEMS)}, not {system!r}")
    extra: dict[str, object] = {}
    if slow:
        extra |= {"slow": slow, "slow_factor": slow_factor}
    try:
        plan = RehearsalPlan(
            seed=seed, shards=shards, duration_s=duration_s, forecast_tps=forecast_tps,
            variant="leak" if leak else "shadow", extra=extra, night=night, system=system,
        )  # fmt: skip
        if slow and slow not in (nodes := slowable(plan)):
            _fail(f"--slow names no node of the stage: {slow!r} (its nodes: {', '.join(nodes)})")
        progress = None if as_json else (lambda s: typer.echo(f"  {s}", err=True))
        with Interrupted("no report was written"):
            report = run_rehearsal(plan, on_progress=progress, width=jobs)
    except StageError as exc:
        _fail(str(exc))
        return
    if html_path is not None:
        write_html(report, html_path)
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2, default=str) + "\n")
    else:
        typer.echo(render_text(report))
        if html_path is not None:
            typer.echo(f"html: {html_path}")
    raise typer.Exit(report["exit_code"])


# --8<-- [start:bench]
def bench_rehearsal(
    factor: float = typer.Option(2.0, "--factor", help="Load level, x the forecast peak."),
    seconds: float = typer.Option(60.0, "--seconds", help="Simulated seconds of the level."),
    seed: int = typer.Option(
        1, "--seed", callback=seed_range(), help="Seed of every run: same seed, same figures."
    ),
    system: str = typer.Option("pipeline", "--system", help="pipeline or ch7 (d11 rehearse)."),
) -> None:
    """One rehearsal level at the default scale: 2x the peak for 60 simulated s.

    Records production traffic for as long (a production run at the forecast,
    stopped when its traffic ends: its arrivals are the recording), replays it
    tagged at `--factor`, and prints the level's figures with the CPU time and
    wall time of each step (the issue's budget: two minutes; wall time counts
    the machine's other load). The two runs go side by side: the level replays
    the recording as production's clients plan it (open model: they start each
    payment when planned), the recording's run goes beside it in a forked
    process, and the two lists are compared after (not the same: the level
    runs again, on the recording).
    """
    from chapters.ch7_rehearsal.rehearsal import RehearsalPlan, bench_level

    if not 0 < factor <= 5 or not 0 < seconds <= 600:
        _fail("--factor must be in (0, 5] and --seconds in (0, 600]")
    if system not in ("pipeline", "ch7"):
        _fail(f"--system must be pipeline or ch7, not {system!r}")
    plan = RehearsalPlan(seed=seed, duration_s=seconds, levels=(max(factor, 1.1),), system=system)
    for line in bench_level(plan, factor):
        typer.echo(line)


# --8<-- [end:bench]
