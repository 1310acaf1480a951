"""Python blocks in the book run (sybil), page by page, in one namespace per page."""

from __future__ import annotations

from pathlib import Path

import pytest
from bookrun import DOCS_DIR, page_name, pages, python_examples
from sybil.example import SybilFailure

RUNNABLE = [p for p in pages() if python_examples(p)]


@pytest.mark.parametrize("page", RUNNABLE, ids=[page_name(p) for p in RUNNABLE])
def test_python_blocks_run(page: Path) -> None:
    for example in python_examples(page):
        example.evaluate()


def test_python_blocks_are_collected_and_can_fail(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text(
        '```python\n--8<-- "reference/node.py:node"\n```\n\n'  # an include: not run
        "```python\nx = 2\n```\n\n"
        "<!-- skip: next -->\n```python\nraise SystemExit('skipped')\n```\n\n"
        "```python\nassert x == 3, 'x is 2'\n```\n"
    )
    examples = python_examples(page)
    assert len(examples) == 4  # x = 2, the skip directive, the skipped block, the assert
    with pytest.raises(AssertionError, match="x is 2"):
        for example in examples:
            example.evaluate()
    assert DOCS_DIR.is_dir()


def test_a_doctest_block_whose_output_differs_fails(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text("```python\n>>> 1 + 1\n2\n>>> 'x' * 3\n'xx'\n```\n")
    first, second = python_examples(page)
    first.evaluate()
    with pytest.raises(SybilFailure, match=r"Expected:\s+'xx'\s+Got:\s+'xxx'"):
        second.evaluate()
