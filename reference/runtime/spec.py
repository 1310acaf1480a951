"""How a node factory crosses a process boundary: by name, with JSON arguments.

In the simulator a factory is any callable, closures included. A node in
another OS process (or container) cannot receive a closure, so it gets a
`NodeSpec`: the import path of a module-level callable, `"module:qualname"`,
plus keyword arguments that survive JSON. The child imports the module
(which also registers the node's message types with the codec) and calls

    factory(node_id, **kwargs) -> Node

at boot and at every restart, exactly like the simulator's `factory(node_id)`.
"""

from __future__ import annotations

import functools
import importlib
import json
from dataclasses import dataclass, field
from typing import Any

from reference.node import Node, NodeFactory


class SpecError(ValueError):
    """A factory that cannot be named, imported or called across processes."""


@dataclass(frozen=True)
class NodeSpec:
    """`target` is "package.module:callable"; `kwargs` must be JSON-encodable."""

    target: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        module, sep, name = self.target.partition(":")
        if not sep or not module or not name:
            raise SpecError(f"node target {self.target!r} must look like 'package.module:callable'")
        try:
            json.dumps(self.kwargs)
        except (TypeError, ValueError) as exc:
            raise SpecError(f"arguments of {self.target} are not JSON-encodable: {exc}") from None

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "kwargs": self.kwargs}

    @classmethod
    def from_json(cls, data: Any) -> NodeSpec:
        if not isinstance(data, dict) or not isinstance(data.get("target"), str):
            raise SpecError(f"malformed node spec {data!r:.100}")
        kwargs = data.get("kwargs", {})
        if not isinstance(kwargs, dict):
            raise SpecError(f"node spec kwargs must be an object, not {kwargs!r:.60}")
        return cls(target=data["target"], kwargs=kwargs)

    def resolve(self) -> NodeFactory:
        """Import the target and return `node_id -> Node` (this is what runs in the child)."""
        module_name, _, qualname = self.target.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
        except ImportError as exc:
            raise SpecError(
                f"cannot import {module_name!r} for node {self.target}: {exc}"
            ) from None
        for part in qualname.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                raise SpecError(f"{module_name!r} has no {qualname!r}")
        if not callable(obj):
            raise SpecError(f"{self.target} is not callable")
        factory = obj
        kwargs = dict(self.kwargs)

        def build(node_id: str) -> Node:
            node = factory(node_id, **kwargs)
            if not isinstance(node, Node):
                raise SpecError(f"{self.target}({node_id!r}) returned {type(node).__name__}")
            return node

        return build


def spec_of(factory: NodeSpec | str | NodeFactory) -> NodeSpec:
    """A NodeSpec for anything that can be named: a spec, a string, a function, a partial.

    Closures and lambdas cannot be named, so they are refused with a message
    saying what to do instead (use a module-level function, or a local node).
    """
    if isinstance(factory, NodeSpec):
        return factory
    if isinstance(factory, str):
        return NodeSpec(factory)
    kwargs: dict[str, Any] = {}
    func: Any = factory
    if isinstance(func, functools.partial):
        if func.args:
            raise SpecError("a partial passed to a process node may bind keyword arguments only")
        kwargs = dict(func.keywords)
        func = func.func
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", "")
    if module is None or "<locals>" in qualname or "<lambda>" in qualname or module == "__main__":
        raise SpecError(
            f"factory {qualname or func!r} cannot cross a process boundary: use a module-level "
            "function (or NodeSpec('module:callable', kwargs)), or host it with add_local_node"
        )
    return NodeSpec(f"{module}:{qualname}", kwargs)
