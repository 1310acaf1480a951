"""Hot-parameter flow rules: a limit per value of one argument (a hot merchant).

Sentinel's ParamFlowRule in its default QPS form: each value of the watched
argument has its own token bucket, holding at most `count + burst` tokens and
refilled at `count` per `duration_ms`. Some values get their own count (the
per-value exceptions: a big merchant that has paid for more). The table of
values is bounded (Sentinel: 4,000 per parameter): the least recently seen
value is forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["ParamFlowRule", "ParamLimiter"]

VALUES_MAX = 4_000  # Sentinel: ParameterMetric's LRU cap per parameter


# --8<-- [start:param-rule]
@dataclass(frozen=True)
class ParamFlowRule:
    resource: str
    param: str  # which argument of the call ("merchant")
    count: float  # calls per duration_ms for any one value
    duration_ms: float = 1_000.0  # Sentinel: durationInSec = 1
    burst: int = 0  # extra calls a quiet value may spend at once
    exceptions: Mapping[str, float] = field(default_factory=dict)  # value -> its own count

    def __post_init__(self) -> None:
        assert self.count >= 0 and self.duration_ms > 0 and self.burst >= 0, self

    def count_for(self, value: str) -> float:
        if not self.exceptions:  # the common case, on every guarded call
            return self.count
        return float(self.exceptions.get(value, self.count))


# --8<-- [end:param-rule]


@dataclass
class _Bucket:
    tokens: float
    last_ms: float


@dataclass
class ParamLimiter:
    """The token buckets of one rule, one per value seen (LRU-bounded)."""

    rule: ParamFlowRule
    values_max: int = VALUES_MAX
    buckets: OrderedDict[str, _Bucket] = field(default_factory=OrderedDict)

    def check(self, now_ms: float, value: str, acquire: int = 1) -> bool:
        rule = self.rule
        count = rule.count_for(value) if rule.exceptions else rule.count
        capacity = count + rule.burst
        if acquire > capacity:
            return False
        bucket = self.buckets.get(value)
        if bucket is None:
            if len(self.buckets) >= self.values_max:
                self.buckets.popitem(last=False)  # forget the least recently seen value
            bucket = self.buckets[value] = _Bucket(capacity, now_ms)
        else:
            self.buckets.move_to_end(value)
            elapsed_ms = now_ms - bucket.last_ms
            if elapsed_ms >= rule.duration_ms:
                # Refill in whole durations, as Sentinel does: no trickle in between.
                refill = count * (elapsed_ms // rule.duration_ms)
                bucket.tokens = min(capacity, bucket.tokens + refill)
                bucket.last_ms += rule.duration_ms * (elapsed_ms // rule.duration_ms)
        assert 0 <= bucket.tokens <= capacity + 1e-9, bucket
        if bucket.tokens < acquire:
            return False
        bucket.tokens -= acquire
        return True

    def refund(self, value: str, acquire: int = 1) -> None:
        """Give back tokens a call took when a later rule blocked it after all.

        Sentinel checks hot parameters before flow rules and keeps the token
        of a call the flow rule then blocks, so under a spike a hot value
        spends its tokens on calls that never run and gets far less than its
        count; handing the token back lets it have its count.
        """
        bucket = self.buckets.get(value)
        if bucket is not None:
            capacity = self.rule.count_for(value) + self.rule.burst
            bucket.tokens = min(capacity, bucket.tokens + acquire)
