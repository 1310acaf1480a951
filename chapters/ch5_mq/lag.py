"""Consumer lag, measured: the `consumer-lag` scenario's figures (issue 13).

Two lags per consumer group, as a RocketMQ user reads them:

- the *backlog*: messages visible in the group's topic that the group has not
  consumed yet (nor dead-lettered). From the message trace (`MqDeployment.lives`,
  what the producers and consumers traced as it happened): a message is visible
  from its `committed` step (a plain message: its `stored` step), done for a group
  at its first `consumed` or `dead-lettered` step there. It grows while a group is
  stalled; "caught up" is the first instant after the resume it is zero again.
- the *committed lag*: what the broker's state says the group still owes
  (`BrokerMachine.lag` on its topic and its retry topic), which moves only when a
  member commits its offsets (every 5 s, RocketMQ's `persistConsumerOffsetInterval`):
  what `mqadmin consumerProgress` shows. Sampled at the broker leader's every
  learned slot (`paxos.learn`, a telemetry trace event emitted just before the
  slot is applied), so a sample is the state as it stood just before that instant:
  the broker's state changes only by applying slots, so no change is missed, and
  reading it schedules no event (the run's trace digest stays the same).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reference.mq.machine import retry_topic

if TYPE_CHECKING:
    from reference.mq.machine import BrokerMachine

# (time, node, step, fields) per message, as `MqDeployment.lives` holds them.
Life = list[tuple[float, str, str, dict[str, object]]]

# A group's figures: counts of messages, times in ms (None: not reached).
Figures = dict[str, int | float | None]

__all__ = ["Figures", "LagWatch", "Stall", "backlog_by_group"]


@dataclass
class Stall:
    """A consumer group stalled by the scenario: its members paused from
    `paused_at_ms` to `resumed_at_ms`."""

    group: str
    members: list[str]
    paused_at_ms: float
    resumed_at_ms: float


@dataclass
class _Committed:
    peak: int = 0
    peak_at_ms: float | None = None
    last: int | None = None
    zero_at_ms: float | None = None  # first sample at zero after the resume


@dataclass
class LagWatch:
    """The committed lag of each (group, topic), sampled at the broker leader's applies."""

    lanes: list[tuple[str, str]]
    resumed_at_ms: float
    samples: int = 0
    groups: dict[str, _Committed] = field(default_factory=dict)

    def sample(self, state: BrokerMachine, now_ms: float) -> None:
        self.samples += 1
        for group, topic in self.lanes:
            lag = state.lag(group, topic) + state.lag(group, retry_topic(group))
            g = self.groups.setdefault(group, _Committed())
            if lag > g.peak:
                g.peak, g.peak_at_ms = lag, round(now_ms, 3)
            if now_ms < self.resumed_at_ms or lag > 0:
                g.zero_at_ms = None if lag > 0 else g.zero_at_ms
            elif g.zero_at_ms is None:
                g.zero_at_ms = round(now_ms, 3)
            g.last = lag

    def figures(self, group: str) -> Figures:
        g = self.groups.get(group, _Committed())
        zero = g.zero_at_ms
        return {
            "committed_lag_peak": g.peak,
            "committed_lag_peak_at_ms": g.peak_at_ms,
            "committed_lag_zero_after_resume_ms": (
                None if zero is None else round(zero - self.resumed_at_ms, 3)
            ),
            "committed_lag_last": g.last,
        }


def _visible_ms(steps: Life) -> float | None:
    """When a message became visible to consumers (None: never, e.g. rolled back)."""
    times = [
        t
        for t, _, step, fields in steps
        if step == "committed" or (step == "stored" and fields.get("half") is False)
    ]
    return min(times) if times else None


def _done_ms(steps: Life, group: str) -> float | None:
    times = [
        t
        for t, _, step, fields in steps
        if step in ("consumed", "dead-lettered") and fields.get("group") == group
    ]
    return min(times) if times else None


def backlog_by_group(lives: dict[str, Life], groups: list[str], stall: Stall) -> dict[str, Figures]:
    """Each group's backlog over the run, from the message trace: its peak and when,
    its size at the resume, and how long after the resume it was first empty."""
    out: dict[str, Figures] = {}
    for group in groups:
        moves: list[tuple[float, int]] = []
        for steps in lives.values():
            seen = _visible_ms(steps)
            if seen is None:
                continue
            moves.append((seen, 1))
            done = _done_ms(steps, group)
            if done is not None:
                moves.append((max(done, seen), -1))
        moves.sort()  # at one instant a +1 before a -1: the peak is not undercounted
        backlog = peak = 0
        peak_at_ms: float | None = None
        at_resume: int | None = None
        caught_up_ms: float | None = None
        for i, (t_ms, step) in enumerate(moves):
            if at_resume is None and t_ms >= stall.resumed_at_ms:
                at_resume = backlog
            backlog += step
            assert backlog >= 0, (group, t_ms)
            if backlog > peak:
                peak, peak_at_ms = backlog, t_ms
            last_at_instant = i + 1 == len(moves) or moves[i + 1][0] != t_ms
            if (
                caught_up_ms is None
                and backlog == 0
                and t_ms >= stall.resumed_at_ms
                and last_at_instant
            ):
                caught_up_ms = t_ms
        out[group] = {
            "backlog_peak": peak,
            "backlog_peak_at_ms": None if peak_at_ms is None else round(peak_at_ms, 3),
            "backlog_at_resume": backlog if at_resume is None else at_resume,
            "caught_up_after_resume_ms": (
                None if caught_up_ms is None else round(caught_up_ms - stall.resumed_at_ms, 3)
            ),
            "backlog_last": backlog,
        }
    return out
