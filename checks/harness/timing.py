"""Where a run's wall time went: simulation, checks, store.

`d11 test` and `d11 run` end with one line that splits the wall time of the
run into its phases, so a reader sees at once whether a slow run was the
simulator, the checkers or the writing of its folder:

    time: simulation 9.1 s, checks 6.2 s, store 0.4 s

"simulation" is building the stage and running it to its final reads (on a
real backend the phase is called "run"); "checks" is every checker and the
judging of its verdict; "store" is gathering the run's figures and logs and
writing its folder. Wall time, not CPU time: the checks may run in parallel
processes, and the line answers "how long did I wait". Each second goes
to one phase, so the three add up to the run: while forked checkers run and
this process gathers the store folder's figures meanwhile, the time is the
checks' until the last checker finishes (the store work hides behind them),
and the store's after.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["Stopwatch", "time_line"]


class Stopwatch:
    """Wall seconds per named phase, in the order the phases first ran.

    Given `phases_s` (a run's `timing_s`), it adds to that dict: the store
    phase is timed by the command after the run has filled in the others.
    """

    def __init__(self, phases_s: dict[str, float] | None = None) -> None:
        self.phases_s: dict[str, float] = {} if phases_s is None else phases_s
        self.last_span: tuple[float, float] = (0.0, 0.0)  # the last phase's (start, end)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Add the wall time of the `with` block to phase `name` (by `time.monotonic()`)."""
        start_s = time.monotonic()
        try:
            yield
        finally:
            self.last_span = (start_s, time.monotonic())
            self.add(name, self.last_span[1] - start_s)

    def hand_over(self, src: str, dst: str, span: tuple[float, float], until_s: float) -> None:
        """Move to `dst` the part of `src`'s `span` (start, end) that came before
        `until_s`: work of `src` done while `dst`'s ran elsewhere and was waited for."""
        moved_s = max(0.0, min(span[1], until_s) - span[0])
        self.add(src, -moved_s)
        self.add(dst, moved_s)

    def add(self, name: str, seconds: float) -> None:
        self.phases_s[name] = self.phases_s.get(name, 0.0) + seconds


def time_line(phases_s: dict[str, float]) -> str:
    """The closing line: `time: simulation 9.1 s, checks 6.2 s, store 0.4 s`."""
    return "time: " + ", ".join(f"{name} {s:.1f} s" for name, s in phases_s.items())
