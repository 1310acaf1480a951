"""Every snippet the book names exists in the source, both its markers."""

from __future__ import annotations

from pathlib import Path

from bookrun import DOCS_DIR, missing_snippets, snippet_refs


def test_every_snippet_the_book_names_exists_in_the_source() -> None:
    assert missing_snippets() == []


def test_the_book_does_include_code_from_the_source() -> None:
    named = {(ref.path, ref.section) for ref in snippet_refs()}
    # Chapter 0 shows the node contract; if this set shrinks, the check above is vacuous.
    assert ("reference/node.py", "context") in named
    assert ("reference/traffic/shape.py", "traffic-shape") in named
    assert len(named) >= 8


def test_a_missing_marker_is_reported(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "mod.py").write_text(
        "# --8<-- [start:whole]\nx = 1\n# --8<-- [end:whole]\n# --8<-- [start:half]\ny = 2\n"
    )
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "page.md").write_text(
        "# A page\n\n```python\n"
        '--8<-- "src/mod.py:whole"\n'
        "```\n\n```python\n"
        '--8<-- "src/mod.py:half"\n'
        '--8<-- "src/mod.py:gone"\n'
        '--8<-- "src/nofile.py:any"\n'
        '```\n\nEscaped, so not an include: `;--8<-- "src/mod.py:nothing"`\n'
        ';--8<-- "src/mod.py:escaped"\n'
    )
    problems = missing_snippets(docs, tmp_path)
    assert problems == [
        "page.md:8 names 'src/mod.py:half': no [end:half] marker in src/mod.py",
        "page.md:9 names 'src/mod.py:gone': no [start:gone] marker in src/mod.py",
        "page.md:9 names 'src/mod.py:gone': no [end:gone] marker in src/mod.py",
        "page.md:10 names 'src/nofile.py:any': no such file",
    ]


def test_the_real_book_is_where_the_checks_look() -> None:
    assert (DOCS_DIR / "index.md").is_file()
    assert (DOCS_DIR / "ch0-world.md").is_file()
