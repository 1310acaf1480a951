"""The broker's command: `d11 bench mq` (transactional messages on real processes)."""

from __future__ import annotations

import typer

from reference.cli_options import in_range


def register(app: typer.Typer, bench: typer.Typer) -> None:
    @bench.command("mq")
    def bench_mq(
        seconds: float = typer.Option(
            3.0, "--seconds", callback=in_range(0.5, 600.0, "s"), help="Measured time per run."
        ),
        inflight: int = typer.Option(
            4, "--inflight", callback=in_range(1, 1024), help="Batched requests in flight."
        ),
        batch: int = typer.Option(
            64, "--batch", callback=in_range(1, 4096), help="Messages per batched request."
        ),
        unbatched_inflight: int = typer.Option(
            8,
            "--unbatched-inflight",
            callback=in_range(1, 1024),
            help="Single-message requests in flight for the unbatched figure.",
        ),
        fsync: bool = typer.Option(True, "--fsync/--no-fsync", help="fsync the replicas' disks."),
    ) -> None:
        """Transactional messages through a 3-replica broker: messages/s, p50/p99.

        Each message is a half, a commit, a delivery and an offset commit (the
        consumer's acknowledgement), through a broker of 3 replicas on real
        processes. The load is closed (a request leaves when one is answered).
        p50/p99 are end to end, from the half's send to the consumer's pull; a
        line per mode gives each stage's p50/p99 on the load's clock (half
        stored; commit and delivery; the verdict's answer; the consumer's ack,
        from pull to its offset commit's answer) and the longest time no message
        was delivered, which is where a stall shows.

        Exit status: 0 measured, 2 it could not measure (the reason is on stderr).
        """
        from reference.mq.bench import BenchError, run_mq_bench

        try:
            report = run_mq_bench(
                seconds=seconds,
                inflight=inflight,
                batch=batch,
                fsync=fsync,
                unbatched_inflight=unbatched_inflight,
            )
        except BenchError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        typer.echo(report.render())
