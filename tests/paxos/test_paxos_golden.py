"""Golden traces, in the style of etcd raft's datadriven tests.

Each file in golden/ is a script of driver commands (lines starting `> `)
interleaved with the exact output they must produce. Set D11_REWRITE_GOLDEN=1
to rewrite the expected output after an intended change, then review the diff.
The book quotes these files.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from checks.explore import Driver, Scenario
from reference.paxos.messages import Membership

GOLDEN = Path(__file__).parent / "golden"
THREE = Membership(1, ("n1", "n2", "n3"))


def _split(text: str) -> tuple[list[str], list[str]]:
    header = [line for line in text.splitlines() if line.startswith("#")]
    commands = [line[2:] for line in text.splitlines() if line.startswith("> ")]
    return header, commands


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.txt")), ids=lambda p: p.stem)
def test_golden_trace(path: Path) -> None:
    text = path.read_text()
    header, commands = _split(text)
    assert commands, f"{path.name} holds no commands"
    driver = Driver(Scenario(path.stem, THREE, requests=(), timer_budget={}))
    actual = "\n".join(header) + "\n" + driver.run_script("\n".join(commands))
    if os.environ.get("D11_REWRITE_GOLDEN") == "1":
        path.write_text(actual)
    assert actual == text, f"{path.name} changed; rerun with D11_REWRITE_GOLDEN=1 and review"
    assert "error:" not in actual
