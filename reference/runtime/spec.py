"""How a node factory crosses a process boundary: by name, or by value.

In the simulator a factory is any callable, closures included. A node in
another OS process (or container) is built by the child, so the factory has
to travel. Two ways:

- by name (`NodeSpec`): the import path of a module-level callable,
  `"module:qualname"`, plus keyword arguments that survive JSON. The child
  imports the module (which also registers the node's message types with
  the codec) and calls `factory(node_id, **kwargs) -> Node`.
- by value (`PickledSpec`): a factory that cannot be named (a lambda, a
  closure over a config object that itself holds lambdas: how the chapters
  build their nodes) is serialized with cloudpickle, which writes the code
  of lambdas and closures and the values they capture, while classes and
  functions of importable modules travel by name. The bytes go to a file in
  the run's data directory; the node's config carries their SHA-256 and an
  HMAC under the cluster secret. The child checks both
  before unpickling. Only the child's code is trusted to import: the
  project and its venv are the same on both sides (bind-mounted read-only
  into containers).

Either way the child rebuilds the factory at boot and at every restart and
calls it with the node id, exactly like the simulator's `factory(node_id)`.

`factory_spec` picks: by name when it can, by value otherwise.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import importlib
import io
import json
import pickle
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reference.node import Node, NodeFactory

PICKLE_MAX_BYTES = 64 << 20  # a factory's pickle; chapters' are 1-200 KB
_MAC_CONTEXT = b"d11-pickle-v1"


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

    Closures and lambdas cannot be named, so they are refused here with a
    message saying what to do instead; `ProcessRuntime.add_node` then sends
    them by value (`pickle_factory`), which is what `nameable` is for.
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


@dataclass(frozen=True)
class PickledSpec:
    """A factory shipped by value: `file` (in the run's data dir) holds its pickle.

    SECURITY: unpickling runs code, so the bytes must come only from the
    harness that started this node. They do: the harness writes the file into
    its own data directory and puts its SHA-256 in the node's config, which
    reaches the child on its command line (a process) or in a file next to it
    (a container). The config also carries an HMAC-SHA256 of the bytes
    under the cluster secret (every run has one, loopback included), which
    the child gets in its environment and checks before unpickling: a file
    swapped by anyone without the secret is refused.
    """

    file: str  # a name inside the data dir
    sha256: str
    mac: str = ""  # hex HMAC under the cluster secret ("" without one)

    def to_json(self) -> dict[str, Any]:
        return {"pickled": self.file, "sha256": self.sha256, "mac": self.mac}

    @classmethod
    def from_json(cls, data: Any) -> PickledSpec:
        if not isinstance(data, dict) or not all(
            isinstance(data.get(k), str) for k in ("pickled", "sha256", "mac")
        ):
            raise SpecError(f"malformed pickled node spec {data!r:.100}")
        if Path(data["pickled"]).name != data["pickled"]:
            raise SpecError(f"pickled factory {data['pickled']!r} must be a name in the data dir")
        return cls(data["pickled"], data["sha256"], data["mac"])

    def resolve(self, data_dir: str | Path, secret: bytes | None, node_id: str) -> NodeFactory:
        """Read, verify and unpickle the factory (this runs in the child)."""
        path = Path(data_dir) / self.file
        try:
            blob = path.read_bytes()
        except OSError as exc:
            raise SpecError(f"cannot read the factory of {node_id} ({path}): {exc}") from None
        if not hmac.compare_digest(hashlib.sha256(blob).hexdigest(), self.sha256):
            raise SpecError(f"the factory file of {node_id} does not match its config: refused")
        if secret is not None and not hmac.compare_digest(seal(secret, node_id, blob), self.mac):
            raise SpecError(f"the factory file of {node_id} is not sealed by the cluster: refused")
        factory = unpickle(blob, node_id)
        if not callable(factory):
            raise SpecError(f"the pickled factory of {node_id} is not callable")

        def build(nid: str) -> Node:
            node = factory(nid)
            if not isinstance(node, Node):
                raise SpecError(f"the factory of {nid} returned {type(node).__name__}")
            return node

        return build


def seal(secret: bytes, node_id: str, blob: bytes) -> str:
    """HMAC-SHA256 of a pickle, bound to the node it is for."""
    message = _MAC_CONTEXT + b"|" + node_id.encode() + b"|" + blob
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


class Detached:
    """Stands in the child for a harness object a pickled factory captured.

    A stage's closure may capture the deployment, which holds the harness's
    runtime: the runtime stays behind (it owns sockets and processes), and
    touching it from a node is a bug this names.
    """

    def __init__(self, what: str) -> None:
        self._what = what

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise RuntimeError(
            f"a node process used {self._what}.{name}: that object stays in the harness"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (Detached, (self._what,))


FORWARD_TRACE = "forwarded-call"  # the trace kind a forwarded call travels as
_FORWARD_PID = "forward:"


@dataclass(frozen=True, eq=False)
class Forwarded:
    """Put in `stays_behind`: `owner.method`, captured by a factory, runs in the harness.

    A stage's nodes may be handed a callback of the harness: the deployment's
    `record`, which appends to the history (chapter 6's sidecars record what
    the degrade controls decide). In the simulator every node shares the
    harness's memory; a node in another process would call a copy, and its
    records would never reach the history. So the bound method crosses as a
    `ForwardedCall`: each call's arguments (as JSON) go up the node's control
    channel as a trace event of kind FORWARD_TRACE with field `channel`, and
    the harness, which subscribes to its telemetry, calls the real method.
    One way, and as durable as the node's telemetry: what a node killed had
    not yet flushed (at most METRICS_FLUSH_MS of it) is lost.
    """

    owner: object
    method: str
    channel: str


class ForwardedCall:
    """In a node process: a harness method, called by sending its arguments up."""

    def __init__(self, channel: str) -> None:
        self.channel = channel

    def __call__(self, *args: Any) -> None:
        sink = _forward_sink
        if sink is None:
            raise RuntimeError(f"{self.channel}: a forwarded call outside a node process")
        sink(self.channel, args)

    def __reduce__(self) -> tuple[Any, ...]:
        return (ForwardedCall, (self.channel,))


_forward_sink: Callable[[str, tuple[Any, ...]], None] | None = None


def set_forward_sink(sink: Callable[[str, tuple[Any, ...]], None] | None) -> None:
    """Where this node process's `ForwardedCall`s go (its control channel)."""
    global _forward_sink
    _forward_sink = sink


def pickle_value(value: Any, stays_behind: Iterable[object] = ()) -> bytes:
    """cloudpickle `value`; objects in `stays_behind` (by identity) become `Detached`.

    A `Forwarded(owner, method, channel)` in `stays_behind` makes every bound
    method `owner.method` a `ForwardedCall(channel)` instead.
    """
    import cloudpickle

    behind: dict[int, str] = {}
    forwards: dict[tuple[int, str], str] = {}
    for obj in stays_behind:
        if isinstance(obj, Forwarded):
            forwards[(id(obj.owner), obj.method)] = obj.channel
        else:
            behind[id(obj)] = type(obj).__name__

    class _Pickler(cloudpickle.Pickler):  # type: ignore[misc]
        def persistent_id(self, obj: Any) -> str | None:
            if forwards and isinstance(obj, types.MethodType):
                channel = forwards.get((id(obj.__self__), obj.__name__))
                if channel is not None:
                    return _FORWARD_PID + channel
            return behind.get(id(obj))

    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    blob = buffer.getvalue()
    if len(blob) > PICKLE_MAX_BYTES:
        raise SpecError(f"pickled value is {len(blob)} bytes (max {PICKLE_MAX_BYTES})")
    return blob


def unpickle(blob: bytes, what: str) -> Any:
    """The inverse of `pickle_value` (cloudpickle's output is plain pickle)."""

    class _Unpickler(pickle.Unpickler):
        def persistent_load(self, pid: Any) -> Any:
            if isinstance(pid, str) and pid.startswith(_FORWARD_PID):
                return ForwardedCall(pid[len(_FORWARD_PID) :])
            return Detached(f"the harness's {pid}")

    try:
        return _Unpickler(io.BytesIO(blob)).load()
    except Exception as exc:  # any error of the pickled code: one line, which node
        raise SpecError(f"cannot unpickle {what}: {type(exc).__name__}: {exc}") from None


def pickle_factory(
    factory: NodeFactory,
    node_id: str,
    data_dir: str | Path,
    secret: bytes | None,
    stays_behind: Iterable[object] = (),
) -> PickledSpec:
    """Write `factory` by value to `<data_dir>/<node_id>.factory`; its spec to send."""
    try:
        blob = pickle_value(factory, stays_behind)
    except SpecError:
        raise
    except Exception as exc:  # what cloudpickle cannot serialize (a socket, a lock)
        raise SpecError(
            f"the factory of {node_id} cannot be pickled ({type(exc).__name__}: {exc}); "
            "host it with add_local_node instead"
        ) from None
    name = f"{node_id}.factory"
    path = Path(data_dir) / name
    path.write_bytes(blob)
    mac = seal(secret, node_id, blob) if secret is not None else ""
    return PickledSpec(name, hashlib.sha256(blob).hexdigest(), mac)


def spec_from_json(data: Any) -> NodeSpec | PickledSpec:
    """Either kind of spec, from a node config."""
    if isinstance(data, dict) and "pickled" in data:
        return PickledSpec.from_json(data)
    return NodeSpec.from_json(data)


def nameable(factory: NodeSpec | str | NodeFactory) -> NodeSpec | None:
    """`spec_of(factory)`, or None when it can only travel by value."""
    try:
        return spec_of(factory)
    except SpecError:
        if isinstance(factory, NodeSpec | str):
            raise  # a malformed name is an error, not a reason to pickle
        return None
