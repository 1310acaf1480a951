"""Modules renamed so their paths say what they hold: the old paths still re-export.

Each row: the old module, where its names went. A name reached through the
old path is the very object at the new one (not a copy that could drift).
"""

from __future__ import annotations

import importlib

import pytest

MOVED: list[tuple[str, dict[str, str]]] = [
    (
        "reference.ledger.state_machine",
        {
            "Ledger": "reference.ledger.domain",
            "BATCH_EVENTS_MAX": "reference.ledger.domain",
            "SNAPSHOT_VERSION": "reference.ledger.domain",
            "LedgerInvariantError": "reference.ledger.rules",
        },
    ),
    (
        "reference.paxos.state_machine",
        {
            "StateMachine": "reference.paxos.replicated_state",
            "ReplicatedState": "reference.paxos.replicated_state",
            "DEDUP_CHUNK_REQUESTS": "reference.paxos.replicated_state",
            "KVStore": "reference.paxos.kvstore",
        },
    ),
    (
        "chapters.ch4_paxos.linear",
        {
            "check_wallets_linearizable": "chapters.ch4_paxos.wallets",
            "wallet_operations": "chapters.ch4_paxos.wallets",
        },
    ),
    (
        "checks.ledger",
        {
            "check_ledger": "checks.transfers",
            "STATES_MAX": "checks.transfers",
            "LedgerError": "checks.transfers",
            "Transfer": "checks.transfers",
        },
    ),
    ("checks.lin.models.ledger", {"LedgerModel": "checks.lin.models.accounts"}),
]


@pytest.mark.parametrize(("old", "names"), MOVED, ids=[old for old, _ in MOVED])
def test_an_old_path_re_exports_the_moved_objects(old: str, names: dict[str, str]) -> None:
    shim = importlib.import_module(old)
    assert sorted(shim.__all__) == sorted(names)
    for name, new in names.items():
        assert getattr(shim, name) is getattr(importlib.import_module(new), name), name
