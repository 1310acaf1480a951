"""Rooms too big to hold in one's head: functions over 80 lines, files over 800.

    .venv/bin/python tools/rooms.py                 # the five floors
    .venv/bin/python tools/rooms.py checks/txn      # some folders only

A function's length runs from its `def` (decorators aside) to its last line,
docstring and comments included: what a reader has to hold.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("reference", "checks", "chapters", "tui", "learn")
FUNCTION_LINES_MAX = 80
FILE_LINES_MAX = 800


def long_functions(path: Path, limit: int = FUNCTION_LINES_MAX) -> list[tuple[int, str, int]]:
    """(line, qualified name, length) of every function in `path` longer than `limit` lines."""
    found: list[tuple[int, str, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                length = (child.end_lineno or child.lineno) - child.lineno + 1
                if length > limit:
                    found.append((child.lineno, name, length))
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")

    visit(ast.parse(path.read_text(encoding="utf-8")), "")
    return found


def main(argv: list[str]) -> int:
    folders = argv or list(FOLDERS)
    paths = sorted(
        p for f in folders for p in (ROOT / f).rglob("*.py") if "__pycache__" not in p.parts
    )
    functions = files = 0
    for path in paths:
        where = path.relative_to(ROOT)
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > FILE_LINES_MAX:
            files += 1
            print(f"{where}: {lines} lines")
        for line, name, length in long_functions(path):
            functions += 1
            print(f"{where}:{line}: {name} {length} lines")
    print(
        f"{functions} functions over {FUNCTION_LINES_MAX} lines,"
        f" {files} files over {FILE_LINES_MAX}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
