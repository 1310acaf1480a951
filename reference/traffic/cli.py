"""`d11 traffic`: print the Double 11 load shape a run will replay.

The table gives, for moments of the day, the simulated rate and the real rate
it stands for; below it, figures measured from generated arrivals (the spike,
the hottest merchant), so what the plan promises and what clients will send
can be compared at a glance.
"""

from __future__ import annotations

import typer

from reference.cli_options import in_range, seed_range
from reference.traffic.plan import PEAKS_PER_S, Traffic
from reference.traffic.population import Population
from reference.traffic.shape import DAY_S, HOUR_S, DayShape

__all__ = ["register"]

# Moments of the day shown in the table (day seconds; negative: November 10).
_MOMENTS_S = (
    -60.0,
    0.0,
    1.0,
    60.0,
    300.0,
    900.0,
    1_800.0,
    HOUR_S,
    4 * HOUR_S,
    12 * HOUR_S,
    19 * HOUR_S,
    19.75 * HOUR_S,
    20 * HOUR_S,
    20.25 * HOUR_S,
    23 * HOUR_S,
)
_BAR_WIDTH = 24
_MEASURE_WINDOW_MS = 1_000.0  # simulated time of arrivals drawn to measure the spike
_MEASURE_WINDOW_DAY_S = 10.0  # ... and at least this much day time


def _clock(day_s: float) -> str:
    """'00:00:01' for 1.0, '23:59:00' for -60.0 (the evening before)."""
    whole_s = round(day_s) % round(DAY_S)
    hours, rest = divmod(whole_s, 3_600)
    return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


def _sim_clock(sim_ms: float) -> str:
    """'1:02:03.500' (h:mm:ss.mmm) of simulated time; '-' before the run starts."""
    if sim_ms < 0:
        return "-"
    minutes, seconds = divmod(sim_ms / 1000.0, 60.0)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours:d}:{minutes:02d}:{seconds:06.3f}"


def build_traffic(
    year: int,
    sim_peak_per_s: float,
    day_minutes: float | None,
    spike: float,
    decay_s: float,
    evening: float,
    merchants: int,
) -> Traffic:
    """The plan the options describe; ValueError with a clear message if they are bad."""
    base = Traffic.double11(year, sim_peak_per_s, day_minutes)
    shape = DayShape.for_peak(
        PEAKS_PER_S[year],
        spike_multiplier=spike,
        spike_decay_s=decay_s,
        secondary_multiplier=evening,
    )
    return Traffic(
        shape=shape,
        scale=base.scale,
        timeline=base.timeline,
        population=Population(merchants=merchants),
    )


def show(traffic: Traffic, year: int, seed: int) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    peak_per_s = traffic.rate_per_s(traffic.spike_at_ms)
    console.print(f"[bold]Double 11, {year}[/]: {traffic.describe(peak_per_s)}")
    speedup = traffic.timeline.speedup
    if speedup == 1.0:
        console.print("day replayed in real time")
    else:
        console.print(f"day replayed in {DAY_S / speedup / 60:g} simulated minutes")

    table = Table(box=None, pad_edge=False)
    table.add_column("day time")
    table.add_column("sim time", justify="right")
    table.add_column("simulated/s", justify="right")
    table.add_column("stands for/s", justify="right")
    table.add_column("")
    for day_s in _MOMENTS_S:
        sim_ms = traffic.timeline.sim_ms(day_s)
        sim_per_s = traffic.shape.rate_per_s(day_s) * traffic.scale
        bar = "█" * max(1, round(_BAR_WIDTH * sim_per_s / peak_per_s))
        table.add_row(
            _clock(day_s) + (" (Nov 10)" if day_s < 0 else ""),
            _sim_clock(sim_ms),
            f"{sim_per_s:,.1f}",
            f"{sim_per_s / traffic.scale:,.0f}",
            f"[red]{bar}[/]",
        )
    console.print(table)

    # Measured, not computed: what seeded clients will actually send.
    start_ms = traffic.spike_at_ms
    end_ms = start_ms + max(
        _MEASURE_WINDOW_MS,
        traffic.timeline.sim_ms(traffic.shape.spike_peak_s + _MEASURE_WINDOW_DAY_S) - start_ms,
    )
    arrivals = list(traffic.arrivals(seed, start_ms, end_ms))
    expected = traffic.expected_count(start_ms, end_ms)
    window_s = (end_ms - start_ms) / 1000.0
    hottest = sum(1 for a in arrivals if a.merchant_id == 0)
    share = hottest / len(arrivals) if arrivals else 0.0
    console.print(
        f"first {window_s:g} simulated s after the spike, seed {seed}: "
        f"{len(arrivals):,} orders (the plan expects {expected:,.0f})"
    )
    console.print(f"  = {traffic.describe(len(arrivals) / window_s)}")
    console.print(
        f"hottest merchant: {share:.1%} of those orders "
        f"(Zipf over {traffic.population.merchants:,} merchants: "
        f"{traffic.population.zipf.share(0):.1%})"
    )


def register(app: typer.Typer, bench: typer.Typer) -> None:
    @app.command("traffic")
    def traffic_command(
        year: int = typer.Option(
            2019,
            callback=in_range(1990, 2100),
            help="Whose peak: 2019 (544,000/s) or 2020 (583,000/s).",
        ),
        sim_peak: float = typer.Option(
            1_200.0,
            callback=in_range(0.001, 100_000),
            help="Simulated orders/s at the midnight peak.",
        ),
        day_minutes: float = typer.Option(
            0.0,
            callback=in_range(0, 10_080),
            help="Replay the whole day in this many simulated minutes (0: real time).",
        ),
        spike: float = typer.Option(
            100.0, callback=in_range(1, 10_000), help="Midnight peak, in multiples of the baseline."
        ),
        decay_s: float = typer.Option(
            300.0, callback=in_range(0.001, 86_400), help="Time constant of the spike's decay (s)."
        ),
        evening: float = typer.Option(
            20.0, callback=in_range(0, 10_000), help="The 20:00 peak, in multiples of the baseline."
        ),
        merchants: int = typer.Option(
            10_000, callback=in_range(1, 10_000_000), help="Merchants (popularity by Zipf's law)."
        ),
        seed: int = typer.Option(
            7, callback=seed_range(), help="Seed of the arrivals measured below the table."
        ),
    ) -> None:
        """Show the Double 11 load shape: simulated rates and what they stand for."""
        try:
            if year not in PEAKS_PER_S:
                known = ", ".join(map(str, sorted(PEAKS_PER_S)))
                raise ValueError(f"no Double 11 peak on record for {year} (known: {known})")
            if day_minutes < 0:
                raise ValueError(f"--day-minutes must be >= 0, not {day_minutes:g}")
            traffic = build_traffic(
                year, sim_peak, day_minutes or None, spike, decay_s, evening, merchants
            )
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        show(traffic, year, seed)

    del bench  # traffic has no benchmark: generating arrivals is not a claim we make
