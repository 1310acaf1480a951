"""One floor per layer: reference <- checks <- chapters <- tui and the CLI.

Read from the source (every import, function-local and TYPE_CHECKING ones
included, since those are the ones a reader of a file's head never sees):

- no file under checks/ imports chapters or tui (the harness takes its
  stages from its caller: checks/harness/contract.py);
- no file under reference/ imports checks, chapters or tui;
- no class under chapters/ derives from reference.node.Node: components live
  in reference/, chapters compose them;
- no two files import each other, directly or through others.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

from reference.node import Node

ROOT = Path(__file__).resolve().parents[2]

# Components still under chapters/, each with the reason it is still there.
# This list only shrinks: a new chapter composes components from reference/.
NODE_CLASSES_UNDER_CHAPTERS: dict[str, str] = {}


def _python_files(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


def _imported_modules(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Every module a file imports, wherever in the file: (line, dotted name)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def _upward_imports(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in _python_files(folder):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, module in _imported_modules(tree):
            if module.split(".")[0] in forbidden:
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return found


def test_checks_imports_neither_chapters_nor_tui() -> None:
    assert _upward_imports("checks", ("chapters", "tui")) == []


def test_reference_imports_nothing_above_it() -> None:
    assert _upward_imports("reference", ("checks", "chapters", "tui", "learn")) == []


def test_an_upward_import_is_found_wherever_it_hides(tmp_path: Path) -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from chapters.stage import Stage\n"
        "def f():\n    import tui.app\n"
    )
    modules = [m for _, m in _imported_modules(ast.parse(source))]
    assert modules == ["typing", "chapters.stage", "tui.app"]


class _Classes:
    """Resolves the classes defined under chapters/ to the classes they derive from."""

    def __init__(self) -> None:
        self._trees: dict[Path, ast.Module] = {}

    def tree(self, path: Path) -> ast.Module:
        if path not in self._trees:
            self._trees[path] = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        return self._trees[path]

    def is_node(self, path: Path, class_name: str, depth: int = 0) -> bool:
        """Whether `class_name` in `path` derives from Node, through any chain of bases."""
        assert depth < 20, f"base classes nest too deep at {path}:{class_name}"
        tree = self.tree(path)
        cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name)
        return any(self._base_is_node(path, tree, base, depth) for base in cls.bases)

    def _base_is_node(self, path: Path, tree: ast.Module, base: ast.expr, depth: int) -> bool:
        name = ast.unparse(base)
        head, _, rest = name.partition(".")
        local = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
        if not rest and head in local:
            return self.is_node(path, head, depth + 1)
        target = self._import_of(tree, head)
        if target is None:
            return False  # a builtin or a name this file does not import (ABC, object)
        module, attr = target
        if rest:
            module, attr = f"{module}.{attr}" if attr else module, rest
        if module.startswith("chapters.") or module == "chapters":
            source = ROOT / Path(*module.split("."))
            file = source / "__init__.py" if source.is_dir() else source.with_suffix(".py")
            return self.is_node(file, attr, depth + 1)
        obj = getattr(importlib.import_module(module), attr, None)
        return isinstance(obj, type) and issubclass(obj, Node)

    @staticmethod
    def _import_of(tree: ast.Module, name: str) -> tuple[str, str] | None:
        """(module, attribute) a top-level name was imported as; attribute "" for a module."""
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    if (alias.asname or alias.name) == name:
                        return node.module, alias.name
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if (alias.asname or alias.name) == name:
                        return alias.name, ""
        return None


def _node_classes_under_chapters() -> list[str]:
    classes = _Classes()
    found = []
    for path in _python_files("chapters"):
        for node in classes.tree(path).body:
            if isinstance(node, ast.ClassDef) and classes.is_node(path, node.name):
                found.append(f"{path.relative_to(ROOT)}:{node.name}")
    return found


def test_chapters_hold_no_component_but_the_listed_ones() -> None:
    found = _node_classes_under_chapters()
    assert sorted(set(found) - set(NODE_CLASSES_UNDER_CHAPTERS)) == []
    # A component that moved out must leave the list too, so the list stays true.
    assert sorted(set(NODE_CLASSES_UNDER_CHAPTERS) - set(found)) == []


def test_a_component_is_found_through_its_bases(tmp_path: Path) -> None:
    source = tmp_path / "stage.py"
    source.write_text(
        "from abc import ABC\n"
        "import reference.node as node\n"
        "from reference.node import Node as Base\n"
        "class Direct(Base): ...\n"
        "class Dotted(node.Node): ...\n"
        "class Inherited(Direct): ...\n"
        "class Plain(ABC): ...\n"
    )
    classes = _Classes()
    found = [n for n in ("Direct", "Dotted", "Inherited", "Plain") if classes.is_node(source, n)]
    assert found == ["Direct", "Dotted", "Inherited"]


def _import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (anywhere in the file)."""
    files: dict[str, Path] = {}
    for folder in ("reference", "checks", "chapters", "tui", "learn"):
        for path in _python_files(folder):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            files[name.removesuffix(".__init__")] = path
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.update([node.module, *(f"{node.module}.{a.name}" for a in node.names)])
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[name] = {m for m in found if m in files and m != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            nxt = next(edges, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def test_no_import_cycle_between_files() -> None:
    """No two files import each other, even through others (issue 12).

    A package's __init__ and its submodule count too, and so do imports inside
    functions and under TYPE_CHECKING: a cycle hidden there is still one a
    reader has to untangle. Where one side only needs the other's shape,
    declare the shape it reads as a Protocol (`chapters.metrics.Measured`).
    """
    assert sorted(map(sorted, _cycles(_import_graph()))) == []


def test_a_cycle_is_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [frozenset({"a", "b", "c"})]
