"""Same seed, same figures: the capacity sweep does not read the clock, the machine
or the disk, and the book's capacity curve is the one the code measures.

A newcomer once saw two different `d11 rehearse` reports for one seed. The cause
was two versions of the code (TCC's phase-2 retries changed the simulated
platform, a2f6c9e), the book's transcript still showing the old one; these tests
hold both halves: no figure depends on where or when it runs, and the book's
curve is measured again in the default suite (its own transcript test is slow).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from chapters.ch7_rehearsal.rehearsal import RehearsalPlan, _run, _throughput

BOOK = Path(__file__).parents[2] / "book" / "docs" / "ch7-rehearsal.md"


def _point(n: int) -> tuple[float, int]:
    dep, _, _ = _run(RehearsalPlan(seed=1, system="ch7"), {"concurrency": n}, "saturate", 1.0)
    return round(_throughput(dep), 2), len(dep.history)


def test_a_sweep_point_ignores_the_clock_the_cores_and_the_heap(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first = _point(16)
    ticks = iter(range(10**9))
    for name in ("time", "monotonic", "perf_counter", "process_time"):
        monkeypatch.setattr(time, name, lambda: float(next(ticks)) * 997.0)  # a wild clock
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    monkeypatch.setattr(os, "getloadavg", lambda: (64.0, 64.0, 64.0))
    monkeypatch.chdir(tmp_path)  # a different folder, with a stale store beside it
    (tmp_path / "store" / "ch7-steady" / "old").mkdir(parents=True)
    heap = [object() for _ in range(12_345)]  # other objects at other addresses
    assert _point(16) == first
    del heap


def test_the_books_capacity_curve_is_what_the_sweep_measures() -> None:
    line = next(x for x in BOOK.read_text().splitlines() if x.startswith("capacity curve "))
    book = {int(n): int(t) for n, t in re.findall(r"N=(\d+):(\d+)", line)}
    for n in (4, 16, 48):  # three points of nine: the default suite stays cheap
        assert round(_point(n)[0]) == book[n], (n, book)
