"""Double 11 traffic: the day's load shape, who orders from whom, and arrivals.

- `DayShape` (shape.py): real orders per second over the day of November 11.
- `Population`, `Zipf` (population.py): users, and merchants with hot ones.
- `Traffic`, `Timeline`, `Arrival` (plan.py): the shape scaled down to what a
  laptop replays, on a simulated (optionally compressed) timeline, and the
  seeded arrival process simulated clients draw orders from; `replay` feeds
  it into a running simulation, one pending arrival at a time.

Everything here is pure and deterministic: the same seed gives the same orders.
"""

from reference.traffic.plan import (
    DEFAULT_SCALE,
    PEAKS_PER_S,
    Arrival,
    Timeline,
    Traffic,
    describe_rate,
    format_scale,
    replay,
    scale_for,
)
from reference.traffic.population import Population, Zipf
from reference.traffic.shape import DAY_S, HOUR_S, PEAK_2019_PER_S, PEAK_2020_PER_S, DayShape

__all__ = [
    "DAY_S",
    "DEFAULT_SCALE",
    "HOUR_S",
    "PEAKS_PER_S",
    "PEAK_2019_PER_S",
    "PEAK_2020_PER_S",
    "Arrival",
    "DayShape",
    "Population",
    "Timeline",
    "Traffic",
    "Zipf",
    "describe_rate",
    "format_scale",
    "replay",
    "scale_for",
]
