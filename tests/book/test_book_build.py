"""The book builds with `mkdocs build --strict`, snippets expanded."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html import unescape
from pathlib import Path

from bookrun import BOOK_DIR

ENV = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # silence material's banner


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=site.parent,  # not the repository root: paths must not depend on it
        timeout=120,
        check=False,
    )


def test_the_book_builds_strict_with_code_from_the_source(tmp_path: Path) -> None:
    done = build(BOOK_DIR / "mkdocs.yml", tmp_path / "site")
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "site" / "ch0-world" / "index.html").read_text(encoding="utf-8")
    text = unescape(re.sub(r"<[^>]+>", "", html))
    # Lines of the node contract and of the traffic, pulled in by the snippets extension.
    assert "def set_timer(self, delay_ms: float, tag: Hashable) -> None:" in text
    assert "def rate_per_s(self, day_s: float) -> float:" in text
    # No include line left unexpanded, and the markers themselves are not shown.
    assert '--8<-- "' not in text
    assert "--8<-- [start:" not in text


def test_a_missing_snippet_fails_the_build(tmp_path: Path) -> None:
    """The configuration really is strict: check_paths makes a bad include fatal."""
    book = tmp_path / "repo" / "book"
    (book / "docs").mkdir(parents=True)
    config = (BOOK_DIR / "mkdocs.yml").read_text(encoding="utf-8")
    config = config[: config.index("\nnav:")] + "\nnav:\n  - index.md\n"
    (book / "mkdocs.yml").write_text(config, encoding="utf-8")
    (tmp_path / "repo" / "code.py").write_text(
        "# --8<-- [start:there]\nx = 1\n# --8<-- [end:there]\n"
    )
    page = book / "docs" / "index.md"
    page.write_text('# Page\n\n```python\n--8<-- "code.py:there"\n```\n')
    assert build(book / "mkdocs.yml", tmp_path / "ok").returncode == 0
    page.write_text('# Page\n\n```python\n--8<-- "code.py:not-there"\n```\n')
    done = build(book / "mkdocs.yml", tmp_path / "bad")
    assert done.returncode != 0
    assert "not-there" in done.stderr
