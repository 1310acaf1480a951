"""The real backends cut exactly the links the simulator cuts, for the same calls."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from reference.net.topology import Topology
from reference.node import Node
from reference.runtime.process import ProcessRuntime
from reference.runtime.sim import SimRuntime

LAYOUT = {"hangzhou": {"hz-1": ["a", "b"], "hz-2": ["c"]}, "shanghai": {"sh-1": ["d", "e"]}}
NODES = ["a", "b", "c", "d", "e"]

OPERATIONS: list[tuple[str, Callable[[Any], Any]]] = [
    ("partition", lambda net: net.partition([{"a", "b"}, {"c", "d", "e"}])),
    ("partition one way", lambda net: net.partition([{"hz-1"}, {"shanghai"}], one_way=True)),
    ("cut", lambda net: net.cut(["a"], ["c", "d"], one_way=True)),
    ("cut both", lambda net: net.cut(["hz-2"], ["sh-1"], one_way=False)),
    ("isolate node", lambda net: net.isolate("c")),
    ("isolate city", lambda net: net.isolate("shanghai")),
    ("isolate one way", lambda net: net.isolate("hz-1", one_way=True)),
    ("random halves", lambda net: net.random_halves()),
    ("bridge", lambda net: net.bridge()),
    ("majorities ring", lambda net: net.majorities_ring()),
]


def _cut_links(net: Any) -> set[tuple[str, str]]:
    return {(a, b) for a, b in itertools.permutations(NODES, 2) if net.is_cut(a, b)}


@pytest.mark.parametrize(("name", "operation"), OPERATIONS, ids=[n for n, _ in OPERATIONS])
def test_partitions_cut_the_same_links_as_in_the_simulator(
    name: str, operation: Callable[[Any], Any]
) -> None:
    topology = Topology.build(LAYOUT)
    sim = SimRuntime(Topology.build(LAYOUT), seed=5)
    for node in NODES:
        sim.add_node(node, lambda node_id: Node())
    with ProcessRuntime(seed=5, topology=topology) as real:
        for node in NODES:
            real.add_local_node(node, lambda node_id: Node())  # not started: cuts only
        assert operation(real.net) == operation(sim.net)  # shapes return what they cut
        assert _cut_links(real.net) == _cut_links(sim.net) != set()
        real.net.heal()
        sim.net.heal()
        assert _cut_links(real.net) == _cut_links(sim.net) == set()
