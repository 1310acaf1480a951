"""Where a run's wall time went: simulation, checks, store.

`d11 test` and `d11 run` end with one line that splits the wall time of the
run into its phases, so a reader sees at once whether a slow run was the
simulator, the checkers or the writing of its folder:

    time: simulation 9.1 s, checks 6.2 s, store 0.4 s

"simulation" is building the stage and running it to its final reads (on a
real backend the phase is called "run"); "checks" is every checker and the
judging of its verdict; "store" is gathering the run's figures and logs and
writing its folder. Wall time, not CPU time: the checks may run in parallel
processes, and the line answers "how long did I wait".
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

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Add the wall time of the `with` block to phase `name`."""
        start_s = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start_s)

    def add(self, name: str, seconds: float) -> None:
        self.phases_s[name] = self.phases_s.get(name, 0.0) + seconds


def time_line(phases_s: dict[str, float]) -> str:
    """The closing line: `time: simulation 9.1 s, checks 6.2 s, store 0.4 s`."""
    return "time: " + ", ".join(f"{name} {s:.1f} s" for name, s in phases_s.items())
