"""The bug zoo: named, planted mutations of the Paxos ledger group.

Each mutation is switched on by name in `PaxosConfig.mutations`, and the code
checks for it at the exact line where the bug lives, with a comment naming it
(`grep -n 'mutation:' reference/paxos/*.py` lists the sites). Every one is a
real mistake seen in real consensus code; `d11 zoo` proves that the
exhaustive explorer catches each of them, and prints the shortest trace that
breaks the protocol: a "find the bug" exercise with its answer key.
"""

from __future__ import annotations

from collections.abc import Mapping

MUTATIONS: dict[str, str] = {
    "forget-promise": "an acceptor keeps its phase-1 promise only in memory; a restart forgets it",
    "no-adopt": "a new leader ignores the values acceptors report in phase 1",
    "minority-commit": "the leader counts a slot chosen one acknowledgement short of a quorum",
    "ack-before-sync": "an acceptor acknowledges an accept before its write is fsynced",
    "truncate-before-apply": "a replica truncates its log up to the leader's commit "
    "index before it has learned and applied those slots",
    "arbiter-accepts": "the arbiter acknowledges log entries it never stores, and the "
    "leader counts it as a data replica",
    "lease-no-skew": "the leader serves lease reads without shortening its lease by "
    "the clock-skew bound",
    "degrade-without-arbiter": "a replica of a 2+arbiter group degrades the group to "
    "itself without waiting for the arbiter's vote",
}


def known_mutations(names: frozenset[str], table: Mapping[str, str]) -> frozenset[str]:
    """Return `names` if every one is in `table` (a zoo's mutations); raise ValueError
    naming the unknown ones and the known ones otherwise."""
    unknown = sorted(names - table.keys())
    if unknown:
        known = ", ".join(sorted(table))
        raise ValueError(f"unknown mutation {', '.join(unknown)} (known: {known})")
    return names


def check_mutations(names: frozenset[str]) -> frozenset[str]:
    """Return `names` if every one is a known mutation; raise ValueError otherwise."""
    return known_mutations(names, MUTATIONS)
