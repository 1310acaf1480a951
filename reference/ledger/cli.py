"""The ledger's command: `d11 bench ledger` (throughput and commit latency, simulated)."""

from __future__ import annotations

import typer

from reference.cli_options import in_range, seed_range


def register(app: typer.Typer, bench: typer.Typer) -> None:
    @bench.command("ledger")
    def bench_ledger(
        clients: int = typer.Option(
            64,
            "--clients",
            callback=in_range(1, 4096),
            help="Transfers kept in flight at once (closed loop), 1-4096.",
        ),
        seconds: float = typer.Option(
            2.0,
            "--seconds",
            callback=in_range(0.001, 60, "s"),
            help="Simulated seconds measured, after a 1 s warm-up (max 60).",
        ),
        seed: int = typer.Option(1, "--seed", callback=seed_range(), help="Simulator seed."),
    ) -> None:
        """The Paxos ledger, 3 replicas in 3 cities: transfers/s and commit latency.

        Measured on the simulator, with and without batching.

        Exit status: 0 measured, 2 it could not measure (the reason is on stderr).
        """
        from reference.ledger.bench import BenchError, render, run_ledger_bench

        try:
            rows = run_ledger_bench(clients=clients, seconds=seconds, seed=seed)
        except BenchError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        typer.echo(render(rows, seconds))
