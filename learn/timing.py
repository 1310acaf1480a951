"""How long each exercise's check takes, unsolved and solved: wall and CPU seconds.

    .venv/bin/python -m learn.timing [ID ...]

Each exercise gets a fresh workspace in a temporary folder: `start`, a check
as started (find-bug with the bug's name, measure with a wrong figure, so the
run is made), the reference solution applied, a check again. CPU is the
check subprocess's user + system time (getrusage of the children), which
means something on a loaded machine; wall time does not, so the load
average is printed beside it. The last line, `checks_within_budget: X/N`,
counts the solved checks whose wall time is within the exercise's budget
(30 s, 120 s for the explorer's).
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from learn.catalog import Exercise, all_exercises
from learn.workspace import CheckResult, Workspace

__all__ = ["main"]


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed_check(
    ws: Workspace, ex: Exercise, answer: str | None
) -> tuple[CheckResult, float, float, float]:
    """What `d11 learn check` does; its wall seconds, CPU seconds, and the load around it."""
    cpu, wall, load = _cpu_s(), time.perf_counter(), os.getloadavg()[0]
    result = ws.precheck(ex) or ws.run_check(ex, answer=answer)
    return result, time.perf_counter() - wall, _cpu_s() - cpu, max(load, os.getloadavg()[0])


def main(argv: list[str] | None = None) -> int:
    wanted = set(sys.argv[1:] if argv is None else argv)
    exercises = [e for e in all_exercises() if not wanted or e.id in wanted]
    print(f"{'exercise':22} {'kind':9} {'unsolved':>26} {'solved':>26}  budget")
    print(f"{'':32} {'status  wall s  CPU s  load':>26} {'status  wall s  CPU s  load':>26}")
    within = 0
    with tempfile.TemporaryDirectory(prefix="d11-learn-timing-") as tmp:
        for ex in exercises:
            ws = Workspace(Path(tmp) / ex.id)
            ws.start(ex)
            wrong = {"find-bug": ex.answer, "measure": "-1"}.get(ex.kind)
            before = _timed_check(ws, ex, wrong)
            answer = ws.apply_solution(ex)
            after = _timed_check(ws, ex, answer)
            within += after[0].passed and after[1] <= ex.seconds_max
            cells = [
                f"{r.status:8} {wall:6.1f} {cpu:6.1f} {load:5.1f}"
                for r, wall, cpu, load in (before, after)
            ]
            print(f"{ex.id:22} {ex.kind:9} {cells[0]:>26} {cells[1]:>26}  {ex.seconds_max:4.0f}")
    print(f"checks_within_budget: {within}/{len(exercises)}")
    return 0 if within == len(exercises) else 1


if __name__ == "__main__":
    raise SystemExit(main())
