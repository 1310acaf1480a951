"""Network fault semantics: cuts drop exactly the cut links; rates hold."""

from __future__ import annotations

import itertools

import pytest
from sim_helpers import Note, recorder, runtime, send

from reference.net.sim import NetConfig

NODES = ["a", "b", "c", "d", "e"]


def all_pairs_deliveries(rt) -> dict[tuple[str, str], int]:  # type: ignore[no-untyped-def]
    """Send one message on every ordered pair; return what was delivered per pair."""
    before = {k: v.delivered for k, v in rt.net.link_stats().items()}
    for src, dst in itertools.permutations(NODES, 2):
        send(rt, src, dst, Note(0))
    rt.run_for(100)
    after = rt.net.link_stats()
    return {k: after[k].delivered - before.get(k, 0) for k in itertools.permutations(NODES, 2)}


def test_partition_drops_exactly_the_cut_links_and_heal_restores_them() -> None:
    rt = runtime()
    rt.net.partition([{"a", "b", "c"}, {"d"}])  # e is in no group: keeps its links
    got = all_pairs_deliveries(rt)
    cut = {(x, y) for x in "abc" for y in "d"} | {(y, x) for x in "abc" for y in "d"}
    assert {pair for pair, n in got.items() if n == 0} == cut
    assert all(n == 1 for pair, n in got.items() if pair not in cut)
    rt.net.heal()
    assert all(n == 1 for n in all_pairs_deliveries(rt).values())
    assert [e.kind for e in rt.telemetry.find(node="")] == ["partition", "heal"]


def test_partition_by_city_and_cell_names() -> None:
    rt = runtime()
    rt.net.partition([["hangzhou"], ["shanghai"]])
    got = all_pairs_deliveries(rt)
    dropped = {pair for pair, n in got.items() if n == 0}
    hz, sh = {"a", "b", "c"}, {"d", "e"}
    assert dropped == {(x, y) for x in hz for y in sh} | {(y, x) for x in hz for y in sh}


def test_one_way_cut_is_one_way() -> None:
    rt = runtime()
    rt.net.cut(["a"], ["d"], one_way=True)
    got = all_pairs_deliveries(rt)
    assert got[("a", "d")] == 0 and got[("d", "a")] == 1
    assert sum(1 for n in got.values() if n == 0) == 1


def test_isolate_cell_cuts_it_from_everyone_and_one_way_only_outgoing() -> None:
    rt = runtime()
    rt.net.isolate("hz-1")
    got = all_pairs_deliveries(rt)
    inside = {"a", "b"}
    for (src, dst), n in got.items():
        assert n == (0 if (src in inside) != (dst in inside) else 1), (src, dst)
    rt.net.heal()
    rt.net.isolate("e", one_way=True)
    got = all_pairs_deliveries(rt)
    for (src, dst), n in got.items():
        assert n == (0 if src == "e" else 1), (src, dst)


def test_a_cut_also_drops_messages_already_in_flight() -> None:
    rt = runtime()
    send(rt, "a", "d", Note(1))  # 15 ms cross-city
    rt.run_for(5)
    rt.net.isolate("shanghai")
    rt.run_for(50)
    assert recorder(rt, "d").messages() == []
    assert rt.net.link_stats()[("a", "d")].dropped == 1


def test_partition_rejects_overlapping_groups_and_unknown_names() -> None:
    rt = runtime()
    with pytest.raises(ValueError, match="in two groups"):
        rt.net.partition([["hz-1"], ["a"]])
    with pytest.raises(ValueError, match="no node, cell or city"):
        rt.net.isolate("atlantis")


def test_majorities_ring_every_node_hears_a_majority() -> None:
    rt = runtime(seed=3)
    hears = rt.net.majorities_ring()
    got = all_pairs_deliveries(rt)
    for node, heard in hears.items():
        assert len(heard) == 3 and node in heard
        for other in NODES:
            if other != node:
                assert got[(other, node)] == (1 if other in heard else 0)
    assert len({frozenset(v) for v in hears.values()}) == len(NODES)  # all different


def test_bridge_node_talks_to_both_halves_that_cannot_talk() -> None:
    rt = runtime(seed=4)
    bridge = rt.net.bridge()
    got = all_pairs_deliveries(rt)
    for other in NODES:
        if other != bridge:
            assert got[(bridge, other)] == 1 and got[(other, bridge)] == 1
    assert sum(1 for n in got.values() if n == 0) == 2 * 2 * 2  # 2x2 nodes, both ways


def test_random_halves_are_a_seeded_split() -> None:
    halves = runtime(seed=9).net.random_halves()
    assert halves == runtime(seed=9).net.random_halves()
    assert sorted(len(h) for h in halves) == [2, 3] and set().union(*halves) == set(NODES)


COUNT = 4000


def burst(config: NetConfig) -> tuple[list[int], object]:
    """Send COUNT numbered messages a -> b in a burst; return arrival order."""
    rt = runtime(seed=11, net=config)
    for seq in range(COUNT):
        send(rt, "a", "b", Note(seq))
    rt.run_for(1000)
    return [m.seq for _, m in recorder(rt, "b").messages()], rt.net.link_stats()[("a", "b")]


def test_links_are_fifo_without_reordering() -> None:
    order, _ = burst(NetConfig(jitter_ratio=0.5))
    assert order == list(range(COUNT))


@pytest.mark.parametrize("loss", [0.1, 0.3])
def test_loss_rate_within_tolerance(loss: float) -> None:
    order, stats = burst(NetConfig(loss=loss))
    assert abs(len(order) / COUNT - (1 - loss)) < 0.03
    assert stats.dropped == COUNT - len(order) and stats.sent == COUNT  # type: ignore[attr-defined]


def test_duplicate_rate_within_tolerance() -> None:
    order, stats = burst(NetConfig(duplicate=0.2))
    assert abs((len(order) - COUNT) / COUNT - 0.2) < 0.03
    assert stats.duplicated == len(order) - COUNT  # type: ignore[attr-defined]
    assert set(order) == set(range(COUNT))


def test_reorder_rate_within_tolerance() -> None:
    order, _ = burst(NetConfig(reorder=0.2))
    # A held-back message arrives after some later-sent one.
    highest_seen = -1
    overtaken = 0
    for seq in order:
        if seq < highest_seen:
            overtaken += 1
        highest_seen = max(highest_seen, seq)
    assert abs(overtaken / COUNT - 0.2) < 0.03
    assert sorted(order) == list(range(COUNT))


def test_config_changes_apply_to_a_live_network() -> None:
    rt = runtime(net=NetConfig(jitter_ratio=0.0))
    send(rt, "a", "d", Note(1))
    rt.net.config.latency_ms = {**rt.net.config.latency_ms, "cross_city": 40.0}
    send(rt, "a", "d", Note(2))
    rt.run_for(100)
    arrivals = [now for kind, _, _, now in recorder(rt, "d").log if kind == "msg"]
    assert arrivals == [15.0, 40.0]
    with pytest.raises(ValueError, match="probability"):
        rt.net.config.loss = 1.5


def test_stats_by_class_sum_the_links() -> None:
    rt = runtime()
    all_pairs_deliveries(rt)
    by_class = rt.net.stats_by_class()
    assert by_class["cell"].delivered == 4  # a<->b, d<->e
    assert by_class["city"].delivered == 4  # a,b <-> c
    assert by_class["cross_city"].delivered == 12
    assert by_class["local"].sent == 0
