"""Every ```console block in the book runs, and prints what the book shows.

The conventions (slow blocks, declared exit status, elided output) are in the
docstring of `bookrun.py` and in book/CONTRIBUTING-BOOK.md. New pages are
collected automatically.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from bookrun import (
    MAX_COMMANDS_PER_BLOCK,
    SLOW_COMMAND_TIMEOUT_S,
    Command,
    ConsoleBlock,
    check_block,
    console_blocks,
    first_missing_line,
)


def _params() -> list:
    params = []
    for block in console_blocks():
        marks = []
        if block.slow:
            # Each command has its own limit (bookrun: SLOW_COMMAND_TIMEOUT_S); the
            # suite's pytest-timeout (300 s) must not cut a slow block short first.
            seconds = SLOW_COMMAND_TIMEOUT_S * min(len(block.commands), MAX_COMMANDS_PER_BLOCK)
            marks += [pytest.mark.slow, pytest.mark.timeout(seconds + 60)]
        if block.skip_reason:
            marks.append(pytest.mark.skip(reason=block.skip_reason))
        params.append(pytest.param(block, id=block.id, marks=marks))
    return params


@pytest.fixture(scope="module")
def page_dir(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """One working directory per page, shared by its blocks (run in page order)."""
    dirs: dict[str, Path] = {}

    def get(page: str) -> Path:
        if page not in dirs:
            dirs[page] = tmp_path_factory.mktemp(page.replace("/", "-").removesuffix(".md"))
        return dirs[page]

    return get


@pytest.mark.parametrize("block", _params())
def test_console_block_runs_as_shown(block: ConsoleBlock, page_dir: Callable[[str], Path]) -> None:
    failures = check_block(block, page_dir(block.page))
    assert not failures, "\n".join(failures)


def test_the_book_shows_commands() -> None:
    blocks = console_blocks()
    assert any(b.page == "ch0-world.md" for b in blocks)
    assert any(c.argv[:3] == ("d11", "sim", "demo") for b in blocks for c in b.commands)


# The collector itself: it must be able to say no.


def write_page(tmp_path: Path, body: str) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir(exist_ok=True)
    (docs / "page.md").write_text(body, encoding="utf-8")
    return docs


def test_blocks_are_parsed_with_their_options(tmp_path: Path) -> None:
    docs = write_page(
        tmp_path,
        "# P\n\n```console\n$ d11 --help\nUsage: d11\n...\n  bench\n```\n\n"
        "<!-- test: slow exit=2 -->\n```console\n$ d11 bench \\\n    nothing --x 1\n```\n\n"
        "!!! note\n    <!-- test: skip needs docker -->\n"
        "    ```console\n    $ d11 node\n    ```\n\n"
        "```bash\npip install anything   # not run: bash, not console\n```\n",
    )
    first, second, third = console_blocks(docs)
    assert first == ConsoleBlock(
        "page.md", 3, (Command(("d11", "--help"), ("Usage: d11", "  bench")),)
    )
    assert (second.line, second.slow, second.exit_code) == (11, True, 2)
    assert second.commands == (Command(("d11", "bench", "nothing", "--x", "1"), ()),)
    assert third.skip_reason == "needs docker"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("```console\n$ rm -rf /\n```\n", "only `\\$ d11"),
        ("```console\noutput first\n$ d11 --help\n```\n", "output before"),
        ("<!-- test: fast -->\n```console\n$ d11 --help\n```\n", "unknown test option"),
        ("<!-- test: skip -->\n```console\n$ d11 --help\n```\n", "needs a reason"),
        ("```console\n$ d11 --help \\\n```\n", "backslash"),
        ("```bash\n$ d11 --help\n```\n", "would never run"),
    ],
    ids=[
        "not-d11",
        "output-first",
        "unknown-option",
        "skip-without-reason",
        "backslash",
        "in-bash",
    ],
)
def test_malformed_blocks_are_errors(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        console_blocks(write_page(tmp_path, body))


def test_shown_lines_must_appear_in_order() -> None:
    output = "alpha   one\nbeta two\ngamma three\n"
    assert first_missing_line(("alpha one", "gamma"), output) is None
    assert first_missing_line(("gamma", "alpha"), output) == "alpha"
    assert first_missing_line(("delta",), output) == "delta"


def test_a_block_that_lies_fails_and_a_true_one_passes(tmp_path: Path) -> None:
    docs = write_page(
        tmp_path,
        "```console\n$ d11 --help\nUsage: d11 [OPTIONS] COMMAND [ARGS]...\n```\n\n"
        "```console\n$ d11 --help\nThis line is not printed\n```\n\n"
        "```console\n$ d11 no-such-command\n```\n\n"
        "<!-- test: exit=2 -->\n```console\n$ d11 no-such-command\n```\n",
    )
    true, lying, failing, declared = console_blocks(docs)
    assert check_block(true, tmp_path) == []
    assert "did not print 'This line is not printed'" in check_block(lying, tmp_path)[0]
    assert "exited 2, the book says 0" in check_block(failing, tmp_path)[0]
    assert check_block(declared, tmp_path) == []
