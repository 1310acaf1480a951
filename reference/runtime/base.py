"""The one interface a harness drives, whatever runs the nodes.

Three backends run the same node classes: `SimRuntime` (virtual time, one
process), `ProcessRuntime` (one OS process per node, TCP on loopback) and
`DockerRuntime` (the same processes in containers, links cut with
iptables). A nemesis or a workload written against `Backend` runs on all
three. The shape is the simulator's (notes/SIM_API.md), so `SimRuntime`
satisfies it as it stands:

    rt.node_ids(); rt.status(n) -> "up" | "crashed" | "paused"
    rt.crash(n); rt.restart(n); rt.pause(n); rt.resume(n)
    rt.set_clock(n, skew_ms=..., drift_ppm=...)
    rt.net.partition(groups, one_way=False); rt.net.cut(src, dst, one_way=True)
    rt.net.isolate(node_or_cell_or_city); rt.net.heal()
    rt.net.set_message_faults(loss=..., duplicate=..., reorder=...)
    rt.now_ms; rt.call_at(t_ms, fn); rt.call_after(delay_ms, fn)
    rt.run_for(duration_ms); rt.run_until(t_ms)

What differs is time: the simulator's milliseconds are virtual and a run is
exactly reproducible; the real backends' are wall milliseconds, and every
fault takes a moment to land (a restarted process boots, a cut reaches each
node over its control channel). Real backends also hold resources, so they
have `close()` (and are context managers); `close_backend` works on any.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal, Protocol, runtime_checkable

NodeStatus = Literal["up", "crashed", "paused"]


@runtime_checkable
class NetControl(Protocol):
    """Link faults. Groups and endpoints are node ids (cells and cities for isolate)."""

    def partition(self, groups: list[set[str]], one_way: bool = False) -> None:
        """Cut every link between different groups (only group i -> j, i < j, if one_way)."""
        ...

    def cut(self, src_nodes: Iterable[str], dst_nodes: Iterable[str], one_way: bool = True) -> None:
        """Cut src -> dst for every pair (and dst -> src unless one_way)."""
        ...

    def isolate(self, target: str) -> None:
        """Cut a node, or every node of a cell or city, off from everything else."""
        ...

    def heal(self) -> None:
        """Restore every link."""
        ...

    def set_message_faults(
        self, loss: float = 0.0, duplicate: float = 0.0, reorder: float = 0.0
    ) -> None:
        """Lose, duplicate, hold back this share of every message; zeros end it (heal does not)."""
        ...


@runtime_checkable
class Backend(Protocol):
    """What a harness needs from a runtime: membership, node faults, net faults, time."""

    @property
    def net(self) -> NetControl: ...

    @property
    def now_ms(self) -> float: ...

    def node_ids(self) -> list[str]: ...
    def status(self, node_id: str) -> NodeStatus: ...
    def start(self) -> None: ...

    def crash(self, node_id: str) -> None:
        """Kill the node (SIGKILL for a process): unsynced writes are lost."""
        ...

    def restart(self, node_id: str) -> None:
        """Boot a crashed node again from its factory; it recovers from its disk."""
        ...

    def pause(self, node_id: str) -> None:
        """Freeze the node (SIGSTOP): it keeps its state but handles nothing."""
        ...

    def resume(self, node_id: str) -> None:
        """Thaw a paused node (SIGCONT)."""
        ...

    def set_clock(self, node_id: str, skew_ms: float = 0.0, drift_ppm: float = 0.0) -> None: ...

    def call_at(self, t_ms: float, fn: Callable[[], None]) -> object: ...
    def call_after(self, delay_ms: float, fn: Callable[[], None]) -> object: ...
    def run_for(self, duration_ms: float) -> None: ...
    def run_until(self, t_ms: float) -> None: ...


def close_backend(backend: object) -> None:
    """Release what a backend holds (processes, containers); a no-op for the simulator."""
    close = getattr(backend, "close", None)
    if callable(close):
        close()
