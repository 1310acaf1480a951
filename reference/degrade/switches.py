"""Degrade switches as a plan: which best-effort path goes off at which signal.

"Implicit degrade" (whatever times out first is what the system does
without) is the anti-pattern; the plan is data decided in advance. Each
switch names a best-effort path (notifications, loyalty points,
recommendations), the signal it watches and the level at which the path goes
off; it comes back on only when the signal has been below `on_below` for
`hold_ms` (hysteresis: no flapping at the edge). The least valuable paths
switch off first.

The signal is *pressure*: load on the critical path relative to what it may
take (calls passed or refused by its rules over its rule's count), computed
by whoever holds the switches (`reference.degrade.sidecar`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DegradePlan", "Switch", "SwitchBoard"]


# --8<-- [start:degrade-plan]
@dataclass(frozen=True)
class Switch:
    path: str  # "recommend" | "loyalty" | "notify"
    off_at: float  # pressure at or above which the path goes off
    on_below: float  # ... and below which (for hold_ms) it comes back
    hold_ms: float = 2_000.0

    def __post_init__(self) -> None:
        assert 0 <= self.on_below < self.off_at, self


@dataclass(frozen=True)
class DegradePlan:
    switches: tuple[Switch, ...]
    version: int = 1

    def __post_init__(self) -> None:
        paths = [s.path for s in self.switches]
        assert len(set(paths)) == len(paths), "one switch per path"


DEFAULT_PLAN = DegradePlan(
    (
        Switch("recommend", off_at=0.7, on_below=0.5),  # nice to have: first to go
        Switch("loyalty", off_at=0.85, on_below=0.6),  # points can be granted later
        Switch("notify", off_at=0.95, on_below=0.7),  # the user wants the receipt
    )
)
# --8<-- [end:degrade-plan]


@dataclass
class SwitchBoard:
    """The plan's switches and their state on one node."""

    plan: DegradePlan
    off: dict[str, float] = field(default_factory=dict)  # path -> since when it is off
    calm_since: dict[str, float] = field(default_factory=dict)
    forced: dict[str, bool] = field(default_factory=dict)  # path -> on/off by hand (a drill)

    def update(self, now_ms: float, pressure: float) -> list[tuple[str, bool]]:
        """Feed the signal; returns the switches that flipped: (path, now_on)."""
        flips: list[tuple[str, bool]] = []
        for s in self.plan.switches:
            if s.path in self.forced:
                continue
            if s.path not in self.off:
                if pressure >= s.off_at:
                    self.off[s.path] = now_ms
                    self.calm_since.pop(s.path, None)
                    flips.append((s.path, False))
            elif pressure < s.on_below:
                since = self.calm_since.setdefault(s.path, now_ms)
                if now_ms - since >= s.hold_ms:
                    del self.off[s.path]
                    del self.calm_since[s.path]
                    flips.append((s.path, True))
            else:
                self.calm_since.pop(s.path, None)
        return flips

    def force(self, path: str, on: bool | None) -> None:
        """A drill or an operator: pin `path` on or off (None: back to the plan)."""
        if on is None:
            self.forced.pop(path, None)
        else:
            self.forced[path] = on

    def is_on(self, path: str) -> bool:
        if path in self.forced:
            return self.forced[path]
        return path not in self.off
