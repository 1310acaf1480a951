"""The load shape: spike and evening peak where and as big as configured.

Figures are measured from generated arrivals, not read back from the formula,
so a bug in the thinning (a bound too low, a lost segment) shows up here too.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference.traffic import HOUR_S, DayShape, Timeline, Traffic

# A shape small enough to count exactly at scale 1: peak 20,000/s.
SHAPE = DayShape(baseline_per_s=200.0, spike_multiplier=100.0, spike_decay_s=300.0)


def measured_rate_per_s(traffic: Traffic, seed: int, start_s: float, end_s: float) -> float:
    """Arrivals per second of day time in [start_s, end_s), counted."""
    tl = traffic.timeline
    n = sum(1 for _ in traffic.arrivals(seed, tl.sim_ms(start_s), tl.sim_ms(end_s)))
    return n / (end_s - start_s)


def test_spike_starts_at_midnight_and_reaches_the_configured_peak() -> None:
    traffic = Traffic(shape=SHAPE, scale=1.0)
    before = measured_rate_per_s(traffic, 1, -5.0, 0.0)
    peak = measured_rate_per_s(traffic, 1, 1.0, 2.0)
    # Just before midnight: the daily curve (0.75 of baseline at 00:00).
    assert before == pytest.approx(0.75 * 200.0, rel=0.15)
    # One second after: 100x baseline (the decay costs 0.2% over that second).
    assert peak == pytest.approx(100 * 200.0, rel=0.03)


@pytest.mark.parametrize(("multiplier", "decay_s"), [(100.0, 300.0), (40.0, 60.0)])
def test_spike_height_and_decay_follow_the_configuration(multiplier: float, decay_s: float) -> None:
    shape = DayShape(baseline_per_s=200.0, spike_multiplier=multiplier, spike_decay_s=decay_s)
    traffic = Traffic(shape=shape, scale=1.0)
    peak = measured_rate_per_s(traffic, 2, 1.0, 2.0)
    one_tau = measured_rate_per_s(traffic, 3, 1.0 + decay_s - 0.5, 1.0 + decay_s + 0.5)
    assert peak == pytest.approx(multiplier * 200.0, rel=0.04)
    # After one time constant the excess over the baseline has fallen by e.
    assert one_tau / peak == pytest.approx(1 / math.e, rel=0.06)


def test_secondary_peak_at_20h_as_configured() -> None:
    shape = DayShape(baseline_per_s=200.0, secondary_multiplier=15.0, secondary_width_s=900.0)
    traffic = Traffic(shape=shape, scale=1.0)
    at_20h = measured_rate_per_s(traffic, 4, 20 * HOUR_S - 5, 20 * HOUR_S + 5)
    at_19h = measured_rate_per_s(traffic, 5, 19 * HOUR_S - 5, 19 * HOUR_S + 5)
    assert at_20h == pytest.approx(15.0 * 200.0, rel=0.03)
    # An hour earlier (four widths away) only the daily curve is left.
    assert at_19h == pytest.approx(shape.rate_per_s(19 * HOUR_S), rel=0.1)
    assert at_19h < at_20h / 5


def test_the_day_is_quiet_between_the_peaks() -> None:
    shape = DayShape()
    rates = {h: shape.rate_per_s(h * HOUR_S) for h in range(1, 19)}
    assert max(rates.values()) <= shape.baseline_per_s * (1 + shape.daily_amplitude)
    assert min(rates, key=rates.__getitem__) == 4  # the trough at 04:00
    assert shape.peak_per_s == pytest.approx(544_000)
    assert shape.rate_per_s(shape.spike_peak_s) == pytest.approx(544_000)


def test_compressed_day_keeps_the_shape() -> None:
    """24 h in 24 simulated minutes: same rates, at the same fraction of the run."""
    real = Traffic(shape=SHAPE, scale=0.5)
    fast = Traffic(shape=SHAPE, scale=0.5, timeline=Timeline.compressed_day(24))
    day_ms = 24 * 60_000.0
    assert fast.timeline.sim_ms(24 * HOUR_S) == pytest.approx(day_ms)
    assert fast.secondary_at_ms == pytest.approx(20 * 60_000.0)
    for hour in (0.0001, 0.05, 3.0, 12.0, 20.0, 23.9):
        sim_ms = hour / 24 * day_ms
        assert fast.rate_per_s(sim_ms) == pytest.approx(real.rate_per_s(hour * HOUR_S * 1000))

    # Measured: the spike and the evening peak at their configured heights,
    # now within a few hundred simulated milliseconds of each other.
    def rate(start_ms: float, end_ms: float) -> float:
        n = sum(1 for _ in fast.arrivals(6, start_ms, end_ms))
        return n / ((end_ms - start_ms) / 1000)

    spike_ms = fast.spike_at_ms
    assert rate(spike_ms, spike_ms + 50) == pytest.approx(0.5 * 100 * 200.0, rel=0.06)
    evening_ms = fast.secondary_at_ms
    assert rate(evening_ms - 500, evening_ms + 500) == pytest.approx(0.5 * 20 * 200.0, rel=0.05)
    # The whole compressed day holds the day's orders divided by the speedup.
    total = sum(1 for _ in fast.arrivals(6, 0.0, day_ms))
    assert total == pytest.approx(fast.expected_count(0.0, day_ms), rel=0.02)


def test_counts_per_hour_match_the_rate_over_a_compressed_day() -> None:
    fast = Traffic(shape=SHAPE, scale=0.2, timeline=Timeline.compressed_day(24))
    counts = [0] * 24
    for arrival in fast.arrivals(8, 0.0, 24 * 60_000.0):
        counts[int(arrival.time_ms // 60_000.0)] += 1
    for hour, count in enumerate(counts):
        expected = fast.expected_count(hour * 60_000.0, (hour + 1) * 60_000.0, steps=2_000)
        # Poisson: the standard deviation is sqrt(expected); allow 5 of them.
        assert abs(count - expected) <= 5 * math.sqrt(expected) + 1, (hour, count, expected)


@given(
    start_s=st.floats(-2 * 86_400, 2 * 86_400),
    width_s=st.floats(0, 20_000),
    decay_s=st.floats(1, 5_000),
    rise_s=st.floats(0.01, 100),
)
def test_the_thinning_bound_is_never_below_the_rate(
    start_s: float, width_s: float, decay_s: float, rise_s: float
) -> None:
    shape = DayShape(spike_decay_s=decay_s, spike_rise_s=rise_s)
    bound = shape.max_rate_per_s(start_s, start_s + width_s)
    for i in range(41):
        t = start_s + width_s * i / 40
        assert shape.rate_per_s(t) <= bound * (1 + 1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"spike_multiplier": 0.5}, "spike_multiplier"),
        ({"spike_decay_s": 0.0}, "spike_decay_s"),
        ({"baseline_per_s": -1.0}, "baseline_per_s"),
        ({"daily_amplitude": 1.0}, "daily_amplitude"),
    ],
)
def test_bad_shapes_are_refused_with_a_clear_message(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DayShape(**kwargs)
