"""Topology: placement, distance classes, errors."""

from __future__ import annotations

import pytest
from sim_helpers import two_city_topology

from reference.net.topology import Topology


def test_queries_follow_the_graph() -> None:
    topo = two_city_topology()
    assert topo.cities() == ["hangzhou", "shanghai"]
    assert topo.cells() == ["hz-1", "hz-2", "sh-1"] and topo.cells("hangzhou") == ["hz-1", "hz-2"]
    assert topo.nodes_in("hangzhou") == ["a", "b", "c"] and topo.nodes_in("sh-1") == ["d", "e"]
    assert topo.cell_of("c") == "hz-2" and topo.city_of("c") == "hangzhou"
    assert topo.graph.nodes["hz-1"]["kind"] == "cell"
    classes = {b: topo.distance_class("a", b) for b in "abcd"}
    assert classes == {"a": "local", "b": "cell", "c": "city", "d": "cross_city"}


def test_building_errors_are_clear() -> None:
    topo = Topology()
    topo.add_city("hangzhou")
    with pytest.raises(ValueError, match="'nowhere' is not a city"):
        topo.add_cell("nowhere", "x-1")
    topo.add_cell("hangzhou", "hz-1")
    with pytest.raises(ValueError, match="already exists"):
        topo.add_cell("hangzhou", "hz-1")
    with pytest.raises(ValueError, match="is not a cell"):
        topo.place("n1", "hangzhou")
    with pytest.raises(ValueError, match="not a node placed"):
        topo.distance_class("ghost", "ghost")
