"""Flow rules with Sentinel's semantics, on a caller-supplied clock.

A rule limits one resource by a *grade* (calls per second, or calls in
flight), a *behaviour* when the limit is reached, and a *strategy* that says
whose statistics are compared with the limit:

- grade `qps` or `concurrency` (Sentinel: FLOW_GRADE_QPS, FLOW_GRADE_THREAD);
- behaviour `reject` (the default: block at once), `warm-up` (a cold start
  at count / cold_factor that ramps to count over the warm-up period, Guava's
  SmoothWarmingUp as Sentinel ports it) or `rate-limiter` (a leaky bucket: calls
  leave evenly spaced, a call waits its turn up to `max_queueing_time_ms`);
- strategy `direct` (this resource's own numbers), `relate` (limit this
  resource when the related resource `ref_resource` is hot) or `chain` (only
  calls that came in through the entry point `ref_resource`).

`limit_app` restricts a rule to one caller ("default": every caller).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from reference.degrade.window import SlidingWindow, Statistics

__all__ = [
    "FlowDecision",
    "FlowRule",
    "FlowRules",
    "RateLimiter",
    "WarmUp",
]

Grade = Literal["qps", "concurrency"]
Behavior = Literal["reject", "warm-up", "rate-limiter"]
Strategy = Literal["direct", "relate", "chain"]

COLD_FACTOR = 3.0  # Sentinel: DEFAULT_COLD_FACTOR (csp.sentinel.flow.cold.factor)
WARM_UP_PERIOD_MS = 10_000.0  # Sentinel: warmUpPeriodSec = 10
MAX_QUEUEING_TIME_MS = 500.0  # Sentinel: maxQueueingTimeMs = 500
RULES_MAX = 1_000  # a bound on rules per resource


# --8<-- [start:flow-rule]
@dataclass(frozen=True)
class FlowRule:
    resource: str
    count: float  # calls per second (qps) or calls in flight (concurrency)
    grade: Grade = "qps"
    behavior: Behavior = "reject"
    strategy: Strategy = "direct"
    ref_resource: str = ""  # relate: the related resource; chain: the entry point
    limit_app: str = "default"  # "default": every caller; else only this caller
    warm_up_period_ms: float = WARM_UP_PERIOD_MS
    cold_factor: float = COLD_FACTOR
    max_queueing_time_ms: float = MAX_QUEUEING_TIME_MS

    def __post_init__(self) -> None:
        assert self.count >= 0, self
        assert self.grade in ("qps", "concurrency"), self
        assert self.behavior in ("reject", "warm-up", "rate-limiter"), self
        assert self.strategy in ("direct", "relate", "chain"), self
        assert self.strategy == "direct" or self.ref_resource, "relate/chain name a resource"
        assert self.behavior == "reject" or self.grade == "qps", "only qps rules shape traffic"
        assert self.cold_factor > 1 and self.warm_up_period_ms > 0, self


# --8<-- [end:flow-rule]


@dataclass(frozen=True)
class FlowDecision:
    passed: bool
    wait_ms: float = 0.0  # rate-limiter: how long the call must wait before it goes
    reason: str = ""  # why it was blocked: "flow:<resource>"


PASS = FlowDecision(True)


# --8<-- [start:warm-up]
@dataclass
class WarmUp:
    """Guava's SmoothWarmingUp in Sentinel's form: tokens stored while idle slow the start.

    warning_tokens = period_s * count / (cold_factor - 1)
    max_tokens     = warning_tokens + 2 * period_s * count / (1 + cold_factor)
    slope          = (cold_factor - 1) / count / (max_tokens - warning_tokens)

    With `stored` tokens above the warning line, the allowed rate is
    1 / ((stored - warning) * slope + 1 / count): count / cold_factor when
    full (cold), count once the tokens are down to the warning line. Tokens
    refill once a second (while below the warning line, or while traffic is
    below count / cold_factor) and are spent by the calls that passed in the
    previous second. It starts cold. The per-second steps make a tiny rule
    (a count of a few calls a second) warm up more slowly than its period.
    """

    count: float
    period_ms: float = WARM_UP_PERIOD_MS
    cold_factor: float = COLD_FACTOR
    warning_tokens: float = field(init=False)
    max_tokens: float = field(init=False)
    slope: float = field(init=False)
    stored_tokens: float = field(init=False)
    last_filled_s: int | None = None
    second: int = -1  # the second `passed_this_s` counts
    passed_this_s: int = 0
    passed_prev_s: int = 0

    def __post_init__(self) -> None:
        assert self.count > 0 and self.cold_factor > 1, self
        period_s = self.period_ms / 1000.0
        self.warning_tokens = period_s * self.count / (self.cold_factor - 1)
        self.max_tokens = self.warning_tokens + 2 * period_s * self.count / (1 + self.cold_factor)
        self.slope = (self.cold_factor - 1) / self.count / (self.max_tokens - self.warning_tokens)
        self.stored_tokens = self.max_tokens  # cold

    def _roll(self, now_ms: float) -> None:
        sec = int(now_ms // 1000)
        if sec != self.second:
            self.passed_prev_s = self.passed_this_s if sec == self.second + 1 else 0
            self.passed_this_s = 0
            self.second = sec

    def _sync(self, now_ms: float) -> None:
        sec = int(now_ms // 1000)
        if self.last_filled_s is None:
            self.last_filled_s = sec
            return
        if sec <= self.last_filled_s:
            return
        old = self.stored_tokens
        new = old
        refill = (sec - self.last_filled_s) * self.count
        # Sentinel compares with (int) count / coldFactor: an integer division.
        slow_qps = int(self.count) // int(self.cold_factor)
        if old < self.warning_tokens or self.passed_prev_s < slow_qps:
            new = min(old + refill, self.max_tokens)
        self.stored_tokens = max(new - self.passed_prev_s, 0.0)
        self.last_filled_s = sec

    def allowed_qps(self) -> float:
        """The rate the stored tokens allow right now."""
        above = self.stored_tokens - self.warning_tokens
        if above <= 0:
            return self.count
        return 1.0 / (above * self.slope + 1.0 / self.count)

    def check(self, now_ms: float, pass_qps: float, acquire: int = 1) -> bool:
        self._roll(now_ms)
        self._sync(now_ms)
        ok = pass_qps + acquire <= self.allowed_qps() + 1e-9
        if ok:
            self.passed_this_s += acquire
        return ok


# --8<-- [end:warm-up]


# --8<-- [start:rate-limiter]
@dataclass
class RateLimiter:
    """Sentinel's ThrottlingController: calls leave evenly spaced, 1000 / count ms apart.

    A call that would have to wait longer than `max_queueing_time_ms` is
    blocked; a call that may go is told how long to wait first.
    """

    count: float
    max_queueing_time_ms: float = MAX_QUEUEING_TIME_MS
    latest_passed_ms: float = -math.inf

    def check(self, now_ms: float, acquire: int = 1) -> FlowDecision:
        if self.count <= 0:
            return FlowDecision(False, reason="rate-limiter")
        cost_ms = acquire * 1000.0 / self.count
        expected_ms = self.latest_passed_ms + cost_ms
        if expected_ms <= now_ms:
            self.latest_passed_ms = now_ms
            return PASS
        wait_ms = expected_ms - now_ms
        if wait_ms > self.max_queueing_time_ms:
            return FlowDecision(False, reason="rate-limiter")
        self.latest_passed_ms = expected_ms
        return FlowDecision(True, wait_ms=wait_ms)


# --8<-- [end:rate-limiter]


@dataclass
class FlowRules:
    """Every flow rule of a node, with the state their behaviours keep."""

    stats: Statistics
    rules: list[FlowRule] = field(default_factory=list)
    warm: dict[int, WarmUp] = field(default_factory=dict)
    limiters: dict[int, RateLimiter] = field(default_factory=dict)
    # resource -> its rules, with their index and whether the rule is plain (a QPS
    # count on the resource's own window, for every caller, rejecting): a call looks
    # only at its own, and a plain rule is one comparison with the window's count.
    by_resource: dict[str, tuple[tuple[int, FlowRule, bool], ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.load(self.rules)  # rules given at construction are indexed like loaded ones

    def load(self, rules: list[FlowRule] | tuple[FlowRule, ...]) -> None:
        """Replace the rules (a live change): shaping state starts afresh."""
        assert len(rules) <= RULES_MAX
        self.rules = list(rules)
        self.warm = {}
        self.limiters = {}
        for i, r in enumerate(self.rules):
            if r.behavior == "warm-up":
                self.warm[i] = WarmUp(r.count, r.warm_up_period_ms, r.cold_factor)
            elif r.behavior == "rate-limiter":
                self.limiters[i] = RateLimiter(r.count, r.max_queueing_time_ms)
        by_resource: dict[str, list[tuple[int, FlowRule, bool]]] = {}
        for i, r in enumerate(self.rules):
            plain = (r.grade, r.behavior, r.strategy, r.limit_app) == ("qps", "reject", "direct",
                                                                      "default")  # fmt: skip
            by_resource.setdefault(r.resource, []).append((i, r, plain))
        self.by_resource = {res: tuple(rules) for res, rules in by_resource.items()}

    def check(
        self, now_ms: float, resource: str, caller: str = "", entry: str = "", acquire: int = 1
    ) -> FlowDecision:
        """May one call of `resource` from `caller`, entered through `entry`, go now?"""
        wait_ms = 0.0
        for i, rule, plain in self.by_resource.get(resource, ()):
            if plain:  # the common rule, without a call: passed QPS + this call <= count
                own = self.stats.windows.get(resource) or self.stats.window(resource)
                qps = own.passed(now_ms) * 1000.0 / own.interval_ms
                if qps + acquire > rule.count + 1e-9:
                    return FlowDecision(False, reason=f"flow:{resource}")
                continue
            if rule.limit_app != "default" and rule.limit_app != caller:
                continue
            if rule.behavior == "rate-limiter":  # no statistics needed: only the spacing
                if rule.strategy == "chain" and entry != rule.ref_resource:
                    continue
                decision = self.limiters[i].check(now_ms, acquire)
            else:
                window, inflight = self._observed(rule, resource, caller, entry)
                if window is None:
                    continue  # chain rule, another entry point: not ours to limit
                decision = self._behave(i, rule, now_ms, window, inflight, acquire)
            if not decision.passed:
                return FlowDecision(False, reason=f"flow:{resource}")
            if decision.wait_ms > wait_ms:
                wait_ms = decision.wait_ms
        return FlowDecision(True, wait_ms=wait_ms) if wait_ms else PASS

    def _observed(
        self, rule: FlowRule, resource: str, caller: str, entry: str
    ) -> tuple[SlidingWindow | None, int]:
        """Whose numbers the rule compares with its count (the strategy)."""
        stats = self.stats
        if rule.strategy == "relate":
            return stats.window(rule.ref_resource), stats.concurrency(rule.ref_resource)
        if rule.strategy == "chain":
            if entry != rule.ref_resource:
                return None, 0
            key = f"{resource}@{entry}"
            return stats.window(key), stats.concurrency(key)
        if rule.limit_app != "default":
            w = stats.caller_window(resource, caller)
            return (w if w is not None else stats.window(resource)), stats.concurrency(resource)
        return stats.window(resource), stats.concurrency(resource)

    def _behave(
        self, i: int, rule: FlowRule, now_ms: float, window: SlidingWindow, inflight: int,
        acquire: int,
    ) -> FlowDecision:  # fmt: skip
        if rule.grade == "concurrency":
            return PASS if inflight + acquire <= rule.count else FlowDecision(False)
        if rule.behavior == "rate-limiter":
            return self.limiters[i].check(now_ms, acquire)
        pass_qps = window.pass_qps(now_ms)
        if rule.behavior == "warm-up":
            return PASS if self.warm[i].check(now_ms, pass_qps, acquire) else FlowDecision(False)
        return PASS if pass_qps + acquire <= rule.count + 1e-9 else FlowDecision(False)
