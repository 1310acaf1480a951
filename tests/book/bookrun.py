"""Reading the book as a test suite: its snippets, its commands, its Python.

The book cannot drift from the code because three things in it are checked:

1. Snippets. Every `--8<-- "path:section"` a page names must exist in the
   source with both its `[start:section]` and `[end:section]` markers.

2. Commands. Every fenced ```console block is a transcript: lines starting
   with `$ d11 ...` are commands, and the lines under a command are output
   it must print. The rules, for every page of every chapter, present and
   future (nothing to register: a new page is collected automatically):

   - Each command runs as a subprocess (the `d11` of this venv), from a
     temporary directory shared by all the blocks of one page, in page order,
     so a later block may use a file an earlier one wrote. Environment:
     COLUMNS=100, NO_COLOR=1, TERM=dumb (plain text, stable wrapping), the
     venv's bin first on PATH (as with the venv activated).
   - It must exit 0, unless the block declares another status.
   - Each shown output line must appear, in order, within the output (as a
     substring, whitespace runs collapsed). A line `...` marks elided output
     and is not checked; shown lines need not be consecutive.
   - A command may continue on the next line after a trailing backslash.
   - Only `d11` commands run. Setup commands (pip, mkdocs) go in a ```bash
     block, which is shown but never run.
   - An HTML comment on the line just above the fence carries options:
       <!-- test: slow -->         runs only in the slow run (pytest -m slow):
                                   benchmarks and anything over a few seconds
       <!-- test: exit=2 -->       the status the commands must exit with
       <!-- test: slow exit=1 -->  both
       <!-- test: skip REASON -->  not run at all; the reason is required

3. Python. Fenced ```python blocks run in page order in one namespace per
   page (sybil), except blocks that only include a snippet (the source has
   its own tests) and blocks under `<!-- skip: next -->`.
"""

from __future__ import annotations

import doctest
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sybil import Document, Example
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser
from sybil.parsers.markdown.lexers import FencedCodeBlockLexer

REPO_ROOT = Path(__file__).resolve().parents[2]
BOOK_DIR = REPO_ROOT / "book"
DOCS_DIR = BOOK_DIR / "docs"

COMMAND_TIMEOUT_S = 120.0
SLOW_COMMAND_TIMEOUT_S = 600.0
MAX_COMMANDS_PER_BLOCK = 20

# `--8<-- "path"` or `--8<-- "path:section"` alone on a line; `;--8<--` is escaped.
_SNIPPET_REF = re.compile(r"""^[ \t]*(?<!;)--8<--[ \t]+(["'])(?P<target>[^"'\n]+)\1[ \t]*$""", re.M)
_SECTION_NAME = re.compile(r"[a-z][-_0-9a-z]*")
_OPTIONS = re.compile(r"^[ \t]*<!--[ \t]*test:(?P<options>.*?)-->[ \t]*$")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def pages(docs_dir: Path = DOCS_DIR) -> list[Path]:
    return sorted(docs_dir.rglob("*.md"))


def page_name(page: Path, docs_dir: Path = DOCS_DIR) -> str:
    return page.relative_to(docs_dir).as_posix()


# ---------------------------------------------------------------- snippets


@dataclass(frozen=True)
class SnippetRef:
    page: str
    line: int
    path: str  # relative to the repository root
    section: str | None  # None: the whole file, or a line range

    def __str__(self) -> str:
        named = f"{self.path}:{self.section}" if self.section else self.path
        return f"{self.page}:{self.line} names {named!r}"


def snippet_refs(docs_dir: Path = DOCS_DIR) -> list[SnippetRef]:
    refs = []
    for page in pages(docs_dir):
        text = page.read_text(encoding="utf-8")
        for match in _SNIPPET_REF.finditer(text):
            target = match.group("target")
            path, _, section = target.rpartition(":")
            if not path or not _SECTION_NAME.fullmatch(section):
                path, section = target.split(":", 1)[0], ""  # a line range or no section
            line = text.count("\n", 0, match.start()) + 1
            refs.append(SnippetRef(page_name(page, docs_dir), line, path, section or None))
    return refs


def missing_snippets(docs_dir: Path = DOCS_DIR, root: Path = REPO_ROOT) -> list[str]:
    """One line per snippet the book names that the source does not hold."""
    problems = []
    for ref in snippet_refs(docs_dir):
        source = root / ref.path
        if not source.is_file():
            problems.append(f"{ref}: no such file")
            continue
        if ref.section is None:
            continue
        text = source.read_text(encoding="utf-8")
        for kind in ("start", "end"):
            marker = re.compile(rf"--8<--[ \t]*\[[ \t]*{kind}[ \t]*:[ \t]*{ref.section}[ \t]*\]")
            if not marker.search(text):
                problems.append(f"{ref}: no [{kind}:{ref.section}] marker in {ref.path}")
    return problems


# ---------------------------------------------------------------- commands


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    expected: tuple[str, ...]  # output lines that must appear, in order


@dataclass(frozen=True)
class ConsoleBlock:
    page: str
    line: int
    commands: tuple[Command, ...]
    exit_code: int = 0
    slow: bool = False
    skip_reason: str | None = None

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def _parse_options(comment: str, where: str) -> tuple[int, bool, str | None]:
    exit_code, slow, skip_reason = 0, False, None
    words = comment.split()
    for i, word in enumerate(words):
        if word == "slow":
            slow = True
        elif word.startswith("exit="):
            exit_code = int(word.removeprefix("exit="))
        elif word == "skip":
            skip_reason = " ".join(words[i + 1 :])
            if not skip_reason:
                raise ValueError(f"{where}: `test: skip` needs a reason")
            break
        else:
            raise ValueError(f"{where}: unknown test option {word!r} (slow, exit=N, skip REASON)")
    return exit_code, slow, skip_reason


def _parse_transcript(source: str, where: str) -> tuple[Command, ...]:
    commands: list[Command] = []
    argv: list[str] | None = None
    expected: list[str] = []
    pending = ""  # a command continued with a trailing backslash
    for raw in source.splitlines():
        line = raw.rstrip()
        if pending or line.startswith("$ "):
            text = pending + (line[2:] if not pending else line)
            if text.endswith("\\"):
                pending = text[:-1] + " "
                continue
            pending = ""
            if argv is not None:
                commands.append(Command(tuple(argv), tuple(expected)))
            argv, expected = shlex.split(text), []
            if not argv or argv[0] != "d11":
                raise ValueError(
                    f"{where}: only `$ d11 ...` commands run in console blocks, not {text!r};"
                    " put setup commands in a bash block"
                )
        elif argv is None:
            if line.strip():
                raise ValueError(f"{where}: output before the first `$ d11` command: {line!r}")
        elif line.strip() and line.strip() not in ("...", "…"):
            expected.append(line)
    if pending:
        raise ValueError(f"{where}: the last command ends with a backslash")
    if argv is not None:
        commands.append(Command(tuple(argv), tuple(expected)))
    if not commands:
        raise ValueError(f"{where}: a console block without a `$ d11` command")
    if len(commands) > MAX_COMMANDS_PER_BLOCK:
        raise ValueError(f"{where}: more than {MAX_COMMANDS_PER_BLOCK} commands in one block")
    return tuple(commands)


def console_blocks(docs_dir: Path = DOCS_DIR) -> list[ConsoleBlock]:
    """Every ```console block of the book, parsed (a malformed one raises ValueError)."""
    lexer = FencedCodeBlockLexer(language=r"[^\n]*")
    blocks = []
    for page in pages(docs_dir):
        text = page.read_text(encoding="utf-8")
        document = Document(text, str(page))
        lines = text.splitlines()
        for region in lexer(document):
            line = text.count("\n", 0, region.start) + 1
            where = f"{page_name(page, docs_dir)}:{line}"
            info = str(region.lexemes["language"]).strip()
            if info.split(" ", 1)[0] != "console":  # "console title=..." is still one
                if re.search(r"^[ \t]*\$ d11\b", str(region.lexemes["source"]), re.M):
                    raise ValueError(
                        f"{where}: a `$ d11` transcript in a {info or 'plain'} block would"
                        " never run; make it a console block"
                    )
                continue
            above = lines[line - 2] if line >= 2 else ""
            match = _OPTIONS.match(above)
            exit_code, slow, skip = (
                _parse_options(match["options"], where) if match else (0, False, None)
            )
            commands = _parse_transcript(str(region.lexemes["source"]), where)
            blocks.append(
                ConsoleBlock(page_name(page, docs_dir), line, commands, exit_code, slow, skip)
            )
    return blocks


def d11_argv(argv: tuple[str, ...]) -> list[str]:
    """The command line for this venv's `d11` (the script beside this Python)."""
    assert argv and argv[0] == "d11", argv
    script = Path(sys.executable).parent / "d11"
    if script.exists():
        return [str(script), *argv[1:]]
    return [sys.executable, "-c", "from tui.cli import main; main()", *argv[1:]]


def run_command(command: Command, cwd: Path, timeout_s: float) -> tuple[int, str]:
    """Run one command; returns (exit status, stdout and stderr as plain text)."""
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}
    env.pop("FORCE_COLOR", None)
    # As a reader with the venv activated: `d11` on PATH, so the commands a run
    # prints to copy (`replay: d11 replay FOLDER`) read as the book shows them.
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([venv_bin, env.get("PATH", "")])
    done = subprocess.run(
        d11_argv(command.argv),
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    return done.returncode, _ANSI.sub("", done.stdout + done.stderr)


def _squash(line: str) -> str:
    return " ".join(line.split())


def first_missing_line(expected: tuple[str, ...], output: str) -> str | None:
    """The first expected line not found (in order) in `output`, or None if all are."""
    actual = [_squash(line) for line in output.splitlines()]
    at = 0
    for want in expected:
        needle = _squash(want)
        while at < len(actual) and needle not in actual[at]:
            at += 1
        if at == len(actual):
            return want
        at += 1
    return None


def check_block(block: ConsoleBlock, cwd: Path) -> list[str]:
    """Run a block's commands in order; one line per failure (empty: as shown)."""
    timeout_s = SLOW_COMMAND_TIMEOUT_S if block.slow else COMMAND_TIMEOUT_S
    for command in block.commands:
        shown = "$ " + shlex.join(command.argv)
        try:
            status, output = run_command(command, cwd, timeout_s)
        except subprocess.TimeoutExpired:
            return [f"{block.id}: `{shown}` ran longer than {timeout_s:.0f} s"]
        tail = "\n".join(output.splitlines()[-30:])
        if status != block.exit_code:
            return [
                f"{block.id}: `{shown}` exited {status}, the book says {block.exit_code}\n{tail}"
            ]
        missing = first_missing_line(command.expected, output)
        if missing is not None:
            return [f"{block.id}: `{shown}` did not print {missing!r} (in order)\n{tail}"]
    return []


# ---------------------------------------------------------------- python


class _BookPythonParser(PythonCodeBlockParser):
    """Python blocks, except those that only include a snippet from the source."""

    def __call__(self, document: Document) -> Iterator:  # type: ignore[override]
        for region in super().__call__(document):
            source = str(region.parsed)
            lines = [line for line in source.splitlines() if line.strip()]
            if lines and all(_SNIPPET_REF.match(line) for line in lines):
                continue
            yield region


def python_examples(page: Path) -> list[Example]:
    """The runnable Python of one page, in order, sharing one namespace."""
    parser = _BookPythonParser(doctest_optionflags=doctest.ELLIPSIS)
    document = Document.parse(str(page), parser, SkipParser())
    return list(document)
