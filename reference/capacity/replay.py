"""Open-model replay of recorded traffic, scaled (Iago, k6's arrival-rate executors).

A recording is the arrivals of a production run: when each payment started
and between whom. A replay schedules them again, at `factor` times the
recorded rate (inter-arrival times divided by `factor`, the recording looped
to fill the window). Open model: arrivals are fixed in advance and never
wait for replies, so a slow system meets the full load and its queue grows,
instead of the load generator slowing down with it (coordinated omission).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from reference.clients.plan import Payment

__all__ = ["REPLAY_MAX", "recorded_arrivals", "replay_arrivals"]

REPLAY_MAX = 1_000_000  # arrivals one replay may schedule


def recorded_arrivals(history: Iterable[Any]) -> list[Payment]:
    """The production payments a history's clients started, in time order.

    `history`: events with type, f, value and time_ms (checks.history.Event).
    """
    out = [
        Payment(float(e.time_ms), e.value["from"], e.value["to"], int(e.value["amount_cents"]))
        for e in history
        if e.type == "invoke" and e.f == "transfer" and isinstance(e.value, dict)
    ]
    out.sort(key=lambda p: p.time_ms)
    return out


# --8<-- [start:replay]
def replay_arrivals(
    recorded: list[Payment],
    factor: float,
    start_ms: float,
    end_ms: float,
    *,
    load_test: bool = True,
) -> list[Payment]:
    """`recorded` again from `start_ms` to `end_ms` at `factor` times its rate."""
    assert factor > 0 and start_ms <= end_ms, (factor, start_ms, end_ms)
    if not recorded:
        return []
    t0 = recorded[0].time_ms
    span_ms = max(recorded[-1].time_ms - t0, 1e-3) * len(recorded) / max(len(recorded) - 1, 1)
    period_ms = span_ms / factor  # one pass of the recording, compressed
    out: list[Payment] = []
    loop = 0
    while len(out) < REPLAY_MAX:
        base_ms = start_ms + loop * period_ms
        if base_ms >= end_ms:
            break
        for p in recorded:
            t_ms = base_ms + (p.time_ms - t0) / factor
            if t_ms >= end_ms or len(out) >= REPLAY_MAX:
                break
            out.append(Payment(t_ms, p.buyer, p.merchant, p.amount_cents, load_test))
        loop += 1
    return out


# --8<-- [end:replay]
