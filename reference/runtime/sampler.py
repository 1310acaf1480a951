"""Where a node process's CPU goes: a sampling profiler on CPU time.

`D11_PROFILE_DIR` (node_main.py) profiles a node with cProfile, which times
every call and adds its own cost to each: code made of many small calls
looks far dearer than it is. In `d11 bench process --batch 1 --clients 8`
the codec's object hook, a call per tagged JSON object, came out at 25
times its cost measured alone, and cProfile's figures ranked the work
accordingly. With `D11_PROFILE=sample` beside `D11_PROFILE_DIR`, a node
is sampled instead: every `SAMPLE_INTERVAL_S` of CPU the process uses
(`ITIMER_PROF`: user and system time, so a system call's cost lands on the
Python line that made it), the main thread's stack is counted. Nothing is
paid per call, so the shares are the CPU's.

The stacks go to `<node>.stacks`, one `frame;frame;... count` line per
distinct stack (the "collapsed" format flame graph tools read), rewritten
every second (the harness SIGKILLs its nodes: no exit hook runs).
`python -m reference.runtime.sampler FILE...` prints each file's top
functions, by their own samples and by the samples under them.

The signal lands on the main thread, which runs the event loop and every
handler; CPU another thread uses (a group-commit disk's writer) is counted
on whatever the main thread was doing meanwhile, mostly the loop's wait.
"""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import FrameType

PROFILE_MODE_ENV = "D11_PROFILE"  # "sample": this sampler; else cProfile
# Of the process's CPU time, not the wall's. The kernel charges CPU time a
# scheduler tick at a time, so samples come at most once a tick (4 ms at
# HZ=250): a run of a few seconds gives a few hundred per busy process.
SAMPLE_INTERVAL_S = 0.0005

# What signal.signal takes and returns (None: a handler not set from Python).
_Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


class CpuSampler:
    """Counts the main thread's stacks every `interval_s` of process CPU time."""

    def __init__(self, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.stacks: Counter[str] = Counter()
        self._before: _Handler = None  # SIGPROF's handler before start()

    def start(self) -> None:
        self._before = signal.signal(signal.SIGPROF, self._sample)
        signal.setitimer(signal.ITIMER_PROF, self.interval_s, self.interval_s)

    def stop(self) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0.0, 0.0)
        signal.signal(signal.SIGPROF, signal.SIG_DFL if self._before is None else self._before)

    def _sample(self, signum: int, frame: FrameType | None) -> None:
        names: list[str] = []
        while frame is not None:
            code = frame.f_code
            names.append(
                f"{code.co_name} ({os.path.basename(code.co_filename)}:{code.co_firstlineno})"
            )
            frame = frame.f_back
        self.stacks[";".join(reversed(names))] += 1

    def dump(self, path: Path) -> None:
        """Write the stacks so far (collapsed format), atomically."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(f"{stack} {n}\n" for stack, n in self.stacks.items()))
        tmp.replace(path)


def summary(path: Path, top: int = 25) -> list[str]:
    """The top functions of a stacks file: own samples, and samples under each."""
    own: Counter[str] = Counter()
    under: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for name in set(frames):
            under[name] += n
    lines = [f"{path}: {total:,} samples"]
    for title, counter in (("own", own), ("under", under)):
        lines.append(f"  by {title} samples:")
        lines += [f"    {n / total:6.1%}  {name}" for name, n in counter.most_common(top)]
    return lines


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print("\n".join(summary(Path(arg))))
