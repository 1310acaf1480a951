"""Members: each node as the real runtimes see it, and the errors of adding or starting one.

A `Member` holds what the runtime keeps of one node: whether it runs in its
own process or on the runtime's loop, where it listens, how its factory
travels, its status and incarnation, its process, control channel or local
host, its clock's skew and drift, and the exit status of every process that
ended. ProcessRuntime (process.py) and DockerRuntime (docker.py) share it.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from typing import Literal

from reference.node import NodeFactory
from reference.runtime.base import NodeStatus
from reference.runtime.control import ControlClient
from reference.runtime.host import NodeHost
from reference.runtime.spec import NodeSpec, PickledSpec
from reference.runtime.transport import Address

Kind = Literal["process", "local"]
Link = tuple[str, str]  # (src, dst): messages from src to dst


@dataclass
class Member:
    """One node as the runtime sees it."""

    node_id: str
    kind: Kind
    addr: Address
    spec: NodeSpec | PickledSpec | None = None  # process nodes: by name or by value
    factory: NodeFactory | None = None  # local nodes
    status: NodeStatus = "crashed"  # until started
    incarnation: int = 0
    proc: subprocess.Popen[bytes] | None = None
    control: ControlClient | None = None
    host: NodeHost | None = None
    skew_ms: float = 0.0
    drift_ppm: float = 0.0
    exits: list[int] = field(default_factory=list)  # exit status of every process that ended


class RuntimeUsageError(RuntimeError):
    """A runtime misuse or a node that could not be started."""


class SpawnError(RuntimeError):
    """The process (or container) of a node could not be started; the node stays down."""
