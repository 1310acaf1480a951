"""Elastic cells: what renting cells for the peak saves, against the day's shape.

Alipay's seed material claims elastic cells (cells started on borrowed cloud
machines for Double 11 and handed back after) saved more than 50% of the
cost of owning the peak's capacity. Whether that holds is a property of
the traffic shape, of how cells are rented, and of what an owned cell-hour
costs next to a rented one. This model computes it, in cell-hours:

- **demand**: cells needed at each moment, `ceil(headroom x rate / cell
  capacity)`, from the exact upper bound of the shape's rate over each step
  (`DayShape.max_rate_per_s`), so no spike falls between two samples;
- **static**: own enough cells for the highest demand, all the time;
- **elastic**: own `owned` cells; rent the rest in whole blocks
  (`rent_block_s`), each started `lead_s` before the block that needs it
  (a cell boots, warms its caches and joins the routing rules before it
  takes traffic), at `rent_price` owned cell-hours per rented cell-hour.
  `plan_elastic` picks the `owned` that costs least.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from reference.traffic.shape import DAY_S, HOUR_S, DayShape

__all__ = ["ElasticCost", "ElasticPlan", "cells_needed", "plan_elastic"]


@dataclass(frozen=True)
class ElasticPlan:
    cell_capacity_per_s: float  # what one cell carries (real payments per second)
    headroom: float = 1.1  # capacity over demand (chapter 7's readiness rule)
    rent_block_s: float = HOUR_S  # rented cells are paid for in whole blocks
    lead_s: float = 30 * 60.0  # ... and started this long before they take traffic
    rent_price: float = 1.0  # a rented cell-hour, in owned cell-hours
    step_s: float = 60.0  # demand is taken per step (its exact maximum within)

    def __post_init__(self) -> None:
        assert self.cell_capacity_per_s > 0 and self.headroom >= 1, self
        assert self.rent_block_s > 0 and self.lead_s >= 0 and self.rent_price > 0, self
        assert 0 < self.step_s <= self.rent_block_s, self


@dataclass(frozen=True)
class ElasticCost:
    static_cell_hours: float
    elastic_cell_hours: float  # owned + rented (at rent_price)
    owned_cells: int
    peak_cells: int
    rented_cell_hours: float  # before rent_price

    @property
    def saving(self) -> float:
        """The share of the static cost that elastic cells save (0.5: half)."""
        return 1.0 - self.elastic_cell_hours / self.static_cell_hours


def cells_needed(shape: DayShape, plan: ElasticPlan, start_s: float, end_s: float) -> list[int]:
    """Cells needed in each `step_s` step of [start_s, end_s)."""
    out = []
    t = start_s
    while t < end_s:
        top = shape.max_rate_per_s(t, min(t + plan.step_s, end_s))
        out.append(max(1, math.ceil(plan.headroom * top / plan.cell_capacity_per_s)))
        t += plan.step_s
    return out


def plan_elastic(
    shape: DayShape, plan: ElasticPlan, start_s: float = 0.0, end_s: float = DAY_S
) -> ElasticCost:
    """Static against the cheapest elastic fleet over [start_s, end_s)."""
    need = cells_needed(shape, plan, start_s, end_s)
    hours = (end_s - start_s) / HOUR_S
    peak = max(need)
    per_block = max(1, round(plan.rent_block_s / plan.step_s))
    lead_steps = math.ceil(plan.lead_s / plan.step_s)
    best: ElasticCost | None = None
    for owned in range(1, peak + 1):
        rented_h = 0.0
        for b in range(0, len(need), per_block):
            # The block's cells run from `lead` before it starts to its end.
            extra = max(0, max(need[b : b + per_block]) - owned)
            span_steps = per_block + (lead_steps if extra else 0)
            rented_h += extra * span_steps * plan.step_s / HOUR_S
        cost = ElasticCost(peak * hours, owned * hours + plan.rent_price * rented_h,
                           owned, peak, rented_h)  # fmt: skip
        if best is None or cost.elastic_cell_hours < best.elastic_cell_hours:
            best = cost
    assert best is not None
    return best
