"""Commands of the real runtime: `d11 node` (one node process) and `d11 bench process`."""

from __future__ import annotations

import typer

from reference.cli_options import in_range
from reference.runtime.bench import DEFAULT_CLIENTS, ReplicaTuning

DEFAULT_TUNING = ReplicaTuning()


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.command("node", hidden=True)(node)
    bench.command("process")(bench_process)


def node(
    config: str = typer.Argument(
        ..., help="The node's config: a JSON object, or @FILE holding one."
    ),
) -> None:
    """Run one node process (what ProcessRuntime and DockerRuntime spawn)."""
    from reference.runtime.node_main import main

    raise typer.Exit(main([config]))


def bench_process(
    seconds: float = typer.Option(
        5.0, "--seconds", callback=in_range(0.5, 600.0, "s"), help="Measured time."
    ),
    clients: int = typer.Option(
        DEFAULT_CLIENTS,
        "--clients",
        min=1,
        max=4096,
        help="Client requests kept in flight at once (each of --batch transfers).",
    ),
    batch: int = typer.Option(8, "--batch", min=1, max=8190, help="Transfers per client request."),
    fsync: bool = typer.Option(True, "--fsync/--no-fsync", help="fsync the replicas' disks."),
    window_slots: int = typer.Option(
        DEFAULT_TUNING.window_slots,
        "--window-slots",
        min=1,
        max=1024,
        help="Paxos slots in flight at once.",
    ),
    batch_max_commands: int = typer.Option(
        DEFAULT_TUNING.batch_max_commands,
        "--batch-max-commands",
        min=1,
        max=4096,
        help="Client requests per Paxos slot.",
    ),
    gather: bool = typer.Option(
        DEFAULT_TUNING.propose_delay_ms is not None,
        "--gather/--no-gather",
        help="The leader proposes at the end of its loop's turn, so requests "
        "that arrived together share one slot (--no-gather: each at once).",
    ),
    defer_learn: bool = typer.Option(
        DEFAULT_TUNING.learn_delay_ms is not None,
        "--defer-learn/--no-defer-learn",
        help="Followers apply what an Accept says is committed on their loop's next "
        "turn, alongside the accept's fsync (off: in the handler, before it).",
    ),
    compare_pgbench: bool = typer.Option(
        False,
        "--compare-pgbench",
        help="Then run pgbench (PostgreSQL, fsync on, the same transfer, as many "
        "clients) on a throwaway cluster and print the ratio; skipped, saying why, "
        "when pgbench or a PostgreSQL server is not installed.",
    ),
    snapshot_every_slots: int = typer.Option(
        DEFAULT_TUNING.snapshot_every_slots,
        "--snapshot-every-slots",
        min=1,
        max=1_000_000,
        help="Compact the log this often.",
    ),
) -> None:
    """The Paxos ledger on real processes: 3 replicas on loopback, committed transfers/s.

    Who writes a replica's fsyncs: D11_DISK_WRITER=acks (the default: a small
    vote on the node's own loop, the rest on its disk's writer thread), thread
    (the writer thread always) or loop (the loop always).

    Exit status: 0 measured, 2 it could not measure (the reason is on stderr).
    """
    from reference.runtime.bench import (
        BenchError,
        ReplicaTuning,
        compare_with_pgbench,
        run_bench,
    )
    from reference.runtime.host import DiskWriterError, disk_writer_mode

    tuning = ReplicaTuning(
        window_slots=window_slots,
        batch_max_commands=batch_max_commands,
        propose_delay_ms=0.0 if gather else None,
        learn_delay_ms=0.0 if defer_learn else None,
        snapshot_every_slots=snapshot_every_slots,
    )
    try:
        disk_writer_mode()  # a misspelt D11_DISK_WRITER: said here, before any node starts
        report = run_bench(
            seconds=seconds, clients=clients, batch=batch, fsync=fsync, tuning=tuning
        )
    except (BenchError, DiskWriterError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if compare_pgbench:
        report.comparison = compare_with_pgbench(report)
    typer.echo(report.render())
