"""The broker's bug zoo: mistakes from RocketMQ's own issue tracker, planted by name.

Each is switched on in `BrokerConfig.mutations` and checked for at the line
where the bug lives (`grep -n 'mutation:' reference/mq/*.py`). The tests in
tests/ch5/test_mq_zoo.py show each one caught: by the broker's audit, by the
chapter's checkers on a run, or by the bound it breaks.
"""

from __future__ import annotations

from reference.paxos.mutations import known_mutations

# --8<-- [start:mq-mutations]
MUTATIONS: dict[str, str] = {
    "recommit": "a COMMIT for a message already committed appends it again "
    "(RocketMQ 8158: a check-back's COMMIT racing the producer's own stored it twice)",
    "commit-after-rollback": "a COMMIT after a ROLLBACK is accepted "
    "(RocketMQ 8158: a producer's COMMIT after a check-back's ROLLBACK)",
    "count-young": "a check pass counts checks for half messages too young to be asked "
    "(RocketMQ 8311: discarded after the last check without ever being checked)",
    "unbounded-checks": "a check pass asks about every old half message at once "
    "(RocketMQ PR 1543: check storms when commits were throttled and half sends were not)",
    "stuck-check-cursor": "a check pass cut short by its bound does not save where it "
    "stopped, so every pass asks about the same batch again and the halves behind it wait "
    "(RocketMQ issue 1568: an exception in a check batch left the half offset where it "
    "was, and the same batch was re-checked for ever)",
}
# --8<-- [end:mq-mutations]


def check_mutations(names: frozenset[str]) -> frozenset[str]:
    """Return `names` if every one is a known broker mutation; raise ValueError otherwise."""
    return known_mutations(names, MUTATIONS)
