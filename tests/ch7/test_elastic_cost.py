"""The elastic-cell cost model: the seeds' ">50% saving" tested against the day's shape."""

from __future__ import annotations

from reference.capacity.elastic import ElasticPlan, cells_needed, plan_elastic
from reference.traffic.shape import DAY_S, HOUR_S, PEAK_2019_PER_S, DayShape

DAY = DayShape.for_peak(PEAK_2019_PER_S)
CELL_PER_S = 20_000.0  # real payments per second one cell carries


def test_a_flat_day_saves_nothing() -> None:
    flat = DayShape(baseline_per_s=50_000, daily_amplitude=0.0, spike_multiplier=1.0,
                    secondary_multiplier=0.0)  # fmt: skip
    cost = plan_elastic(flat, ElasticPlan(CELL_PER_S))
    assert cost.owned_cells == cost.peak_cells == 3  # 1.1 x 50,000 / 20,000
    assert cost.saving == 0.0


def test_the_spike_is_never_missed_between_samples() -> None:
    need = cells_needed(DAY, ElasticPlan(CELL_PER_S, step_s=HOUR_S), 0.0, HOUR_S)
    assert need == [30]  # ceil(1.1 x 544,000 / 20,000): the 1 s peak, inside an hour's step


def test_the_seeds_saving_holds_for_short_rentals_and_fails_for_a_whole_day() -> None:
    hourly = plan_elastic(DAY, ElasticPlan(CELL_PER_S))
    pricier = plan_elastic(DAY, ElasticPlan(CELL_PER_S, rent_block_s=4 * HOUR_S, rent_price=1.5))
    daily = plan_elastic(DAY, ElasticPlan(CELL_PER_S, rent_block_s=DAY_S))
    assert hourly.saving > 0.8  # rented by the hour, at the owned price
    assert 0.5 < pricier.saving < hourly.saving  # 4-hour blocks at 1.5x: still over half
    assert daily.saving == 0.0  # rented for the whole day: the peak fleet, all day
    assert daily.owned_cells == daily.peak_cells


def test_longer_blocks_and_dearer_rent_never_save_more() -> None:
    savings = [
        plan_elastic(DAY, ElasticPlan(CELL_PER_S, rent_block_s=h * HOUR_S, rent_price=p)).saving
        for h, p in ((1, 1.0), (2, 1.0), (4, 1.0), (4, 2.0), (8, 2.0))
    ]
    assert savings == sorted(savings, reverse=True), savings
