"""The Double 11 load shape: orders per second as a function of the time of day.

Time here is *day time*: seconds since midnight that opens November 11
(negative values are the evening of November 10). Rates are real-world orders
per second; `reference.traffic.plan` scales them down to what one laptop
replays.

The shape is the highest of three envelopes, each a multiple of the quiet
baseline:

- the daily curve: a slow wave, lowest at 04:00 and highest at 16:00;
- the midnight spike: a near-vertical climb to `spike_multiplier` times the
  baseline in `spike_rise_s`, then an exponential decay with time constant
  `spike_decay_s` (minutes, not hours: the rush is over quickly);
- the secondary peak: a bell around 20:00 reaching `secondary_multiplier`.

Taking the maximum instead of the sum keeps every configured figure exact:
the spike peaks at precisely `spike_multiplier` times the baseline, whatever
the daily curve does underneath, so a test can measure it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "DAY_S",
    "HOUR_S",
    "PEAK_2019_PER_S",
    "PEAK_2020_PER_S",
    "DayShape",
]

HOUR_S = 3_600.0
DAY_S = 24 * HOUR_S

# Published Double 11 peaks of order creation, per second: 2019, and 2020
# (583,000 orders/s, 26 s after midnight, as Alibaba announced it).
PEAK_2019_PER_S = 544_000
PEAK_2020_PER_S = 583_000


# --8<-- [start:traffic-shape]
@dataclass(frozen=True)
class DayShape:
    """Real-world orders per second over the day of November 11."""

    baseline_per_s: float = PEAK_2019_PER_S / 100  # the quiet level
    daily_amplitude: float = 0.5  # the daily wave spans baseline * (1 -/+ this)
    daily_trough_s: float = 4 * HOUR_S  # quietest moment: 04:00
    spike_multiplier: float = 100.0  # the midnight peak, in baselines
    spike_rise_s: float = 1.0  # from baseline to the peak: near-vertical
    spike_decay_s: float = 300.0  # time constant of the decay after the peak
    secondary_multiplier: float = 20.0  # the evening peak, in baselines
    secondary_at_s: float = 20 * HOUR_S  # 20:00
    secondary_width_s: float = 900.0  # standard deviation of the evening bell

    def rate_per_s(self, day_s: float) -> float:
        """Orders per second at `day_s` seconds after midnight."""
        return self.baseline_per_s * max(
            self._daily(day_s), self._spike(day_s), self._secondary(day_s)
        )

    def _daily(self, day_s: float) -> float:
        phase = 2 * math.pi * (day_s - self.daily_trough_s) / DAY_S
        return 1.0 - self.daily_amplitude * math.cos(phase)

    def _spike(self, day_s: float) -> float:
        if day_s < 0:
            return 0.0  # November 10: the sale has not started
        climb = min(1.0, day_s / self.spike_rise_s)
        after_peak_s = max(0.0, day_s - self.spike_rise_s)
        return self.spike_multiplier * climb * math.exp(-after_peak_s / self.spike_decay_s)

    def _secondary(self, day_s: float) -> float:
        z = (day_s - self.secondary_at_s) / self.secondary_width_s
        return self.secondary_multiplier * math.exp(-0.5 * z * z)

    # --8<-- [end:traffic-shape]

    def __post_init__(self) -> None:
        if not self.baseline_per_s >= 0:
            raise ValueError(f"baseline_per_s must be >= 0, not {self.baseline_per_s}")
        if not 0 <= self.daily_amplitude < 1:
            raise ValueError(f"daily_amplitude must be in [0, 1), not {self.daily_amplitude}")
        if not self.spike_multiplier >= 1:
            raise ValueError(f"spike_multiplier must be >= 1, not {self.spike_multiplier}")
        if not self.secondary_multiplier >= 0:
            raise ValueError(f"secondary_multiplier must be >= 0, not {self.secondary_multiplier}")
        for name in ("spike_rise_s", "spike_decay_s", "secondary_width_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, not {getattr(self, name)}")

    @classmethod
    def for_peak(cls, peak_per_s: float, spike_multiplier: float = 100.0, **kw: float) -> DayShape:
        """The shape whose midnight spike reaches `peak_per_s` real orders per second."""
        if not peak_per_s > 0:
            raise ValueError(f"peak_per_s must be > 0, not {peak_per_s}")
        if not spike_multiplier >= 1:
            raise ValueError(f"spike_multiplier must be >= 1, not {spike_multiplier}")
        return cls(
            baseline_per_s=peak_per_s / spike_multiplier, spike_multiplier=spike_multiplier, **kw
        )

    @property
    def spike_peak_s(self) -> float:
        """Day time at which the midnight spike is highest."""
        return self.spike_rise_s

    @property
    def peak_per_s(self) -> float:
        """The highest rate of the whole day."""
        top = max(self.spike_multiplier, self.secondary_multiplier, 1 + self.daily_amplitude)
        return self.baseline_per_s * top

    def max_rate_per_s(self, start_s: float, end_s: float) -> float:
        """An exact upper bound of `rate_per_s` over [start_s, end_s].

        Each envelope is unimodal (the daily wave once per day), so its
        maximum over an interval is at an end or at its mode when the mode
        lies inside. Thinning needs this bound: too low and arrivals are
        lost, too high and draws are wasted.
        """
        assert start_s <= end_s, (start_s, end_s)
        daily_top = max(self._daily(start_s), self._daily(end_s))
        crest_s = self.daily_trough_s + DAY_S / 2
        k = math.ceil((start_s - crest_s) / DAY_S)
        if crest_s + k * DAY_S <= end_s:
            daily_top = 1.0 + self.daily_amplitude
        spike_top = max(self._spike(start_s), self._spike(end_s))
        if start_s <= self.spike_rise_s <= end_s:
            spike_top = self.spike_multiplier
        secondary_top = max(self._secondary(start_s), self._secondary(end_s))
        if start_s <= self.secondary_at_s <= end_s:
            secondary_top = self.secondary_multiplier
        bound = self.baseline_per_s * max(daily_top, spike_top, secondary_top)
        assert bound >= self.rate_per_s(start_s) and bound >= self.rate_per_s(end_s)
        return bound
