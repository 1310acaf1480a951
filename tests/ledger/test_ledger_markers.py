"""The section markers the book includes exist, once each, and are closed."""

from __future__ import annotations

from pathlib import Path

import pytest

import reference.ledger

LEDGER_DIR = Path(reference.ledger.__file__).parent
MARKERS = [  # the ones book/docs/ch4-paxos.md includes
    "ledger-transfer",
    "ledger-invariant",
    "ledger-service",
]


@pytest.mark.parametrize("name", MARKERS)
def test_marker_is_present_once_and_closed(name: str) -> None:
    sources = "\n".join(p.read_text() for p in sorted(LEDGER_DIR.glob("*.py")))
    start = f"# --8<-- [start:{name}]"
    end = f"# --8<-- [end:{name}]"
    assert sources.count(start) == 1, f"marker {name!r} missing or repeated"
    assert sources.count(end) == 1
    assert sources.index(start) < sources.index(end)
