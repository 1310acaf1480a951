"""The type ratchet: mypy's errors, `Any` uses and `type: ignore` comments only fall.

Three counts over the five floors (reference, checks, chapters, tui, learn),
each held to a baseline recorded in `tools/type_baseline.json`:

- `mypy_errors`: what `mypy` (configured in pyproject.toml) reports;
- `any_uses`: every `Any` the code names (`Any`, `typing.Any`), imports aside;
- `type_ignores`: every `# type: ignore` comment.

A count above its baseline fails; a count below it is progress, recorded with
`--update` so that it cannot rise again:

    .venv/bin/python tools/typecheck.py            # mypy and both counts (CI)
    .venv/bin/python tools/typecheck.py --no-mypy  # the two counts only (about a second)
    .venv/bin/python tools/typecheck.py --update   # record counts that fell
    .venv/bin/python tools/typecheck.py --since REV  # where counts rose since a revision

mypy keeps its cache in .mypy_cache: a cold run takes 35-45 s on two busy
cores, a warm one about 2 s. That is why mypy runs as its own step in
`.ci/run`, while the default suite counts only `Any` and `type: ignore`
(tests/platform/test_type_ratchet.py).
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import re
import subprocess
import sys
import tokenize
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("reference", "checks", "chapters", "tui", "learn")
BASELINE = ROOT / "tools" / "type_baseline.json"
UPDATE_HINT = ".venv/bin/python tools/typecheck.py --update"

_TYPE_IGNORE = re.compile(r"#\s*type:\s*ignore\b")
_MYPY_FOUND = re.compile(r"^Found (\d+) errors? in \d+ files?", re.MULTILINE)
_MYPY_CLEAN = re.compile(r"^Success: no issues found", re.MULTILINE)


@dataclass(frozen=True)
class Counts:
    """What the ratchet holds; a count left as None was not measured."""

    mypy_errors: int | None
    any_uses: int
    type_ignores: int


def any_uses(source: str) -> int:
    """How many times the code names `Any`: `Any` or `typing.Any`, imports not counted.

    The AST holds annotations as expressions, so an `Any` in an annotation is
    counted, and one in a comment or a docstring is not.
    """
    if "Any" not in source:
        return 0
    return sum(
        1
        for node in ast.walk(ast.parse(source))
        if (isinstance(node, ast.Name) and node.id == "Any")
        or (isinstance(node, ast.Attribute) and node.attr == "Any")
    )


def type_ignores(source: str) -> int:
    """How many `# type: ignore` comments (with or without an error code) the source holds."""
    if not _TYPE_IGNORE.search(source):  # most files: no need to tokenize (the slow part)
        return 0
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return sum(1 for t in tokens if t.type == tokenize.COMMENT and _TYPE_IGNORE.search(t.string))


def source_files(root: Path = ROOT) -> list[Path]:
    """The Python files of the five floors, in a stable order."""
    return sorted(
        path
        for folder in FOLDERS
        for path in (root / folder).rglob("*.py")
        if "__pycache__" not in path.parts
    )


def count_sources(root: Path = ROOT) -> Counts:
    """`Any` uses and `type: ignore` comments over every source file (mypy not run)."""
    any_total = ignore_total = 0
    for path in source_files(root):
        source = path.read_text(encoding="utf-8")
        any_total += any_uses(source)
        ignore_total += type_ignores(source)
    return Counts(mypy_errors=None, any_uses=any_total, type_ignores=ignore_total)


def mypy_error_count(output: str) -> int:
    """The error total from mypy's summary line; a missing summary is mypy failing to run."""
    if _MYPY_CLEAN.search(output):
        return 0
    found = _MYPY_FOUND.search(output)
    if found is None:
        raise RuntimeError(f"mypy gave no summary line:\n{output[-2000:]}")
    return int(found.group(1))


def run_mypy(root: Path = ROOT) -> int:
    """Run mypy as pyproject.toml configures it; its error count."""
    done = subprocess.run(
        [sys.executable, "-m", "mypy"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode not in (0, 1):  # 2: mypy itself failed (bad config, crash)
        raise RuntimeError(f"mypy exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return mypy_error_count(done.stdout)


def read_baseline() -> Counts:
    data = json.loads(BASELINE.read_text(encoding="utf-8"))
    return Counts(**data)


def compare(now: Counts, baseline: Counts) -> tuple[list[str], list[str]]:
    """(rose, fell): one line per count above, and per count below, its baseline.

    A count that was not measured (mypy skipped) is neither.
    """
    rose: list[str] = []
    fell: list[str] = []
    for name, value in asdict(now).items():
        recorded = getattr(baseline, name)
        if value is None or recorded is None:
            continue
        if value > recorded:
            rose.append(f"{name}: {value}, above the baseline of {recorded}")
        elif value < recorded:
            fell.append(f"{name}: {value}, below the baseline of {recorded}")
    return rose, fell


def lowered(now: Counts, baseline: Counts) -> Counts:
    """The baseline with every measured count that fell taken down to it (never up)."""
    merged = asdict(baseline)
    for name, value in asdict(now).items():
        if value is not None and (merged[name] is None or value < merged[name]):
            merged[name] = value
    return Counts(**merged)


def rises_since(rev: str, root: Path = ROOT) -> list[str]:
    """Per file, where `Any` uses or `type: ignore` comments rose since git revision `rev`."""
    out: list[str] = []
    for path in source_files(root):
        name = path.relative_to(root).as_posix()
        then = subprocess.run(
            ["git", "show", f"{rev}:{name}"], cwd=root, capture_output=True, text=True, check=False
        )
        old = then.stdout if then.returncode == 0 else ""  # a file added since: from nothing
        new = path.read_text(encoding="utf-8")
        for what, count in (("Any", any_uses), ("type: ignore", type_ignores)):
            before, after = count(old), count(new)
            if after > before:
                out.append(f"{name}: {what} {before} -> {after}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--no-mypy", action="store_true", help="count Any and type: ignore only")
    parser.add_argument(
        "--update", action="store_true", help="record the counts that fell in the baseline"
    )
    parser.add_argument(
        "--since", metavar="REV", help="list the files where a count rose since git revision REV"
    )
    args = parser.parse_args(argv)
    if args.since:
        for line in rises_since(args.since):
            print(line)
        return 0
    counted = count_sources()
    errors = None if args.no_mypy else run_mypy()
    now = Counts(errors, counted.any_uses, counted.type_ignores)
    baseline = read_baseline()
    rose, fell = compare(now, baseline)
    print(f"mypy errors {now.mypy_errors}, Any {now.any_uses}, type: ignore {now.type_ignores}")
    for line in rose:
        print(f"error: {line}: fix the new ones (the baseline only falls)", file=sys.stderr)
    if rose:
        print("where: .venv/bin/python tools/typecheck.py --since HEAD (or a branch point)")
    if rose:
        return 1
    if fell and args.update:
        BASELINE.write_text(json.dumps(asdict(lowered(now, baseline)), indent=2) + "\n")
        print(f"baseline lowered in {BASELINE}: commit it")
    elif fell:
        for line in fell:
            print(f"fell: {line}; record it with: {UPDATE_HINT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
