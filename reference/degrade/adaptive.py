"""Adaptive protection: limits that follow what the service can do right now.

Two designs, compared under the same spike in chapter 6:

- `SystemRule`: Sentinel's system rule in its BBR form. A node refuses an
  inbound call when more calls are in flight than it has shown it can
  finish: in_flight > max_success_qps * min_rt_ms / 1000 (Little's law with
  the best throughput and the best latency of the last window). Optional
  plain caps (total QPS, in flight, average RT) as Sentinel also has.
- `Gradient2`: Netflix concurrency-limits' Gradient2Limit (Envoy's adaptive
  concurrency filter is the same idea). The limit on calls in flight moves by
  the ratio of the long-run RTT to the recent RTT: when latency rises above
  its long-run level the limit shrinks, when it falls back the limit grows by
  a queue allowance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from reference.degrade.window import SlidingWindow

__all__ = ["Gradient2", "SystemRule"]


# --8<-- [start:system-rule]
@dataclass(frozen=True)
class SystemRule:
    bbr: bool = True  # Sentinel checks BBR when load is high; here always when True
    qps_max: float = -1.0  # -1: no cap (Sentinel's defaults are all -1)
    inflight_max: int = -1
    rt_avg_max_ms: float = -1.0

    def blocks(self, now_ms: float, window: SlidingWindow, inflight: int) -> str:
        """Why an inbound call is refused now ("" when it may go)."""
        if self.qps_max >= 0 and window.pass_qps(now_ms) + 1 > self.qps_max:
            return "system:qps"
        if self.inflight_max >= 0 and inflight + 1 > self.inflight_max:
            return "system:inflight"
        if self.rt_avg_max_ms >= 0 and window.rt_avg_ms(now_ms) > self.rt_avg_max_ms:
            return "system:rt"
        if self.bbr and inflight > 1:
            capacity = window.success_qps_max(now_ms) * window.rt_min_ms(now_ms) / 1000.0
            if inflight > capacity:
                return "system:bbr"
        return ""


# --8<-- [end:system-rule]


# --8<-- [start:gradient2]
@dataclass
class Gradient2:
    """Netflix's Gradient2Limit, sample by sample.

    gradient  = clamp(tolerance * long_rtt / short_rtt, 0.5, 1.0)
    new_limit = limit * gradient + queue_size
    limit     = limit * (1 - smoothing) + new_limit * smoothing, in [min, max]

    `long_rtt` is an exponential average over `long_window` samples; when the
    recent RTT has been far below it (a ratio above 2) it decays faster, so a
    past slowdown does not hold the limit open. While fewer than half the
    limit are in flight, the limit does not grow (the app, not the limit,
    decides the load).
    """

    limit: float = 20.0  # Netflix: initialLimit 20
    limit_min: float = 20.0  # Netflix: minLimit 20
    limit_max: float = 200.0  # Netflix: maxConcurrency 200
    smoothing: float = 0.2
    queue_size: float = 4.0
    long_window: int = 600
    tolerance: float = 1.5  # Netflix's rttTolerance (not among the verified facts)
    long_rtt_ms: float = 0.0
    samples: int = 0
    history: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        assert 1 <= self.limit_min <= self.limit <= self.limit_max, self
        assert 0 < self.smoothing <= 1 and self.long_window >= 1, self

    def on_sample(self, rtt_ms: float, inflight: int) -> float:
        """One call ended after `rtt_ms` with `inflight` calls out: the new limit."""
        assert rtt_ms >= 0 and inflight >= 0
        short_ms = max(rtt_ms, 1e-3)
        self.samples += 1
        if self.samples == 1:
            self.long_rtt_ms = short_ms
        else:
            n = min(self.samples, self.long_window)
            self.long_rtt_ms += (short_ms - self.long_rtt_ms) / n
        if self.long_rtt_ms / short_ms > 2:
            self.long_rtt_ms *= 0.9  # recovering: let the long view follow the short one
        if inflight < self.limit / 2:
            return self.limit  # not using the limit: nothing learned about it
        gradient = max(0.5, min(1.0, self.tolerance * self.long_rtt_ms / short_ms))
        new_limit = self.limit * gradient + self.queue_size
        smoothed = self.limit * (1 - self.smoothing) + new_limit * self.smoothing
        self.limit = max(self.limit_min, min(self.limit_max, smoothed))
        assert math.isfinite(self.limit)
        return self.limit

    def allows(self, inflight: int) -> bool:
        return inflight + 1 <= int(self.limit)


# --8<-- [end:gradient2]
