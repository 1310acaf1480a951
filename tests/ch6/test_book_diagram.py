"""The book's breaker diagram is the one `mermaid()` draws from the transition table."""

from __future__ import annotations

import re
from pathlib import Path

from reference.degrade import TRANSITIONS, mermaid

PAGE = Path(__file__).resolve().parents[2] / "book" / "docs" / "ch6-degrade.md"


def test_the_book_draws_the_breaker_from_its_table() -> None:
    blocks = re.findall(r"^```mermaid\n(.*?)^```", PAGE.read_text(encoding="utf-8"), re.M | re.S)
    assert len(blocks) == 1, "chapter 6 shows one breaker diagram"
    assert blocks[0].strip() == mermaid().strip()


def test_the_diagram_has_every_transition_of_the_table() -> None:
    drawn = mermaid()
    for t in TRANSITIONS:
        source, target = (s.replace("-", "_") for s in (t.source, t.target))
        assert f"{source} --> {target}: {t.event}" in drawn
