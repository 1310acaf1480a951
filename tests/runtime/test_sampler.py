"""The CPU sampler (reference/runtime/sampler.py): what it counts and how it reads back."""

from __future__ import annotations

import time
from pathlib import Path

from reference.runtime.sampler import CpuSampler, summary


def _burn(cpu_s: float) -> int:
    """Spin in this function until the process has used `cpu_s` more CPU."""
    end = time.process_time() + cpu_s
    spins = 0
    while time.process_time() < end:
        spins += 1
    return spins


def test_the_function_using_the_cpu_is_where_the_samples_land(tmp_path: Path) -> None:
    sampler = CpuSampler(interval_s=0.001)
    sampler.start()
    try:
        _burn(0.3)
    finally:
        sampler.stop()
    total = sum(sampler.stacks.values())
    in_burn = sum(n for stack, n in sampler.stacks.items() if "_burn (" in stack.split(";")[-1])
    # At most one sample a scheduler tick (4 ms at HZ=250), whatever the interval.
    assert total >= 20
    assert in_burn >= 0.8 * total
    path = tmp_path / "node.stacks"
    sampler.dump(path)
    assert sum(int(line.rpartition(" ")[2]) for line in path.read_text().splitlines()) == total


def test_the_summary_counts_own_and_under_samples(tmp_path: Path) -> None:
    path = tmp_path / "r1.stacks"
    path.write_text(
        "main (a.py:1);handle (b.py:5);decode (c.py:9) 3\nmain (a.py:1);handle (b.py:5) 1\n"
    )
    lines = summary(path)
    assert lines[0].endswith("4 samples")
    own = lines[lines.index("  by own samples:") + 1]
    assert own.split() == ["75.0%", "decode", "(c.py:9)"]
    under = lines[lines.index("  by under samples:") + 1 :]
    assert {under[0].split(maxsplit=1)[1], under[1].split(maxsplit=1)[1]} == {
        "main (a.py:1)",
        "handle (b.py:5)",
    }
    assert under[0].split()[0] == under[1].split()[0] == "100.0%"
