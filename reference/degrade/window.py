"""Sliding-window statistics on a caller-supplied clock (Sentinel's LeapArray).

A window of `interval_ms` is cut into `buckets` buckets of equal length
(Sentinel's default: 2 buckets of 500 ms). Each bucket counts what happened
while it was current: calls passed and blocked, successes, errors, slow
calls, the sum and the minimum of response times. A bucket older than the
window is reset the moment its slot is reused, so reading a window costs
`buckets` additions whatever the load.

Nothing here reads a clock: every method takes `now_ms`, so the same object
runs on the simulator's virtual time and in tests with made-up times.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Bucket", "SlidingWindow", "Statistics"]

DEFAULT_INTERVAL_MS = 1_000.0  # Sentinel: DEFAULT_WINDOW_INTERVAL_MS
DEFAULT_BUCKETS = 2  # Sentinel: DEFAULT_SAMPLE_COUNT
BUCKETS_MAX = 1_000  # a bound: reading a window touches every bucket
RT_MAX_MS = 5_000.0  # Sentinel: DEFAULT_STATISTIC_MAX_RT (longer RTs count as this)


@dataclass
class Bucket:
    start_ms: float = -1.0
    passed: int = 0
    blocked: int = 0
    success: int = 0
    error: int = 0
    slow: int = 0
    rt_sum_ms: float = 0.0
    rt_min_ms: float = RT_MAX_MS

    def reset(self, start_ms: float) -> None:
        self.start_ms = start_ms
        self.passed = self.blocked = self.success = self.error = self.slow = 0
        self.rt_sum_ms = 0.0
        self.rt_min_ms = RT_MAX_MS


# --8<-- [start:window]
@dataclass
class SlidingWindow:
    """Counts over the last `interval_ms`, in `buckets` buckets (a ring)."""

    interval_ms: float = DEFAULT_INTERVAL_MS
    buckets: int = DEFAULT_BUCKETS
    ring: list[Bucket] = field(init=False)
    bucket_ms: float = field(init=False)
    # The bucket the last call fell in and where it ends: most calls land in the
    # same bucket as the one before, and then finding it is one comparison.
    _last: Bucket = field(init=False, repr=False, compare=False)
    _last_end_ms: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        assert self.interval_ms > 0 and 1 <= self.buckets <= BUCKETS_MAX, self
        self.ring = [Bucket() for _ in range(self.buckets)]
        self.bucket_ms = self.interval_ms / self.buckets
        self._last = self.ring[0]
        self._last_end_ms = -1.0  # no call yet: the first one takes the long way

    def current(self, now_ms: float) -> Bucket:
        """The bucket `now_ms` falls in; a stale one is reset first."""
        last = self._last
        if last.start_ms <= now_ms < self._last_end_ms:
            return last  # the hot path: still inside the bucket of the last call
        assert now_ms >= 0, now_ms
        index = int(now_ms // self.bucket_ms)
        start_ms = index * self.bucket_ms
        bucket = self.ring[index % self.buckets]
        if bucket.start_ms != start_ms:
            # Older than the window (or never used): its counts belong to the past.
            assert bucket.start_ms < start_ms, "the clock went backwards"
            bucket.reset(start_ms)
        self._last, self._last_end_ms = bucket, start_ms + self.bucket_ms
        return bucket

    def valid(self, now_ms: float) -> list[Bucket]:
        """The buckets inside the window ending at `now_ms` (the current one included)."""
        self.current(now_ms)
        oldest_ms = now_ms - self.interval_ms
        return [b for b in self.ring if b.start_ms > oldest_ms and b.start_ms >= 0]

    # --8<-- [end:window]

    # -- recording ------------------------------------------------------------
    def add_pass(self, now_ms: float, n: int = 1) -> None:
        self.current(now_ms).passed += n

    def add_block(self, now_ms: float, n: int = 1) -> None:
        self.current(now_ms).blocked += n

    def add_complete(self, now_ms: float, rt_ms: float, *, error: bool, slow: bool) -> None:
        """One call ended after `rt_ms`: a success or an error, slow or not."""
        bucket = self._last  # `current`'s hot path, inline: this runs at every exit
        if not bucket.start_ms <= now_ms < self._last_end_ms:
            bucket = self.current(now_ms)
        # Plain comparisons, not min/max: this runs at the exit of every guarded call.
        if rt_ms < 0.0:
            rt_ms = 0.0
        elif rt_ms > RT_MAX_MS:
            rt_ms = RT_MAX_MS
        if error:
            bucket.error += 1
        else:
            bucket.success += 1
        if slow:
            bucket.slow += 1
        bucket.rt_sum_ms += rt_ms
        if rt_ms < bucket.rt_min_ms:
            bucket.rt_min_ms = rt_ms

    # -- reading ----------------------------------------------------------------
    def passed(self, now_ms: float) -> int:
        # The hot path of every QPS rule: no list, no generator, `current` only when
        # the call left the last call's bucket.
        if not self._last.start_ms <= now_ms < self._last_end_ms:
            self.current(now_ms)
        oldest_ms = now_ms - self.interval_ms
        total = 0
        for b in self.ring:
            if b.start_ms > oldest_ms and b.start_ms >= 0:
                total += b.passed
        return total

    def blocked(self, now_ms: float) -> int:
        return sum(b.blocked for b in self.valid(now_ms))

    def completed(self, now_ms: float) -> tuple[int, int, int]:
        """(total, errors, slow) calls that ended inside the window."""
        buckets = self.valid(now_ms)
        errors = sum(b.error for b in buckets)
        total = errors + sum(b.success for b in buckets)
        return total, errors, sum(b.slow for b in buckets)

    def pass_qps(self, now_ms: float) -> float:
        return self.passed(now_ms) * 1000.0 / self.interval_ms

    def success_qps_max(self, now_ms: float) -> float:
        """The best bucket's successes, as a per-second rate (Sentinel's maxSuccessQps)."""
        best = max((b.success for b in self.valid(now_ms)), default=0)
        return best * 1000.0 / self.bucket_ms

    def rt_min_ms(self, now_ms: float) -> float:
        """The smallest response time seen in the window (RT_MAX_MS if none)."""
        return min((b.rt_min_ms for b in self.valid(now_ms)), default=RT_MAX_MS)

    def rt_avg_ms(self, now_ms: float) -> float:
        buckets = self.valid(now_ms)
        n = sum(b.success + b.error for b in buckets)
        return sum(b.rt_sum_ms for b in buckets) / n if n else 0.0


@dataclass
class Statistics:
    """Windows per resource and per (resource, caller), plus calls in flight.

    Sentinel keeps a ClusterNode per resource and a StatisticNode per origin;
    this is the same split, on a caller-supplied clock.
    """

    interval_ms: float = DEFAULT_INTERVAL_MS
    buckets: int = DEFAULT_BUCKETS
    callers_max: int = 4_000  # a bound, like Sentinel's per-parameter LRU caps
    windows: dict[str, SlidingWindow] = field(default_factory=dict)
    by_caller: dict[tuple[str, str], SlidingWindow] = field(default_factory=dict)
    inflight: dict[str, int] = field(default_factory=dict)

    def window(self, resource: str) -> SlidingWindow:
        w = self.windows.get(resource)
        if w is None:
            w = self.windows[resource] = SlidingWindow(self.interval_ms, self.buckets)
        return w

    def caller_window(self, resource: str, caller: str) -> SlidingWindow | None:
        """The (resource, caller) window; None once `callers_max` are tracked."""
        key = (resource, caller)
        w = self.by_caller.get(key)
        if w is None:
            if len(self.by_caller) >= self.callers_max:
                return None  # bounded: new callers beyond the cap go uncounted per caller
            w = self.by_caller[key] = SlidingWindow(self.interval_ms, self.buckets)
        return w

    def enter(self, now_ms: float, resource: str, caller: str = "") -> None:
        # Runs on every guarded call: dict lookups first, the long way only when new.
        w = self.windows.get(resource) or self.window(resource)
        b = w._last  # `current`'s hot path, inline
        (b if b.start_ms <= now_ms < w._last_end_ms else w.current(now_ms)).passed += 1
        if caller:
            cw = self.by_caller.get((resource, caller)) or self.caller_window(resource, caller)
            if cw is not None:
                b = cw._last
                (b if b.start_ms <= now_ms < cw._last_end_ms else cw.current(now_ms)).passed += 1
        self.inflight[resource] = self.inflight.get(resource, 0) + 1

    def block(self, now_ms: float, resource: str, caller: str = "") -> None:
        self.window(resource).add_block(now_ms)
        if caller:
            w = self.caller_window(resource, caller)
            if w is not None:
                w.add_block(now_ms)

    def exit(
        self, now_ms: float, resource: str, rt_ms: float, *, error: bool, slow: bool = False,
        caller: str = "",
    ) -> None:  # fmt: skip
        inflight = self.inflight.get(resource, 0)
        assert inflight > 0, f"exit without entry on {resource}"
        self.inflight[resource] = inflight - 1
        (self.windows.get(resource) or self.window(resource)).add_complete(
            now_ms, rt_ms, error=error, slow=slow
        )
        if caller:
            w = self.by_caller.get((resource, caller)) or self.caller_window(resource, caller)
            if w is not None:
                w.add_complete(now_ms, rt_ms, error=error, slow=slow)

    def concurrency(self, resource: str) -> int:
        return self.inflight.get(resource, 0)
