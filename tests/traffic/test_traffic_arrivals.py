"""Arrivals: determinism by seed, hot merchants by Zipf, rates in words."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference.traffic import (
    PEAK_2019_PER_S,
    PEAK_2020_PER_S,
    Arrival,
    DayShape,
    Population,
    Timeline,
    Traffic,
    Zipf,
    describe_rate,
    replay,
    scale_for,
)

FAST = Traffic(timeline=Timeline.compressed_day(24), population=Population(users=1_000))


def window(traffic: Traffic, seed: int, **kw: object) -> list[Arrival]:
    return list(traffic.arrivals(seed, 0.0, 2_000.0, **kw))  # type: ignore[arg-type]


def test_same_seed_same_orders_and_another_seed_other_orders() -> None:
    first = window(FAST, 7)
    assert len(first) > 500
    assert window(FAST, 7) == first
    assert window(FAST, 8) != first
    assert window(FAST, 7, name="client-2") != first


@given(seed=st.integers(0, 2**32), start_ms=st.floats(0, 1_000_000))
def test_arrivals_are_ordered_inside_the_window_and_well_formed(seed: int, start_ms: float) -> None:
    traffic = Traffic(scale=scale_for(50, PEAK_2019_PER_S), population=Population(users=100))
    end_ms = start_ms + 5_000.0
    arrivals = list(traffic.arrivals(seed, start_ms, end_ms))
    times = [a.time_ms for a in arrivals]
    assert times == sorted(times)
    assert all(start_ms <= t < end_ms for t in times)
    for a in arrivals:
        assert 0 <= a.user_id < 100
        assert 0 <= a.merchant_id < traffic.population.merchants
        assert 1 <= a.amount_cents <= traffic.population.amount_max_cents


def test_a_window_split_in_two_is_the_same_process_in_distribution() -> None:
    # Fractions summing to one, with distinct stream names, make the whole rate.
    whole = sum(len(window(FAST, s)) for s in range(5))
    halves = sum(
        len(window(FAST, s, name="left", fraction=0.5))
        + len(window(FAST, s, name="right", fraction=0.5))
        for s in range(5)
    )
    expected = 5 * FAST.expected_count(0.0, 2_000.0)
    assert whole == pytest.approx(expected, rel=0.03)
    assert halves == pytest.approx(expected, rel=0.03)


def test_hot_merchants_follow_zipf() -> None:
    traffic = Traffic(scale=0.02, timeline=Timeline.compressed_day(24))
    merchants = Counter(a.merchant_id for a in traffic.arrivals(3, 0.0, 4_000.0))
    n = sum(merchants.values())
    zipf = traffic.population.zipf
    assert n > 25_000
    # With 10,000 merchants and exponent 1, the top merchant takes 1/H(10000) ~ 10.2%.
    assert zipf.share(0) == pytest.approx(0.1022, abs=0.0005)
    assert merchants[0] / n == pytest.approx(zipf.share(0), abs=0.006)
    assert merchants[1] / n == pytest.approx(zipf.share(0) / 2, abs=0.005)
    top10 = sum(merchants[k] for k in range(10)) / n
    assert top10 == pytest.approx(zipf.top_share(10), abs=0.01)
    assert merchants.most_common(1)[0][0] == 0


def test_zipf_exponent_zero_is_uniform_and_steeper_is_hotter() -> None:
    assert Zipf(4, 0.0).share(0) == pytest.approx(0.25)
    assert Zipf(1_000, 1.5).share(0) > Zipf(1_000, 1.0).share(0)
    rng = random.Random(1)
    zipf = Zipf(5, 1.0)
    counts = Counter(zipf.sample(rng) for _ in range(50_000))
    for rank in range(5):
        assert counts[rank] / 50_000 == pytest.approx(zipf.share(rank), abs=0.01)
    assert sum(zipf.share(k) for k in range(5)) == pytest.approx(1.0)


def test_amounts_are_whole_cents_around_the_median() -> None:
    pop = Population(amount_median_cents=5_000, amount_sigma=0.5)
    rng = random.Random(2)
    amounts = sorted(pop.amount_cents(rng) for _ in range(10_001))
    assert all(isinstance(a, int) and a >= 1 for a in amounts)
    assert amounts[5_000] == pytest.approx(5_000, rel=0.05)


def test_rates_in_words_state_both_figures() -> None:
    scale = scale_for(1_200, PEAK_2019_PER_S)
    assert describe_rate(1_200, scale) == (
        "1,200 orders/s simulated = 544,000 orders/s at scale 1/453"
    )
    scale_2020 = scale_for(1_200, PEAK_2020_PER_S)
    assert describe_rate(600, scale_2020) == (
        "600 orders/s simulated = 291,500 orders/s at scale 1/486"
    )
    assert describe_rate(2.5, 1.0) == "2.5 orders/s simulated = 2.5 orders/s at scale 1"
    # The default plan replays the 2019 peak at 1,200 simulated orders/s.
    traffic = Traffic()
    peak_sim = traffic.rate_per_s(traffic.spike_at_ms)
    assert peak_sim == pytest.approx(1_200)
    assert traffic.real_rate_per_s(traffic.spike_at_ms) == pytest.approx(544_000)
    assert traffic.describe(peak_sim).endswith("= 544,000 orders/s at scale 1/453")


def test_double11_presets_replay_the_published_peaks() -> None:
    t2020 = Traffic.double11(2020, sim_peak_per_s=300, day_minutes=10)
    assert t2020.rate_per_s(t2020.spike_at_ms) == pytest.approx(300)
    assert t2020.describe(300) == "300 orders/s simulated = 583,000 orders/s at scale 1/1,943"
    assert t2020.timeline.sim_ms(86_400) == pytest.approx(600_000)
    t2019 = Traffic.double11()
    assert t2019.real_rate_per_s(t2019.spike_at_ms) == pytest.approx(544_000)
    assert t2019.timeline.speedup == 1.0
    with pytest.raises(ValueError, match="known: \\[2019, 2020\\]"):
        Traffic.double11(2021)


def test_the_2020_shape_peaks_at_583000() -> None:
    shape = DayShape.for_peak(PEAK_2020_PER_S)
    assert shape.rate_per_s(shape.spike_peak_s) == pytest.approx(583_000)
    assert shape.baseline_per_s == pytest.approx(5_830)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Traffic(scale=0.0), "scale"),
        (lambda: Traffic(scale=2.0), "scale"),
        (lambda: Timeline.compressed_day(0), "minutes"),
        (lambda: Population(users=0), "user"),
        (lambda: Zipf(0), "rank"),
        (lambda: list(FAST.arrivals(1, 0.0, 10.0, fraction=0.0)), "fraction"),
        (lambda: list(FAST.arrivals(1, 10.0, 0.0)), "start_ms"),
        (lambda: scale_for(10, 5), "simulated rate"),
    ],
)
def test_bad_plans_are_refused_with_a_clear_message(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]


def test_replay_submits_each_order_at_its_time_holding_one_pending() -> None:
    from reference.net.topology import Topology
    from reference.runtime.sim import SimRuntime

    rt = SimRuntime(topology=Topology.build({"hz": {"hz-1": ["n"]}}), seed=1)
    rt.start()
    orders = list(FAST.arrivals(5, 0.0, 1_000.0))
    assert len(orders) > 500
    seen: list[tuple[float, Arrival]] = []
    most_pending = 0

    def submit(arrival: Arrival) -> None:
        nonlocal most_pending
        most_pending = max(most_pending, rt.pending_events())
        seen.append((rt.now_ms, arrival))

    replay(FAST.arrivals(5, 0.0, 1_000.0), rt.call_at, submit)
    rt.run_until(1_000.0)
    assert [a for _, a in seen] == orders
    assert all(now_ms == a.time_ms for now_ms, a in seen)
    assert most_pending <= 1  # the next arrival is scheduled only when this one fires
