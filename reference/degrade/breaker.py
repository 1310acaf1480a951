"""Circuit breakers: slow-call ratio, error ratio, error count; one table of transitions.

Three states. CLOSED lets every call through and watches a window of
`stat_interval_ms`; once at least `min_requests` calls ended in it and the
measure crosses the threshold, the breaker trips to OPEN. OPEN refuses every
call for `open_ms`; the first call after that turns it HALF-OPEN. HALF-OPEN
lets `probes` calls through: if they all succeed (and are not slow) it closes;
if one fails it opens again; if they have not all answered within
`probe_timeout_ms`, it opens again too.

Beyond Sentinel: Sentinel lets exactly one probe through, and before its
workaround (issue #1638) a probe blocked by another rule left the breaker
HALF-OPEN for ever. Here the probe count is configurable, a probe that never
happened can be handed back (`abandon`), and the probe timeout bounds the
time in HALF-OPEN whatever becomes of the probes.

Every state change goes through `TRANSITIONS`, the one table; the book's
diagram is drawn from it (`mermaid()`), and a test holds the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from reference.degrade.window import SlidingWindow

__all__ = ["TRANSITIONS", "Breaker", "BreakerRule", "Transition", "mermaid"]

State = Literal["closed", "open", "half-open"]
Grade = Literal["slow-ratio", "error-ratio", "error-count"]
MIN_REQUESTS = 5  # Sentinel: DEGRADE_DEFAULT_MIN_REQUEST_AMOUNT
PROBES_MAX = 1_000


class Transition(NamedTuple):
    source: State
    event: str
    target: State
    why: str


# --8<-- [start:breaker-table]
TRANSITIONS: tuple[Transition, ...] = (
    Transition("closed", "threshold-crossed", "open",
               "min_requests ended in the window and the measure crossed the threshold"),
    Transition("open", "open-time-elapsed", "half-open",
               "the first call after open_ms: it becomes a probe"),
    Transition("half-open", "probes-succeeded", "closed",
               "every one of the `probes` probes ended well: the window starts afresh"),
    Transition("half-open", "probe-failed", "open",
               "a probe failed or was slow: refuse again for open_ms"),
    Transition("half-open", "probe-timed-out", "open",
               "the probes did not all answer within probe_timeout_ms"),
    Transition("open", "reset", "closed", "the rule was changed or removed"),
    Transition("half-open", "reset", "closed", "the rule was changed or removed"),
)  # fmt: skip
# --8<-- [end:breaker-table]

_TABLE: dict[tuple[State, str], State] = {(t.source, t.event): t.target for t in TRANSITIONS}
assert len(_TABLE) == len(TRANSITIONS), "one target per (state, event)"


def mermaid() -> str:
    """The state diagram of `TRANSITIONS`, as a mermaid block's body."""
    lines = ["stateDiagram-v2", "    [*] --> closed"]
    lines += [f"    {t.source} --> {t.target}: {t.event}" for t in TRANSITIONS]
    return "\n".join(lines).replace("half-open", "half_open")


@dataclass(frozen=True)
class BreakerRule:
    resource: str
    grade: Grade = "slow-ratio"
    threshold: float = 1.0  # slow/error ratio in [0, 1], or an error count
    slow_rt_ms: float = 1_000.0  # slow-ratio: a call longer than this is slow
    open_ms: float = 10_000.0  # Sentinel: timeWindow (seconds there)
    min_requests: int = MIN_REQUESTS
    stat_interval_ms: float = 1_000.0
    probes: int = 3  # Sentinel: exactly 1
    probe_timeout_ms: float = 1_000.0

    def __post_init__(self) -> None:
        assert self.grade in ("slow-ratio", "error-ratio", "error-count"), self
        assert self.threshold >= 0 and self.open_ms > 0 and self.min_requests >= 1, self
        assert self.grade == "error-count" or self.threshold <= 1.0, self
        assert 1 <= self.probes <= PROBES_MAX and self.probe_timeout_ms > 0, self


@dataclass
class Breaker:
    rule: BreakerRule
    state: State = "closed"
    window: SlidingWindow = field(init=False)
    open_until_ms: float = 0.0
    half_open_since_ms: float = 0.0
    probes_out: int = 0  # probes let through, not yet ended
    probes_ok: int = 0
    log: list[tuple[float, State, str, State]] = field(default_factory=list)
    log_max: int = 1_000

    def __post_init__(self) -> None:
        self.window = SlidingWindow(self.rule.stat_interval_ms, 1)  # Sentinel: one bucket

    # --8<-- [start:breaker-move]
    def _move(self, now_ms: float, event: str) -> None:
        """Take the table's transition for (state, event); there must be one."""
        target = _TABLE.get((self.state, event))
        assert target is not None, f"no transition from {self.state} on {event}"
        if len(self.log) < self.log_max:
            self.log.append((now_ms, self.state, event, target))
        self.state = target
        if target == "open":
            self.open_until_ms = now_ms + self.rule.open_ms
        elif target == "half-open":
            self.half_open_since_ms = now_ms
            self.probes_out = self.probes_ok = 0
        else:  # closed: judge afresh
            self.window = SlidingWindow(self.rule.stat_interval_ms, 1)

    # --8<-- [end:breaker-move]

    def try_pass(self, now_ms: float) -> bool:
        """May a call go now? In HALF-OPEN, a True makes this call a probe."""
        self.tick(now_ms)
        if self.state == "closed":
            return True
        if self.state == "open":
            if now_ms < self.open_until_ms:
                return False
            self._move(now_ms, "open-time-elapsed")
        if self.probes_out + self.probes_ok >= self.rule.probes:
            return False
        self.probes_out += 1
        return True

    def tick(self, now_ms: float) -> None:
        """Time alone can move a HALF-OPEN breaker: its probes ran out of time."""
        if (
            self.state == "half-open"
            and now_ms - self.half_open_since_ms >= self.rule.probe_timeout_ms
        ):
            self._move(now_ms, "probe-timed-out")

    def abandon(self, now_ms: float) -> None:
        """A call this breaker let through never ran (another rule blocked it)."""
        if self.state == "half-open" and self.probes_out > 0:
            self.probes_out -= 1

    def on_complete(self, now_ms: float, rt_ms: float, *, error: bool) -> None:
        """A call this breaker let through ended after `rt_ms`."""
        slow = rt_ms > self.rule.slow_rt_ms
        bad = error or (self.rule.grade == "slow-ratio" and slow)
        self.tick(now_ms)
        # --8<-- [start:breaker-half-open]
        if self.state == "half-open":
            if bad:
                self._move(now_ms, "probe-failed")
                return
            self.probes_out = max(0, self.probes_out - 1)
            self.probes_ok += 1
            if self.probes_ok >= self.rule.probes:
                self._move(now_ms, "probes-succeeded")
            return
        # --8<-- [end:breaker-half-open]
        if self.state == "open":
            return  # a straggler from before the trip: already judged
        self.window.add_complete(now_ms, rt_ms, error=error, slow=slow)
        if self._crossed(now_ms):
            self._move(now_ms, "threshold-crossed")

    def _crossed(self, now_ms: float) -> bool:
        total, errors, slow = self.window.completed(now_ms)
        rule = self.rule
        if total < rule.min_requests:
            return False
        if rule.grade == "error-count":
            return errors > rule.threshold
        bad = errors if rule.grade == "error-ratio" else slow
        ratio = bad / total
        # Sentinel: a threshold of 1.0 trips when every call is bad.
        return ratio > rule.threshold or (rule.threshold == 1.0 and ratio == 1.0)

    def reset(self, now_ms: float) -> None:
        if self.state != "closed":
            self._move(now_ms, "reset")
