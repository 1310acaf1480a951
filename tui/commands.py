"""`d11 tui`: watch a chapter's stage live on the simulator, or replay a stored run."""

from __future__ import annotations

from pathlib import Path

import typer

from reference.cli_options import in_range, seed_range

__all__ = ["register"]


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.command("tui")(tui)


def tui(
    chapter: str = typer.Argument("ch1", help="chapter id or alias (ch1, monolith, ch2, ...)"),
    scenario: str = typer.Option(
        "steady",
        "--scenario",
        help="steady, double11, crash, partition, saturate: rolling traffic that never ends; "
        "or a chapter's own scenario (ch5 consumer-lag, ch6 overload-3x, retry-storm ...: "
        "`d11 run CHAPTER --help` lists them), played as `d11 run` plays it, to its final "
        "reads",
    ),
    seed: int = typer.Option(
        1, "--seed", callback=seed_range(), help="simulator seed: same seed, same run"
    ),
    variant: str = typer.Option("", "--variant", help="the stage's variant (default: its own)"),
    speed: float = typer.Option(
        1.0,
        "--speed",
        callback=in_range(0.1, 100),
        help="simulated seconds per real second (0.1..100)",
    ),
    attach: Path | None = typer.Option(
        None, "--attach", help="replay a store folder written by `d11 test` (or saved here)"
    ),
    store: Path = typer.Option(Path("store"), "--store", help="where `w` saves runs"),
) -> None:
    """The live view: traffic through the cells, faults at a key press, checks turning red.

    Chapters 5-7 and the capstone (double11) add their own panel and keys: ch5 l
    stalls a consumer group, x kills a producer mid-transaction; ch6 f flips a
    switch, d slows a dependency, [ ] tighten/loosen the flow rule; ch7 o is the
    load test's kill switch.
    """
    if not 0.1 <= speed <= 100:
        _fail(f"--speed must be in [0.1, 100], not {speed}")
    from tui.app import D11App
    from tui.replay import Replay, ReplayError
    from tui.session import SessionConfig, SessionError

    try:
        if attach is not None:
            app = D11App(Replay(attach), store_root=store)
        else:
            config = SessionConfig(
                chapter=chapter, scenario=scenario, seed=seed, variant=variant, speed=speed
            )
            config.validate()
            app = D11App(config=config, store_root=store)
    except (SessionError, ReplayError) as exc:
        _fail(str(exc))
    app.run()
    if app.crash is not None:
        # Raised here, with the terminal restored: `d11`'s last-resort handler
        # makes it one line and exit 2 (--debug shows the traceback).
        raise app.crash


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)  # as every d11 command says one
    raise typer.Exit(2)
