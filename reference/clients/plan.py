"""What a client is asked to do: the plan its deployment writes and it follows.

The plan is plain data shared between the code that drives a run (a chapter
scenario, a harness) and the client nodes. The client looks at it on a short
tick, so traffic can be planned after the clients have started, and the
final reads (what the checkers judge) can be scheduled when the faults end.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["ClientPlan", "ClosedLoop", "Payment"]


@dataclass(frozen=True, slots=True)
class Payment:
    """One payment a client will attempt (open loop: at `time_ms`)."""

    time_ms: float
    buyer: str
    merchant: str
    amount_cents: int
    load_test: bool = False  # chapter 7: tagged `mark=T`, served from shadow data


@dataclass(frozen=True)
class ClosedLoop:
    """Keep `concurrency` payments outstanding in [start_ms, end_ms) (saturation).

    Each outstanding payment is a slot; when one ends, its slot starts the
    next, so a deployment can pin slots (to a cell, say) through `make`.
    """

    start_ms: float
    end_ms: float
    concurrency: int
    make: Callable[[random.Random, float, int], Payment]  # (rng, now_ms, slot) -> payment

    def __post_init__(self) -> None:
        assert 1 <= self.concurrency <= 10_000 and self.start_ms < self.end_ms, self


@dataclass
class ClientPlan:
    """One client's plan. Arrivals must be appended in time order."""

    arrivals: deque[Payment] = field(default_factory=deque)
    closed: list[ClosedLoop] = field(default_factory=list)
    read_interval_ms: float = 0.0  # periodic full reads during traffic (0: none)
    traffic_until_ms: float = 0.0  # periodic reads stop here
    refund_ratio: float = 0.0  # share of paid payments later refunded
    reconcile_at_ms: float | None = None  # ask again about payments that ended unknown
    # Set by the client once it is done paying: no arrival left, no payment in
    # flight, every payment that ended unknown asked again and answered, and
    # (with `final_lookups`) looked up.
    reconciled: bool = False
    final_read_at_ms: float | None = None  # then take the final reads...
    final_read_gate: Callable[[], bool] | None = None  # ...once this says every client is done
    final_payments_read: bool = False  # also read which payments each store holds
    # Before the final reads, settle every payment that ended unknown with a
    # lookup by id that also fences it (`reference.clients.messages`): the
    # ledger of chapter 4 answers it exactly, through its log.
    final_lookups: bool = False
    final_read_deadline_ms: float = 30_000.0  # a final read may wait behind a backlog
