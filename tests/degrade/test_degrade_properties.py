"""Property tests of the degrade controls on a simulated clock (no wall clock anywhere)."""

from __future__ import annotations

import itertools
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from reference.degrade import (
    TRANSITIONS,
    Breaker,
    BreakerRule,
    FlowRule,
    FlowRules,
    RateLimiter,
    RetryThrottle,
    Statistics,
)

times = st.lists(st.floats(0, 10_000, allow_nan=False), min_size=1, max_size=400).map(sorted)


@given(times, st.integers(1, 50), st.sampled_from([(1000.0, 2), (1000.0, 10), (2000.0, 4)]))
def test_qps_rule_never_admits_more_than_its_count_per_window(
    arrivals_ms: list[float], count: int, window: tuple[float, int]
) -> None:
    interval_ms, buckets = window
    stats = Statistics(interval_ms, buckets)
    rules = FlowRules(stats)
    rules.load([FlowRule("pay", count)])
    admitted = []
    for t in arrivals_ms:
        if rules.check(t, "pay").passed:
            stats.enter(t, "pay")
            admitted.append(t)
    # The guarantee is Sentinel's: any window of `interval_ms` made of whole buckets
    # holds at most count per second of it (so does any span of interval - bucket ms).
    bucket_ms = interval_ms / buckets
    for k in range(int(10_000 // bucket_ms) + 1):
        start = k * bucket_ms
        inside = sum(1 for t in admitted if start <= t < start + interval_ms)
        assert inside <= count * interval_ms / 1000.0, (start, inside, count)


@given(st.lists(st.booleans(), min_size=1, max_size=300), st.integers(1, 20))
def test_concurrency_rule_never_lets_more_in_flight(ops: list[bool], count: int) -> None:
    stats = Statistics()
    rules = FlowRules(stats)
    rules.load([FlowRule("pay", count, grade="concurrency")])
    for i, enter in enumerate(ops):
        t = float(i)
        if enter and rules.check(t, "pay").passed:
            stats.enter(t, "pay")
        elif not enter and stats.concurrency("pay"):
            stats.exit(t, "pay", 1.0, error=False)
        assert stats.concurrency("pay") <= count


@given(times, st.floats(1, 500), st.floats(0, 1000))
def test_rate_limiter_spaces_calls_and_bounds_the_wait(
    arrivals_ms: list[float], count: float, max_wait_ms: float
) -> None:
    limiter = RateLimiter(count, max_wait_ms)
    starts = []
    for t in arrivals_ms:
        d = limiter.check(t)
        if d.passed:
            assert 0 <= d.wait_ms <= max_wait_ms
            starts.append(t + d.wait_ms)
    cost_ms = 1000.0 / count
    for a, b in itertools.pairwise(starts):
        assert b - a >= cost_ms - 1e-6
    # Hence any window of L ms starts at most L / cost + 1 calls.
    for i, a in enumerate(starts):
        inside = sum(1 for b in starts[i:] if b < a + 1000.0)
        assert inside <= math.floor(1000.0 / cost_ms + 1e-9) + 1


@settings(max_examples=20)
@given(st.integers(10, 300), st.integers(2, 10))  # tiny counts warm up slower (whole seconds)
def test_warm_up_reaches_full_rate_after_its_period_and_not_before(
    count: int, period_s: int
) -> None:
    stats = Statistics()
    rules = FlowRules(stats)
    rules.load([FlowRule("pay", count, behavior="warm-up", warm_up_period_ms=period_s * 1000.0)])
    per_s: dict[int, int] = {}
    step_ms = 1000.0 / (count * 3)  # demand at three times the rule's count
    t = 0.0
    while t < (period_s + 4) * 1000.0:
        if rules.check(t, "pay").passed:
            stats.enter(t, "pay")
            stats.exit(t, "pay", 1.0, error=False)
            per_s[int(t // 1000)] = per_s.get(int(t // 1000), 0) + 1
        t += step_ms
    assert per_s[0] <= count / 3 + 1  # cold: count / cold_factor
    for s in range(period_s):
        assert per_s.get(s, 0) < count, (s, per_s)  # not before the period is over
    # Full rate once the period is over; tokens move in whole seconds and calls in
    # whole numbers, which costs small rules up to two more seconds.
    for s in range(period_s + 2, period_s + 4):
        assert per_s[s] >= count - 1, (s, per_s)


events = st.lists(
    st.tuples(st.sampled_from(["call", "ok", "error", "slow", "wait"]), st.floats(0, 3000)),
    max_size=200,
)


@given(events, st.sampled_from(["slow-ratio", "error-ratio", "error-count"]), st.integers(1, 4))
def test_breaker_follows_its_table(ops: list[tuple[str, float]], grade: str, probes: int) -> None:
    threshold = 2.0 if grade == "error-count" else 0.5
    rule = BreakerRule("dep", grade, threshold, slow_rt_ms=100.0, open_ms=2_000.0,  # type: ignore[arg-type]
                       probes=probes, probe_timeout_ms=1_000.0)  # fmt: skip
    b = Breaker(rule)
    table = {(t.source, t.event, t.target) for t in TRANSITIONS}
    now_ms = 0.0
    out = 0  # calls let through and not yet ended
    for kind, x in ops:
        if kind == "wait":
            now_ms += x
            b.tick(now_ms)
        elif kind == "call":
            state = b.state
            passed = b.try_pass(now_ms)
            if state == "open" and now_ms < b.open_until_ms:
                assert not passed
            out += passed
        elif out:
            out -= 1
            rt_ms = 500.0 if kind == "slow" else 10.0
            b.on_complete(now_ms, rt_ms, error=kind == "error")
        if b.state == "half-open":
            assert b.probes_out + b.probes_ok <= probes
            assert now_ms - b.half_open_since_ms < rule.probe_timeout_ms  # never stuck
    for _when, source, event, target in b.log:
        assert (source, event, target) in table
    states = ["closed"] + [target for *_, target in b.log]
    assert all(b.log[i][1] == states[i] for i in range(len(b.log)))  # a chain of moves
    assert b.state == states[-1]


@given(st.lists(st.booleans(), max_size=500), st.integers(2, 100), st.floats(0.01, 1.0))
def test_retry_budget_is_never_exceeded(
    outcomes: list[bool], max_tokens: int, ratio: float
) -> None:
    throttle = RetryThrottle(float(max_tokens), ratio)
    successes = 0
    for ok in outcomes:
        if ok:
            throttle.on_success()
            successes += 1
        else:
            throttle.on_failure()
            throttle.allow_retry()
        assert 0 <= throttle.tokens <= max_tokens
    # Each allowed retry followed a failure that left more than half the bucket:
    # only the top half of the bucket plus what successes paid back can be spent.
    assert throttle.retries <= max_tokens / 2 + ratio * successes + 1
