"""The partition vocabulary, written once for every network that can be cut.

`rt.net.cut`, `partition`, `isolate` and the nemesis shapes (`random_halves`,
`bridge`, `majorities_ring`) mean the same on the simulator's network
(`reference.net.sim.SimNet`) and on real processes
(`reference.runtime.links.ProcessNet`): this class turns each call into the
set of directed links it cuts, and the network underneath only enforces a
set of cut links (`_add_cuts`). Names may be nodes, or cells and cities
when the network has a topology; one-way partitions cut earlier groups off
from later ones. The shapes draw from the network's own seeded stream, so
one seed cuts the same links on every backend.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Iterable

import reference.net.shapes as shapes
from reference.net.shapes import Link


class Partitions(ABC):
    """The words of a partition; a network supplies the three methods at the end."""

    _rng: random.Random  # the network's seeded stream (the shapes draw from it)

    # --8<-- [start:partition-words]
    def cut(self, src_nodes: Iterable[str], dst_nodes: Iterable[str], one_way: bool = True) -> None:
        """Cut every link from `src_nodes` to `dst_nodes` (and back unless one_way)."""
        sources, targets = self._expand(src_nodes), self._expand(dst_nodes)
        links = {(s, d) for s in sources for d in targets if s != d}
        if not one_way:
            links |= {(d, s) for s, d in links}
        self._add_cuts(links, src=sorted(sources), dst=sorted(targets), one_way=one_way)

    def partition(self, groups: Iterable[Iterable[str]], one_way: bool = False) -> None:
        """Cut every link between different groups; links inside a group stay.

        Members may be node, cell or city names. Nodes in no group keep all
        their links. With `one_way`, only links from an earlier group to a
        later one are cut (group 0 cannot reach group 1, but hears from it).
        """
        expanded = [self._expand(g) for g in groups]
        seen: set[str] = set()
        for group in expanded:
            if group & seen:
                raise ValueError(f"partition: {sorted(group & seen)} in two groups")
            seen |= group
        links: set[Link] = set()
        for i, a in enumerate(expanded):
            for j, b in enumerate(expanded):
                if i < j or (i > j and not one_way):
                    links |= {(x, y) for x in a for y in b}
        self._add_cuts(links, groups=[sorted(g) for g in expanded], one_way=one_way)

    def isolate(self, name: str, one_way: bool = False) -> None:
        """Cut a node, a cell or a city off from every other node.

        With `one_way`, only its outgoing links are cut: it still hears others.
        """
        inside = self._expand([name])
        outside = set(self._all_nodes()) - inside
        links = {(a, b) for a in inside for b in outside}
        if not one_way:
            links |= {(b, a) for a, b in links}
        self._add_cuts(links, isolate=name, nodes=sorted(inside), one_way=one_way)

    # --8<-- [end:partition-words]

    # -- partition shapes (the nemesis vocabulary) ------------------------------
    def random_halves(self, nodes: Iterable[str] | None = None) -> list[set[str]]:
        """Split `nodes` (default: all) into two random halves and partition them."""
        groups = shapes.random_halves(self._members(nodes), self._rng)
        self.partition(groups)
        return groups

    def bridge(self, nodes: Iterable[str] | None = None) -> str:
        """Two halves that cannot talk, joined by one node that sees both; returns it."""
        left, bridge_node, right = shapes.bridge(self._members(nodes), self._rng)
        self.cut(left, right, one_way=False)
        return bridge_node

    def majorities_ring(self, nodes: Iterable[str] | None = None) -> dict[str, set[str]]:
        """Every node hears a majority, but no two nodes hear the same one."""
        hears = shapes.majorities_ring(self._members(nodes), self._rng)
        self._add_cuts(shapes.ring_cuts(hears), ring={n: sorted(v) for n, v in hears.items()})
        return hears

    def _members(self, nodes: Iterable[str] | None) -> list[str]:
        return sorted(nodes) if nodes is not None else self._all_nodes()

    # -- what a network supplies ------------------------------------------------
    @abstractmethod
    def _expand(self, names: Iterable[str]) -> set[str]:
        """The nodes `names` stand for (nodes, cells, cities); ValueError for an unknown one."""
        raise NotImplementedError

    @abstractmethod
    def _all_nodes(self) -> list[str]:
        """Every node, sorted."""
        raise NotImplementedError

    @abstractmethod
    def _add_cuts(self, links: set[Link], **fields: object) -> None:
        """Cut `links` (on top of the cuts in force), and trace a partition with `fields`."""
        raise NotImplementedError
