"""The book cuts code from the source by section markers: they must exist, paired."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
MARKERS = {
    "checks/lin/search.py": ["wgl-search", "wgl-cache", "wgl-cache-add"],
    "checks/lin/checker.py": ["lin-check"],
    "checks/lin/models/register.py": ["model-register"],
    "checks/lin/models/accounts.py": ["model-ledger"],
    "checks/history.py": ["read-jsonl"],
    "checks/formats/__init__.py": ["check-pairing"],
}


@pytest.mark.parametrize(("path", "names"), sorted(MARKERS.items()))
def test_section_markers_are_paired(path: str, names: list[str]) -> None:
    text = (ROOT / path).read_text()
    for name in names:
        start, end = f"# --8<-- [start:{name}]", f"# --8<-- [end:{name}]"
        assert text.count(start) == 1 and text.count(end) == 1, name
        assert text.index(start) < text.index(end), name
