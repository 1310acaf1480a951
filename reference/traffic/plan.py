"""A traffic plan: the day's shape, scaled down, on a simulated timeline.

Three conversions stand between the real Double 11 and a simulated client:

- scale: one laptop cannot replay 544,000 orders per second, so every
  simulated order stands for 1/scale real ones. A report always states both
  figures (`describe_rate`), so a reader never mistakes one for the other.
- timeline: simulated time (ms, from 0) maps to day time (s since midnight).
  A compressed day replays 24 hours in a few simulated minutes. Compression
  squeezes the shape in time but keeps the rates: what stresses a system is
  orders per second, so the spike hits at full (scaled) height, only sooner.
- arrivals: a non-homogeneous Poisson process drawn by thinning, each arrival
  a (time_ms, user_id, merchant_id, amount_cents) from the population.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from reference.sim.rng import stream
from reference.traffic.population import Population
from reference.traffic.shape import DAY_S, PEAK_2019_PER_S, PEAK_2020_PER_S, DayShape

__all__ = [
    "DEFAULT_SCALE",
    "PEAKS_PER_S",
    "Arrival",
    "Timeline",
    "Traffic",
    "describe_rate",
    "format_scale",
    "replay",
    "scale_for",
]


def scale_for(sim_per_s: float, real_per_s: float) -> float:
    """The scale at which `sim_per_s` simulated orders/s stand for `real_per_s`."""
    if not 0 < sim_per_s <= real_per_s:
        raise ValueError(f"need 0 < simulated rate <= real rate, not {sim_per_s} and {real_per_s}")
    return sim_per_s / real_per_s


# The published peaks, real orders per second (2019 and 2020).
PEAKS_PER_S: dict[int, int] = {2019: PEAK_2019_PER_S, 2020: PEAK_2020_PER_S}

# The 2019 peak replayed at 1,200 orders per simulated second.
DEFAULT_SCALE = scale_for(1_200, PEAK_2019_PER_S)


def format_scale(scale: float) -> str:
    """'1/453' for a scale of 1/453.3: one simulated order per 453 real ones."""
    assert 0 < scale <= 1, scale
    return "1" if scale == 1 else f"1/{round(1 / scale):,}"


def _format_rate(per_s: float) -> str:
    if per_s >= 100 or per_s == int(per_s):
        return f"{per_s:,.0f}"
    return f"{per_s:.3g}" if per_s >= 0.001 else f"{per_s:.2e}"


def describe_rate(sim_per_s: float, scale: float, unit: str = "orders/s") -> str:
    """'1,200 orders/s simulated = 544,000 orders/s at scale 1/453'."""
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], not {scale}")
    real_per_s = sim_per_s / scale
    return (
        f"{_format_rate(sim_per_s)} {unit} simulated = "
        f"{_format_rate(real_per_s)} {unit} at scale {format_scale(scale)}"
    )


@dataclass(frozen=True)
class Timeline:
    """Simulated time -> day time: `day_s = day_start_s + sim_s * speedup`."""

    day_start_s: float = 0.0  # the day time at simulated time 0 (0 = midnight)
    speedup: float = 1.0  # day seconds replayed per simulated second

    def __post_init__(self) -> None:
        if not self.speedup > 0:
            raise ValueError(f"speedup must be > 0, not {self.speedup}")

    @classmethod
    def compressed_day(cls, minutes: float, day_start_s: float = 0.0) -> Timeline:
        """A whole day (24 h from `day_start_s`) replayed in `minutes` simulated minutes."""
        if not minutes > 0:
            raise ValueError(f"a compressed day needs minutes > 0, not {minutes}")
        return cls(day_start_s=day_start_s, speedup=DAY_S / (minutes * 60.0))

    def day_s(self, sim_ms: float) -> float:
        return self.day_start_s + sim_ms / 1000.0 * self.speedup

    def sim_ms(self, day_s: float) -> float:
        return (day_s - self.day_start_s) / self.speedup * 1000.0


class Arrival(NamedTuple):
    """One order entering the system."""

    time_ms: float  # simulated time
    user_id: int
    merchant_id: int
    amount_cents: int


@dataclass(frozen=True)
class Traffic:
    """The shape, the scale, the timeline and the population, together."""

    shape: DayShape = field(default_factory=DayShape)
    scale: float = DEFAULT_SCALE  # simulated orders per real order
    timeline: Timeline = field(default_factory=Timeline)
    population: Population = field(default_factory=Population)

    def __post_init__(self) -> None:
        if not 0 < self.scale <= 1:
            raise ValueError(f"scale must be in (0, 1], not {self.scale}")

    @classmethod
    def double11(
        cls,
        year: int = 2019,
        sim_peak_per_s: float = 1_200.0,
        day_minutes: float | None = None,
        population: Population | None = None,
    ) -> Traffic:
        """The Double 11 of `year`, its peak replayed at `sim_peak_per_s`.

        `day_minutes`: replay the whole day in that many simulated minutes
        (None: in real time).
        """
        if year not in PEAKS_PER_S:
            raise ValueError(
                f"no Double 11 peak on record for {year}; known: {sorted(PEAKS_PER_S)}"
            )
        peak_per_s = PEAKS_PER_S[year]
        return cls(
            shape=DayShape.for_peak(peak_per_s),
            scale=scale_for(sim_peak_per_s, peak_per_s),
            timeline=Timeline() if day_minutes is None else Timeline.compressed_day(day_minutes),
            population=population or Population(),
        )

    def rate_per_s(self, sim_ms: float) -> float:
        """Simulated orders per simulated second at simulated time `sim_ms`."""
        return self.shape.rate_per_s(self.timeline.day_s(sim_ms)) * self.scale

    def real_rate_per_s(self, sim_ms: float) -> float:
        """The real-world orders per second that rate stands for."""
        return self.shape.rate_per_s(self.timeline.day_s(sim_ms))

    def describe(self, sim_per_s: float) -> str:
        """A simulated rate in words, with the real rate it stands for."""
        return describe_rate(sim_per_s, self.scale)

    @property
    def spike_at_ms(self) -> float:
        """Simulated time of the midnight peak."""
        return self.timeline.sim_ms(self.shape.spike_peak_s)

    @property
    def secondary_at_ms(self) -> float:
        """Simulated time of the 20:00 peak."""
        return self.timeline.sim_ms(self.shape.secondary_at_s)

    # --8<-- [start:traffic-arrivals]
    def arrivals(
        self,
        seed: int,
        start_ms: float,
        end_ms: float,
        *,
        name: str = "traffic",
        fraction: float = 1.0,
    ) -> Iterator[Arrival]:
        """Orders arriving in [start_ms, end_ms), in time order, from stream `name`.

        A non-homogeneous Poisson process by thinning (Lewis and Shedler):
        within each short segment, draw candidates at the segment's highest
        rate, and keep a candidate at time t with probability rate(t) / highest.
        `fraction` takes a share of the traffic: clients with fractions
        summing to 1 (and distinct names) together make the whole process.
        """
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], not {fraction}")
        if not start_ms <= end_ms:
            raise ValueError(f"need start_ms <= end_ms, not {start_ms} > {end_ms}")
        rng = stream(seed, name)
        # Segments of 10 s of day time keep the bound tight around the spike.
        segment_ms = self.timeline.sim_ms(self.timeline.day_start_s + 10.0)
        segment_start_ms = start_ms
        while segment_start_ms < end_ms:
            segment_end_ms = min(end_ms, segment_start_ms + segment_ms)
            yield from self._segment(rng, segment_start_ms, segment_end_ms, fraction)
            segment_start_ms = segment_end_ms

    def _segment(
        self, rng: random.Random, start_ms: float, end_ms: float, fraction: float
    ) -> Iterator[Arrival]:
        day = self.timeline
        bound_per_s = (
            fraction
            * self.scale
            * self.shape.max_rate_per_s(day.day_s(start_ms), day.day_s(end_ms))
        )
        if bound_per_s <= 0:
            return
        t_ms = start_ms
        while True:
            t_ms += rng.expovariate(bound_per_s) * 1000.0
            if t_ms >= end_ms:
                return
            rate_per_s = fraction * self.rate_per_s(t_ms)
            assert rate_per_s <= bound_per_s * (1 + 1e-9), (rate_per_s, bound_per_s)
            if rng.random() * bound_per_s < rate_per_s:
                pop = self.population
                yield Arrival(t_ms, pop.user(rng), pop.merchant(rng), pop.amount_cents(rng))

    # --8<-- [end:traffic-arrivals]

    def expected_count(self, start_ms: float, end_ms: float, steps: int = 10_000) -> float:
        """The mean number of arrivals in [start_ms, end_ms] (midpoint rule)."""
        assert 1 <= steps <= 10_000_000, steps
        width_ms = (end_ms - start_ms) / steps
        total = math.fsum(self.rate_per_s(start_ms + (i + 0.5) * width_ms) for i in range(steps))
        return total * width_ms / 1000.0


def replay(
    arrivals: Iterable[Arrival],
    call_at: Callable[[float, Callable[[], object]], object],
    submit: Callable[[Arrival], object],
) -> None:
    """Feed `arrivals` into a simulation: `submit(arrival)` runs at `arrival.time_ms`.

    `call_at` is the simulator's scheduler (`SimRuntime.call_at`). Each
    arrival schedules the next one when it fires, so the event queue holds
    one pending arrival rather than a whole day of them, and arrivals are
    drawn lazily, as the simulation reaches them. The first arrival must not
    lie in the simulation's past.
    """
    upcoming = iter(arrivals)

    def schedule_next() -> None:
        arrival = next(upcoming, None)
        if arrival is not None:
            call_at(arrival.time_ms, lambda: fire(arrival))

    def fire(arrival: Arrival) -> None:
        submit(arrival)
        schedule_next()

    schedule_next()
