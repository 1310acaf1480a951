"""Retry budgets and deadlines: bounds on the work a failure can multiply.

`RetryThrottle` is gRPC's retry throttling (proposal A6): a bucket of
`max_tokens` tokens, full at the start; each failure takes one, each success
gives back `token_ratio`; no retry while the bucket holds `max_tokens / 2` or
less. So retries stop once failures outrun successes by the ratio, however
many layers would like to retry.

`Deadline` is the time by which the first caller stops waiting; it travels
with every call as an absolute time in the caller's clock (on one simulator,
one clock; gRPC sends the remaining time instead, to survive clock skew). No
work starts after it, and a hop's own timeout never extends it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Deadline", "RetryThrottle", "backoff_ms"]

TOKENS_MAX = 1_000.0  # gRPC A6: maxTokens <= 1000


# --8<-- [start:retry-throttle]
@dataclass
class RetryThrottle:
    max_tokens: float = 10.0  # gRPC A6's example
    token_ratio: float = 0.1
    tokens: float = -1.0  # -1: start full
    retries: int = 0  # retries allowed so far
    refused: int = 0

    def __post_init__(self) -> None:
        assert 0 < self.max_tokens <= TOKENS_MAX and 0 < self.token_ratio <= 1, self
        if self.tokens < 0:
            self.tokens = self.max_tokens

    def on_success(self) -> None:
        self.tokens = min(self.max_tokens, self.tokens + self.token_ratio)

    def on_failure(self) -> None:
        self.tokens = max(0.0, self.tokens - 1.0)

    def allow_retry(self) -> bool:
        """After a failure (already counted): may the caller try again?"""
        if self.tokens > self.max_tokens / 2:
            self.retries += 1
            return True
        self.refused += 1
        return False


# --8<-- [end:retry-throttle]


def backoff_ms(rng: random.Random, attempt: int, initial_ms: float, max_ms: float,
               multiplier: float = 2.0) -> float:  # fmt: skip
    """gRPC's full-jitter backoff before retry `attempt` (1 = the first retry)."""
    assert attempt >= 1 and 0 < initial_ms <= max_ms
    return rng.uniform(0.0, min(initial_ms * multiplier ** (attempt - 1), max_ms))


# --8<-- [start:deadline]
@dataclass(frozen=True)
class Deadline:
    at_ms: float  # 0: none (the caller waits for ever)

    def remaining_ms(self, now_ms: float) -> float:
        return float("inf") if not self.at_ms else self.at_ms - now_ms

    def expired(self, now_ms: float) -> bool:
        return bool(self.at_ms) and now_ms >= self.at_ms

    def for_hop(self, now_ms: float, timeout_ms: float) -> Deadline:
        """A call's own deadline: its timeout, but never past the caller's."""
        own_ms = now_ms + timeout_ms
        return Deadline(own_ms if not self.at_ms else min(self.at_ms, own_ms))


# --8<-- [end:deadline]
