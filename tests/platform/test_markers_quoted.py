"""Every section marker in the source is quoted: by the book, a test or a workshop.

The book cuts its excerpts from the source by `--8<--` markers
(`# --8<-- [start:NAME]` ... `# --8<-- [end:NAME]`). A marker nothing quotes
is noise a reader has to step over, and it rots: the code between its lines
moves and nobody notices. A marker counts as quoted when the book names it
(`--8<-- "path:NAME"`), or when a file under tests/ or learn/ names both
its file and, in quotes, its name (the marker tests, the workshops).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ("reference", "checks", "chapters", "tui", "learn")

_MARKER = re.compile(r"^\s*# --8<-- \[start:([^\]]+)\]\s*$", re.M)
_BOOK_REF = re.compile(
    r"""^[ \t]*(?<!;)--8<--[ \t]+(["'])(?P<path>[^"':\n]+):(?P<name>[^"'\n]+)\1""", re.M
)


def _markers() -> list[tuple[str, str]]:
    found = []
    for folder in SOURCE:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "__pycache__" not in path.parts:
                rel = str(path.relative_to(ROOT))
                found += [(rel, name) for name in _MARKER.findall(path.read_text("utf-8"))]
    return found


def _quoted_by_book() -> set[tuple[str, str]]:
    refs = set()
    for page in (ROOT / "book").rglob("*.md"):
        refs |= {(m["path"], m["name"]) for m in _BOOK_REF.finditer(page.read_text("utf-8"))}
    return refs


def _quoted_by_tests(markers: list[tuple[str, str]]) -> set[tuple[str, str]]:
    texts = [
        p.read_text("utf-8")
        for folder in ("tests", "learn")
        for p in (ROOT / folder).rglob("*.py")
        if "__pycache__" not in p.parts and p.resolve() != Path(__file__).resolve()
    ]
    return {
        (path, name)
        for path, name in markers
        if any(path in t and re.search(f"[\"']{re.escape(name)}[\"']", t) for t in texts)
    }


def unquoted_markers() -> list[tuple[str, str]]:
    markers = _markers()
    quoted = _quoted_by_book() | _quoted_by_tests(markers)
    return sorted(m for m in markers if m not in quoted)


def test_every_marker_is_quoted() -> None:
    # A new marker comes with the excerpt (or the test) that quotes it.
    assert unquoted_markers() == []


def test_the_book_and_the_tests_count_as_quoting(tmp_path: Path) -> None:
    page = """```python
--8<-- "checks/history.py:read-jsonl"
```
Escaped: ;--8<-- "checks/nemesis.py:nemeses"
"""
    refs = {(m["path"], m["name"]) for m in _BOOK_REF.finditer(page)}
    assert refs == {("checks/history.py", "read-jsonl")}
    assert ("checks/harness/contract.py", "contract") in _quoted_by_book()
    assert ("checks/lin/search.py", "wgl-search") in _quoted_by_tests(_markers())
