"""Seeded random streams: one per consumer, all derived from the run's seed.

Each node (and the network, and the nemesis) draws from its own
`random.Random`, seeded by hashing the run seed with the stream's name. Two
properties follow: a run is reproducible from its seed alone, and adding a
draw in one node does not shift the numbers every other node sees (which a
single shared stream would do, turning a one-line change into a different run).
"""

from __future__ import annotations

import hashlib
import random

__all__ = ["derive_seed", "stream"]


def derive_seed(seed: int, name: str) -> int:
    """A 64-bit seed for stream `name`, stable across processes and platforms."""
    digest = hashlib.blake2b(f"{seed}/{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def stream(seed: int, name: str) -> random.Random:
    """The random stream `name` of run `seed`."""
    return random.Random(derive_seed(seed, name))
