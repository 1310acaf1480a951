"""Fencing transfer ids: a lookup by id that settles an unknown outcome for good.

`Ledger.fence_transfers` answers "applied" for an id the ledger holds and
records every other id as failed, so nothing can apply it afterwards: the
answer a client records stays true. Through a Paxos group the fence is a
command of the log, so every replica fences at the same point.
"""

from __future__ import annotations

from ledger_helpers import BANK, T0_MS, WALLET, transfer

from reference.ledger import (
    Account,
    CreateAccounts,
    CreateTransferResult,
    CreateTransfers,
    FenceTransferResult,
    FenceTransfers,
    Ledger,
    LookupTransfers,
    Rejected,
    apply,
)
from reference.ledger.commands import query
from reference.ledger.service import LedgerClient, LedgerReplica, Outcome
from reference.net.topology import Topology
from reference.paxos.config import PaxosConfig
from reference.paxos.messages import Membership
from reference.runtime.sim import SimRuntime

R = CreateTransferResult
F = FenceTransferResult


def test_fence_answers_applied_failed_and_fenced(ledger: Ledger) -> None:
    paid = transfer(10, WALLET, BANK, 250)
    overdraft = transfer(11, WALLET, BANK, 1_000_000)
    assert ledger.create_transfers([paid, overdraft], T0_MS) == (R.OK, R.EXCEEDS_CREDITS)
    balances = ledger.balances()
    assert ledger.fence_transfers([10, 11, 12]) == (F.APPLIED, F.FAILED, F.FENCED)
    assert ledger.balances() == balances  # a fence moves no money
    # Asked again, the answers are the same: final.
    assert ledger.fence_transfers([12, 10, 11]) == (F.FENCED, F.APPLIED, F.FAILED)


def test_a_fenced_id_can_never_be_applied(ledger: Ledger) -> None:
    late = transfer(12, WALLET, BANK, 250)
    assert ledger.fence_transfers([12]) == (F.FENCED,)
    # The retry that was still in some queue arrives: refused, nothing moves.
    assert ledger.create_transfers([late], T0_MS + 1) == (R.ID_ALREADY_FAILED,)
    assert ledger.lookup_transfers([12]) == ()
    ledger.check_invariants()
    # A snapshot keeps the fence (a replica catching up, or recovering).
    restored = Ledger(audit=True)
    restored.restore(ledger.snapshot())
    assert restored.create_transfers([late], T0_MS + 2) == (R.ID_ALREADY_FAILED,)
    assert restored.fence_transfers([12]) == (F.FENCED,)


def test_a_malformed_fence_is_refused_whole(ledger: Ledger) -> None:
    assert isinstance(apply(ledger, FenceTransfers((0,))), Rejected)
    assert isinstance(apply(ledger, FenceTransfers((True,))), Rejected)  # type: ignore[arg-type]
    assert apply(ledger, FenceTransfers((7,))) == (F.FENCED,)
    # A fence writes: it is no query a lease read may answer.
    assert isinstance(query(ledger, FenceTransfers((8,))), Rejected)


REPLICAS = ("ledger-hz", "ledger-sh", "ledger-sz")


def test_a_fence_through_the_log_holds_on_every_replica() -> None:
    """Fence id 21 through a 3-replica group, then try to create it: refused;
    every replica holds the same fence at the same point of its log."""
    topo = Topology.build(
        {
            "hangzhou": {"hz-1": ["ledger-hz", "client"]},
            "shanghai": {"sh-1": ["ledger-sh"]},
            "shenzhen": {"sz-1": ["ledger-sz"]},
        }
    )
    rt = SimRuntime(topology=topo, seed=3, strict=True)
    cfg = PaxosConfig(membership=Membership(1, REPLICAS))
    for r in REPLICAS:
        rt.add_node(r, lambda node_id: LedgerReplica(node_id, cfg, audit=True))
    accounts = (Account(BANK, 1, 1), Account(WALLET, 1, 1))
    fund = transfer(20, BANK, WALLET, 1_000)
    late = transfer(21, WALLET, BANK, 100)
    commands = [
        CreateAccounts(accounts, 0),
        CreateTransfers((fund,), 0),
        FenceTransfers((20, 21)),
        CreateTransfers((late,), 0),
        LookupTransfers((21,)),
    ]
    outcomes: list[Outcome] = []
    rt.add_node("client", lambda n: LedgerClient(n, REPLICAS, commands, outcomes.append))
    rt.start()
    rt.run_until(3_000.0)
    assert [o.answered for o in outcomes] == [True] * len(commands)
    assert outcomes[2].result == (F.APPLIED, F.FENCED)
    assert outcomes[3].result == (R.ID_ALREADY_FAILED,)
    assert outcomes[4].result == ()
    snapshots = {rt.node(r).machine.ledger.snapshot() for r in REPLICAS}  # type: ignore[attr-defined]
    assert len(snapshots) == 1  # the same ledger on every replica
    (snapshot,) = snapshots
    assert (21, "fenced") in snapshot.failed
