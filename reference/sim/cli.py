"""`d11 sim ...` and `d11 bench sim`: watch the simulator, and time it.

Heavy imports (simpy, the demo's nodes) happen inside the commands so that
`d11 --help` stays fast.
"""

from __future__ import annotations

from typing import Any

import typer

from reference.cli_options import seed_range

__all__ = ["register"]

_KIND_STYLE = {
    "crash": "bold red",
    "restart": "bold green",
    "recovered": "green",
    "pause": "yellow",
    "resume": "green",
    "partition": "bold magenta",
    "heal": "bold cyan",
    "silent": "yellow",
    "heard_again": "green",
    "views": "bold blue",
    "clock": "cyan",
}


def _describe(kind: str, fields: dict[str, Any]) -> str:
    if kind == "partition" and "groups" in fields:
        return "cut " + " | ".join("{" + ", ".join(g) + "}" for g in fields["groups"])
    if kind == "views":
        totals = fields["totals"]
        distinct = sorted(set(totals.values()))
        verdict = "all agree" if len(distinct) == 1 else f"{len(distinct)} different views"
        shown = ", ".join(f"{n}={v}" for n, v in totals.items())
        return f"{fields['at']}: {shown} ({verdict})"
    if kind == "silent":
        return "no word from " + ", ".join(fields["peers"])
    if kind == "heard_again":
        return f"hears {fields['peer']} again"
    if kind == "recovered":
        return f"recovered count={fields['count']} from disk"
    return ", ".join(f"{k}={v}" for k, v in fields.items())


def demo(
    seed: int = typer.Option(
        7, callback=seed_range(), help="Run seed: the same seed gives the same run."
    ),
) -> None:
    """A replicated counter in two cities, through a crash and a partition."""
    from rich.console import Console
    from rich.table import Table

    from reference.sim.demo import run_demo

    console = Console(highlight=False)
    result = run_demo(seed)
    console.rule(f"[bold]d11 sim demo[/] seed={seed}: a grow-only counter, 5 nodes, 2 cities")
    timeline = Table(box=None, pad_edge=False, show_edge=False)
    timeline.add_column("time_ms", justify="right", style="dim")
    timeline.add_column("node", style="bold")
    timeline.add_column("event")
    timeline.add_column("detail")
    for event in result.events:
        style = _KIND_STYLE.get(event.kind, "")
        timeline.add_row(
            f"{event.time_ms:9.1f}",
            event.node or "(world)",
            f"[{style}]{event.kind}[/]" if style else event.kind,
            _describe(event.kind, event.fields),
        )
    console.print(timeline)
    summary = Table(title="messages by link class")
    for column in ("link class", "sent", "delivered", "dropped", "duplicated"):
        summary.add_column(column, justify="right" if column != "link class" else "left")
    for klass, stats in result.by_class.items():
        if stats.sent:
            summary.add_row(klass, *(str(v) for v in stats))
    console.print(summary)
    agreed = len(set(result.totals.values())) == 1
    console.print(
        f"events processed: {result.events_processed}   simulated: {result.end_ms:.0f} ms   "
        f"counter: {'[green]converged[/]' if agreed else '[red]diverged[/]'} "
        f"at {max(result.totals.values())}"
    )
    console.print(f"trace digest: [bold]{result.digest}[/]")


def bench_sim(
    nodes: int = typer.Option(100, min=2, max=2_000, help="Nodes exchanging messages."),
    messages: int = typer.Option(200_000, min=1_000, max=50_000_000, help="Messages to deliver."),
    seed: int = typer.Option(1, callback=seed_range(), help="Seed for both sides."),
    rounds: int = typer.Option(3, min=1, max=20, help="Alternating rounds; best of each side."),
) -> None:
    """Message passing on our kernel vs SimPy: same workload, same latency model."""
    from reference.sim.bench import run_bench

    run_bench(nodes=nodes, messages=messages, seed=seed, rounds=rounds)


def register(app: typer.Typer, bench: typer.Typer) -> None:
    sim = typer.Typer(help="The deterministic simulator.", no_args_is_help=True)
    sim.command("demo")(demo)
    app.add_typer(sim, name="sim")
    bench.command("sim")(bench_sim)
