"""A timing wheel: timer messages due at a second, found without a sorted scan.

RocketMQ 5's timer messages live on a wheel (TimerWheel): a ring of slots,
one per `precision_ms` (1 s by default), `timerRollWindowSlot` of them (two
days); a message due further out than the ring is *rolled*, put back on the
wheel as the ring comes round. This one is the same idea in a few lines:

- `add(deliver_at_ms, item)`: the item goes to slot
  `deliver_at_ms // precision_ms % slots`, whatever its round;
- `advance(now_ms)`: the wheel's hand moves slot by slot up to now; in each
  slot it passes, the items due (by now) come out, in the order they were
  added, and the ones of a later round stay for the next turn. The hand
  moves at most `slots_per_advance_max` slots per call (a leader that was
  down for an hour catches up over several ticks, each bounded).

Deterministic, with no clock of its own: the broker replicates the ticks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["TimingWheel"]


# --8<-- [start:timing-wheel]
@dataclass
class TimingWheel:
    precision_ms: int = 1_000  # RocketMQ's timerPrecisionMs
    slots: int = 2 * 24 * 3_600  # timerRollWindowSlot: two days of one-second slots
    slots_per_advance_max: int = 3_600  # bound on one tick's work
    hand: int = -1  # the last slot (absolute: time // precision) the hand passed
    ring: dict[int, list[tuple[int, Any]]] = field(default_factory=dict)  # slot -> (due, item)
    size: int = 0

    def __post_init__(self) -> None:
        assert self.precision_ms > 0 and self.slots >= 1 and self.slots_per_advance_max >= 1

    def add(self, deliver_at_ms: int, item: Any) -> None:
        absolute = deliver_at_ms // self.precision_ms
        if absolute <= self.hand:  # due already (or in a slot the hand passed): next slot
            absolute = self.hand + 1
        self.ring.setdefault(absolute % self.slots, []).append((deliver_at_ms, item))
        self.size += 1

    def advance(self, now_ms: int) -> list[Any]:
        """Move the hand up to `now_ms` (boundedly); the items now due, in order."""
        target = now_ms // self.precision_ms
        if self.hand < 0:
            self.hand = target - 1  # a fresh wheel starts at now
        out: list[Any] = []
        for _ in range(min(target - self.hand, self.slots_per_advance_max)):
            self.hand += 1
            entries = self.ring.pop(self.hand % self.slots, None)
            if not entries:
                continue
            due = [(at, item) for at, item in entries if at // self.precision_ms <= self.hand]
            later = [(at, item) for at, item in entries if at // self.precision_ms > self.hand]
            if later:  # a later round of this slot: rolled, stays on the wheel
                self.ring[self.hand % self.slots] = later
            out.extend(item for _, item in due)
            self.size -= len(due)
        assert self.size >= 0
        return out

    # --8<-- [end:timing-wheel]

    def snapshot(self) -> Any:
        return (self.hand, tuple((s, tuple(e)) for s, e in sorted(self.ring.items())), self.size)

    def restore(self, value: Any) -> None:
        hand, ring, size = value
        self.hand, self.size = hand, size
        self.ring = {s: [tuple(x) for x in entries] for s, entries in ring}
