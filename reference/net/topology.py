"""Where every node lives: cities hold cells, cells hold nodes.

A graph is the single source of truth. It has one vertex per city, cell and
node (its kind: "city" | "cell" | "node") and an edge from each container to
what it holds, so the placement tree is the graph itself:

    hangzhou ── hz-1 ── ledger-1
            └── hz-2 ── ledger-2
    shanghai ── sh-1 ── ledger-3

From the tree follows the distance class of any two nodes, which the network
turns into a latency: "local" (the same node), "cell" (same cell), "city"
(same city, another cell) and "cross_city". Partitions are cuts of this graph:
`group_of("hz-1")` is every node below that vertex.

The graph is two dicts (vertex -> kind, vertex -> neighbours); `graph` gives
it as a networkx graph, built when asked. Importing networkx cost every
simulated run 0.2 to 0.5 s (a tenth of chapter 1's), for a tree of a dozen
vertices that nothing on the run's path walks with networkx.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["DISTANCE_CLASSES", "DistanceClass", "Topology"]

DistanceClass = Literal["local", "cell", "city", "cross_city"]
DISTANCE_CLASSES: tuple[DistanceClass, ...] = ("local", "cell", "city", "cross_city")


class Topology:
    """Cities, cells and node placement, backed by `self.graph`."""

    def __init__(self) -> None:
        self._kinds: dict[str, str] = {}  # vertex -> "city" | "cell" | "node"
        self._adjacent: dict[str, list[str]] = {}  # vertex -> its neighbours, in insertion order

    @property
    def graph(self) -> nx.Graph:
        """The placement as a networkx graph (a copy: edit the topology through its methods)."""
        import networkx as nx  # on demand: see the module docstring

        graph = nx.Graph()
        for vertex, kind in self._kinds.items():
            graph.add_node(vertex, kind=kind)
        for vertex, neighbours in self._adjacent.items():
            graph.add_edges_from((vertex, other) for other in neighbours)
        return graph

    # -- building -----------------------------------------------------------
    def add_city(self, city: str) -> None:
        self._add_vertex(city, "city")

    def add_cell(self, city: str, cell: str) -> None:
        if self._kind(city) != "city":
            raise ValueError(f"add_cell({city!r}, {cell!r}): {city!r} is not a city")
        self._add_vertex(cell, "cell")
        self._add_edge(city, cell)

    def place(self, node: str, cell: str) -> None:
        """Put `node` in `cell`; a node lives in exactly one cell."""
        if self._kind(cell) != "cell":
            raise ValueError(f"place({node!r}, {cell!r}): {cell!r} is not a cell")
        self._add_vertex(node, "node")
        self._add_edge(cell, node)

    @classmethod
    def build(cls, layout: dict[str, dict[str, list[str]]]) -> Topology:
        """Shorthand: `{"hangzhou": {"hz-1": ["a", "b"]}, "shanghai": {...}}`."""
        topo = cls()
        for city, cells in layout.items():
            topo.add_city(city)
            for cell, nodes in cells.items():
                topo.add_cell(city, cell)
                for node in nodes:
                    topo.place(node, cell)
        return topo

    # -- queries ------------------------------------------------------------
    def cities(self) -> list[str]:
        return self._of_kind("city")

    def cells(self, city: str | None = None) -> list[str]:
        if city is None:
            return self._of_kind("cell")
        if self._kind(city) != "city":
            raise ValueError(f"cells({city!r}): not a city")
        return sorted(v for v in self._adjacent[city] if self._kind(v) == "cell")

    def nodes(self) -> list[str]:
        return self._of_kind("node")

    def has_node(self, node: str) -> bool:
        return self._kinds.get(node) == "node"

    def cell_of(self, node: str) -> str:
        self._expect_node(node)
        (cell,) = (v for v in self._adjacent[node] if self._kind(v) == "cell")
        return cell

    def city_of(self, node_or_cell: str) -> str:
        cell = node_or_cell if self._kind(node_or_cell) == "cell" else self.cell_of(node_or_cell)
        (city,) = (v for v in self._adjacent[cell] if self._kind(v) == "city")
        return city

    def nodes_in(self, cell_or_city: str) -> list[str]:
        """Every node below `cell_or_city` (a node id gives itself)."""
        kind = self._kind(cell_or_city)
        if kind == "node":
            return [cell_or_city]
        if kind == "cell":
            return sorted(v for v in self._adjacent[cell_or_city] if self._kind(v) == "node")
        if kind == "city":
            return sorted(n for cell in self.cells(cell_or_city) for n in self.nodes_in(cell))
        raise ValueError(f"nodes_in({cell_or_city!r}): no such city, cell or node")

    def kind(self, vertex: str) -> str | None:
        """ "city", "cell", "node", or None when `vertex` is not in the graph."""
        return self._kind(vertex)

    def distance_class(self, a: str, b: str) -> DistanceClass:
        if a == b:
            self._expect_node(a)
            return "local"
        cell_a, cell_b = self.cell_of(a), self.cell_of(b)
        if cell_a == cell_b:
            return "cell"
        if self.city_of(cell_a) == self.city_of(cell_b):
            return "city"
        return "cross_city"

    # -- internals ----------------------------------------------------------
    def _add_vertex(self, name: str, kind: str) -> None:
        existing = self._kind(name)
        if existing is not None:
            raise ValueError(f"{name!r} already exists in the topology (as a {existing})")
        self._kinds[name] = kind
        self._adjacent[name] = []

    def _add_edge(self, a: str, b: str) -> None:
        self._adjacent[a].append(b)
        self._adjacent[b].append(a)

    def _kind(self, vertex: str) -> str | None:
        return self._kinds.get(vertex)

    def _of_kind(self, kind: str) -> list[str]:
        return sorted(v for v, k in self._kinds.items() if k == kind)

    def _expect_node(self, node: str) -> None:
        if self._kind(node) != "node":
            raise ValueError(f"{node!r} is not a node placed in the topology")
