"""Partition shapes: which links a nemesis cuts, as pure functions of a seeded RNG.

The simulated network, the real runtimes and the harness's nemesis all draw
their partitions here, so one seed cuts the same links on every backend.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

Link = tuple[str, str]  # (src, dst): messages from src to dst are dropped


def random_halves(members: Iterable[str], rng: random.Random) -> list[set[str]]:
    """Two random halves (the first one larger when the count is odd)."""
    shuffled = sorted(members)
    rng.shuffle(shuffled)
    half = (len(shuffled) + 1) // 2
    return [set(shuffled[:half]), set(shuffled[half:])]


def bridge(members: Iterable[str], rng: random.Random) -> tuple[list[str], str, list[str]]:
    """(left, bridge, right): the halves cannot talk; the bridge node talks to both."""
    shuffled = sorted(members)
    if len(shuffled) < 3:
        raise ValueError("bridge needs at least 3 nodes")
    rng.shuffle(shuffled)
    middle = len(shuffled) // 2
    return shuffled[:middle], shuffled[middle], shuffled[middle + 1 :]


def majorities_ring(members: Iterable[str], rng: random.Random) -> dict[str, set[str]]:
    """Whom each node still hears: a majority each, but no two the same one.

    Nodes sit on a random ring; each hears itself and its nearest neighbours,
    alternating sides, until it has a majority (Jepsen's majorities-ring).
    """
    ring = sorted(members)
    count = len(ring)
    if count < 3:
        raise ValueError("majorities_ring needs at least 3 nodes")
    rng.shuffle(ring)
    majority = count // 2 + 1
    hears: dict[str, set[str]] = {}
    for i, node in enumerate(ring):
        window = [node]
        for k in range(1, count):  # bounded: at most count - 1 neighbours
            if len(window) == majority:
                break
            window.append(ring[(i + (k + 1) // 2 * (1 if k % 2 else -1)) % count])
        hears[node] = set(window)
    return hears


def ring_cuts(hears: dict[str, set[str]]) -> set[Link]:
    """The links a ring cuts: from every node a node does not hear, to it."""
    return {(other, node) for node in hears for other in hears if other not in hears[node]}
