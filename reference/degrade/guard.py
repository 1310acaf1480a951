"""One guarded call: the rules in Sentinel's slot order, as entry and exit.

    e = guard.entry(now_ms, "pay", caller="gw-edge", args={"merchant": "m:3"})
    if isinstance(e, Blocked): refuse, saying e.reason
    else: (wait e.wait_ms if the rate limiter asked) ... do the work ...
          guard.exit(now_ms, e, error=False)

Order on entry: the system rule (inbound calls only), the adaptive
concurrency limit, hot-parameter rules, flow rules, then the circuit
breaker, which is last so that a call it lets through as a half-open probe
is not then blocked by another rule (the way Sentinel's probe could stick).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from reference.degrade.adaptive import Gradient2, SystemRule
from reference.degrade.breaker import Breaker, BreakerRule
from reference.degrade.flow import FlowRule, FlowRules
from reference.degrade.hot import ParamFlowRule, ParamLimiter
from reference.degrade.window import Statistics

__all__ = ["Blocked", "Entry", "Guard", "GuardConfig"]

_NO_ARGS: Mapping[str, str] = {}  # shared, never written: a call without arguments


@dataclass(frozen=True)
class GuardConfig:
    flow: tuple[FlowRule, ...] = ()
    params: tuple[ParamFlowRule, ...] = ()
    system: SystemRule | None = None
    gradient2: bool = False  # an adaptive concurrency limit per resource
    gradient2_min: float = 2.0
    gradient2_initial: float = 4.0
    gradient2_max: float = 200.0
    breakers: tuple[BreakerRule, ...] = ()
    interval_ms: float = 1_000.0
    buckets: int = 2


class Entry(NamedTuple):  # a tuple: the cheapest record Python builds on a hot path
    resource: str
    start_ms: float
    caller: str
    chain: str  # the entry point's stats key ("" when none)
    wait_ms: float  # the rate limiter's queueing time before the call may run


class Blocked(NamedTuple):
    reason: str  # "system:bbr", "adaptive", "param:merchant", "flow:pay", "breaker:notify"


@dataclass
class Guard:
    config: GuardConfig
    stats: Statistics = field(init=False)
    flow: FlowRules = field(init=False)
    params: list[ParamLimiter] = field(init=False)
    # resource -> its hot-parameter limiters: a call looks only at its own.
    params_by_resource: dict[str, tuple[ParamLimiter, ...]] = field(init=False)
    breakers: dict[str, Breaker] = field(init=False)
    limits: dict[str, Gradient2] = field(default_factory=dict)

    def __post_init__(self) -> None:
        c = self.config
        self.stats = Statistics(c.interval_ms, c.buckets)
        self.flow = FlowRules(self.stats)
        self.flow.load(c.flow)
        self.params = [ParamLimiter(r) for r in c.params]
        by_resource: dict[str, list[ParamLimiter]] = {}
        for limiter in self.params:
            by_resource.setdefault(limiter.rule.resource, []).append(limiter)
        self.params_by_resource = {r: tuple(ls) for r, ls in by_resource.items()}
        self.breakers = {r.resource: Breaker(r) for r in c.breakers}

    def limit(self, resource: str) -> Gradient2:
        g = self.limits.get(resource)
        if g is None:
            c = self.config
            g = self.limits[resource] = Gradient2(
                limit=c.gradient2_initial, limit_min=c.gradient2_min, limit_max=c.gradient2_max
            )
        return g

    def entry(
        self, now_ms: float, resource: str, *, caller: str = "", entry: str = "",
        args: Mapping[str, str] | None = None, inbound: bool = True,
    ) -> Entry | Blocked:  # fmt: skip
        stats = self.stats
        reason = self._check(now_ms, resource, caller, entry, args or _NO_ARGS, inbound)
        if isinstance(reason, str):
            stats.block(now_ms, resource, caller)
            return Blocked(reason)
        chain = f"{resource}@{entry}" if entry else ""
        stats.enter(now_ms, resource, caller)
        if chain:
            stats.enter(now_ms, chain)
        return Entry(resource, now_ms, caller, chain, reason)

    def _check(
        self, now_ms: float, resource: str, caller: str, entry: str,
        args: Mapping[str, str], inbound: bool,
    ) -> str | float:  # fmt: skip
        """The reason to block, or (a float) how long the call must queue first."""
        stats = self.stats
        config = self.config
        if inbound and config.system is not None:
            why = config.system.blocks(now_ms, stats.window(resource), stats.concurrency(resource))
            if why:
                return why
        if config.gradient2 and not self.limit(resource).allows(stats.concurrency(resource)):
            return "adaptive"
        taken: list[tuple[ParamLimiter, str]] = []  # a call without hot parameters: stays empty
        for limiter in self.params_by_resource.get(resource, ()):
            rule = limiter.rule
            value = args.get(rule.param)
            if value is None:
                continue
            if not limiter.check(now_ms, value):
                self._refund(taken)
                return f"param:{rule.param}"
            taken.append((limiter, value))
        decision = self.flow.check(now_ms, resource, caller, entry)
        if not decision.passed:
            self._refund(taken)  # the call never runs: its hot-parameter tokens go back
            return decision.reason
        breaker = self.breakers.get(resource)
        if breaker is not None and not breaker.try_pass(now_ms):
            self._refund(taken)
            return f"breaker:{resource}"
        return decision.wait_ms

    @staticmethod
    def _refund(taken: list[tuple[ParamLimiter, str]]) -> None:
        for limiter, value in taken:
            limiter.refund(value)

    def exit(self, now_ms: float, e: Entry, *, error: bool) -> None:
        rt_ms = now_ms - e.start_ms - e.wait_ms
        breaker = self.breakers.get(e.resource)
        slow = breaker is not None and rt_ms > breaker.rule.slow_rt_ms
        inflight = self.stats.inflight.get(e.resource, 0)
        self.stats.exit(now_ms, e.resource, rt_ms, error=error, slow=slow, caller=e.caller)
        if e.chain:
            self.stats.exit(now_ms, e.chain, rt_ms, error=error, slow=slow)
        if breaker is not None:
            breaker.on_complete(now_ms, rt_ms, error=error)
        if self.config.gradient2:
            self.limit(e.resource).on_sample(rt_ms, inflight)

    def abandon(self, now_ms: float, e: Entry) -> None:
        """An entered call that will not run after all (its deadline passed while it queued)."""
        breaker = self.breakers.get(e.resource)
        if breaker is not None:
            breaker.abandon(now_ms)
        self.stats.exit(now_ms, e.resource, 0.0, error=True, caller=e.caller)
        if e.chain:
            self.stats.exit(now_ms, e.chain, 0.0, error=True)
