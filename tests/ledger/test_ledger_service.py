"""The ledger as a 3-replica Paxos group on the simulator, with the leader
crashed and restarted under load: every acknowledged transfer is applied,
exactly once, on every replica, and debits equal credits throughout."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable

import pytest

from reference.ledger import (
    Account,
    AccountFlags,
    CreateAccounts,
    CreateTransferResult,
    CreateTransfers,
    LookupAccounts,
    Transfer,
    TransferFlags,
)
from reference.ledger.service import LedgerClient, LedgerReplica, Outcome, stamp
from reference.net.sim import NetConfig
from reference.net.topology import Topology
from reference.node import Context, Message, Node, NodeId
from reference.paxos.config import PaxosConfig
from reference.paxos.messages import Accept, Membership, Read, ReadResult
from reference.runtime.sim import SimRuntime

R = CreateTransferResult
REPLICAS = ("ledger-hz", "ledger-sh", "ledger-sz")
BANK = 1
USERS = range(2, 10)
FUNDING_CENTS = 5_000
APPLIED = {R.OK, R.EXISTS}
PENDING_MS = 300
RUN_MS = 8_000


def topology() -> Topology:
    return Topology.build(
        {
            "hangzhou": {"hz-1": ["ledger-hz", "setup", "pay-0", "reader"]},
            "shanghai": {"sh-1": ["ledger-sh", "pay-1"]},
            "shenzhen": {"sz-1": ["ledger-sz", "pay-2"]},
        }
    )


def setup_commands() -> list[object]:
    accounts = (
        Account(BANK, 1, 1),
        *(Account(u, 1, 1, flags=AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS) for u in USERS),
    )
    funding = tuple(Transfer(100 + u, BANK, u, FUNDING_CENTS, 1, 1) for u in USERS)
    return [CreateAccounts(accounts, 0), CreateTransfers(funding, 0)]


def payment_commands(client: int, count: int, rng: random.Random) -> list[object]:
    """Payments between users: plain ones (some overdraw and are refused),
    linked pairs, and pending ones that are posted or left to expire."""
    commands: list[object] = []
    for n in range(count):
        base = 10_000 * (client + 1) + 10 * n
        payer, payee, third = rng.sample(list(USERS), 3)
        amount_cents = rng.randint(1, 2_500)
        kind = rng.random()
        if kind < 0.25:  # pay, and pass part of it on, atomically
            first = Transfer(base, payer, payee, amount_cents, 1, 1, TransferFlags.LINKED)
            second = Transfer(base + 1, payee, third, rng.randint(1, 2_500), 1, 1)
            commands.append(CreateTransfers((first, second), 0))
        elif kind < 0.45:  # reserve; post the next moment, or let it expire
            pending = Transfer(
                base, payer, payee, amount_cents, 1, 1, TransferFlags.PENDING, timeout_ms=PENDING_MS
            )
            commands.append(CreateTransfers((pending,), 0))
            if rng.random() < 0.5:
                # Every field given, so the stored post equals what was sent.
                post = Transfer(
                    base + 1,
                    payer,
                    payee,
                    amount_cents,
                    1,
                    1,
                    TransferFlags.POST_PENDING_TRANSFER,
                    pending_id=base,
                )
                commands.append(CreateTransfers((post,), 0))
        else:
            commands.append(CreateTransfers((Transfer(base, payer, payee, amount_cents, 1, 1),), 0))
    return commands


def run_group(
    seed: int,
    faults: Callable[[SimRuntime], None],
    payments_per_client: int = 25,
    replica_class: type[LedgerReplica] = LedgerReplica,
    net: NetConfig | None = None,
    client_timeout_ms: float = 100.0,
) -> tuple[SimRuntime, list[Outcome]]:
    rt = SimRuntime(topology=topology(), seed=seed, strict=True, net=net or NetConfig())
    cfg = PaxosConfig(membership=Membership(1, REPLICAS), snapshot_every_slots=16)
    for r in REPLICAS:
        rt.add_node(r, lambda node_id: replica_class(node_id, cfg, audit=True))
    outcomes: list[Outcome] = []
    rt.add_node("setup", lambda n: LedgerClient(n, REPLICAS, setup_commands(), outcomes.append))
    rng = random.Random(seed)
    for c in range(3):
        commands = payment_commands(c, payments_per_client, rng)
        rt.add_node(
            f"pay-{c}",
            lambda n, commands=commands: LedgerClient(
                n,
                REPLICAS,
                commands,
                outcomes.append,
                start_ms=1_500.0,
                timeout_ms=client_timeout_ms,
            ),
        )
    rt.start()
    faults(rt)
    rt.run_until(RUN_MS)
    return rt, outcomes


def leader(rt: SimRuntime) -> str:
    leaders = [r for r in REPLICAS if rt.status(r) == "up" and rt.node(r).role == "leader"]
    assert len(leaders) == 1, leaders
    return leaders[0]


CRASHED: list[str] = []  # who the last run's nemesis crashed


def crash_and_restart_the_leader(rt: SimRuntime) -> None:
    crashed = CRASHED
    crashed.clear()

    def crash() -> None:
        crashed.append(leader(rt))
        rt.crash(crashed[0])

    rt.call_at(1_800, crash)
    rt.call_at(2_600, lambda: rt.restart(crashed[0]))


def check_exactly_once(rt: SimRuntime, outcomes: list[Outcome]) -> tuple[int, int]:
    """Every replica holds the same ledger; acknowledged transfers are in it
    with the fields sent, refused ones are not, nothing else is."""
    machines = [rt.node(r).machine for r in REPLICAS]
    snapshots = {m.snapshot() for m in machines}
    assert len(snapshots) == 1, "the replicas disagree"
    ledger = machines[0].ledger
    ledger.check_invariants()
    dp, dpo, cp, cpo = ledger.totals()
    assert (dp, dpo) == (cp, cpo)

    sent: dict[int, Transfer] = {}
    acked = refused = 0
    for outcome in outcomes:
        if not isinstance(outcome.command, CreateTransfers):
            continue
        for t in outcome.command.transfers:
            sent[t.id] = t
        if not outcome.answered:
            continue
        for t, code in zip(outcome.command.transfers, outcome.result, strict=True):
            stored = ledger.lookup_transfers([t.id])
            if code in APPLIED:
                acked += 1
                assert len(stored) == 1, f"acknowledged transfer {t.id} is missing"
            else:
                refused += 1
                assert stored == (), f"refused transfer {t.id} ({code}) was applied"
    for stored in ledger.snapshot().transfers:
        assert stored.id in sent, f"transfer {stored.id} was never sent"
        assert stored == Transfer(
            **{**_fields(sent[stored.id]), "timestamp_ms": stored.timestamp_ms}
        )
    # Money is conserved: what the users hold is what the bank paid out.
    balances = ledger.balances()
    assert sum(balances.values()) == 0
    assert -balances[BANK] == FUNDING_CENTS * len(USERS)
    # Long after the load, every pending transfer was posted or expired (the
    # leader's pulses expire them without traffic): nothing is left reserved.
    assert dp == 0
    return acked, refused


def _fields(t: Transfer) -> dict[str, object]:
    return {f: getattr(t, f) for f in Transfer.__dataclass_fields__}


class Reader(Node):
    """Asks every replica for the users' accounts with a lease read."""

    def __init__(self) -> None:
        self.answers: dict[str, ReadResult] = {}

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer(RUN_MS - 500, "read")

    def on_timer(self, ctx: Context, tag: object) -> None:
        for r in REPLICAS:
            ctx.send(r, Read(f"read/{r}", LookupAccounts(tuple(USERS))))

    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        assert isinstance(msg, ReadResult)
        self.answers[src] = msg


def test_three_replicas_no_faults_and_lease_reads() -> None:
    reader = Reader()

    def add_reader(rt: SimRuntime) -> None:
        rt.add_node("reader", lambda n: reader)

    rt, outcomes = run_group(seed=1, faults=add_reader)
    assert all(o.answered for o in outcomes)
    acked, refused = check_exactly_once(rt, outcomes)
    assert acked > 40 and refused > 0
    # Only the leader serves reads, from its lease; they see every write.
    served = {r: a for r, a in reader.answers.items() if a.ok}
    assert list(served) == [leader(rt)]
    assert served[leader(rt)].value == rt.node(leader(rt)).machine.ledger.lookup_accounts(USERS)


def test_leader_crash_and_restart_loses_no_acknowledged_transfer() -> None:
    rt, outcomes = run_group(seed=2, faults=crash_and_restart_the_leader)
    assert len(CRASHED) == 1, "the nemesis did not crash the leader"
    assert rt.status(CRASHED[0]) == "up"
    acked, refused = check_exactly_once(rt, outcomes)
    # The run went on past the crash: acknowledgements after it.
    assert any(o.answered and o.completed_ms > 2_600 for o in outcomes)
    assert acked > 40 and refused > 0


def test_duplicating_reordering_network_impatient_clients_and_a_leader_crash() -> None:
    """Clients that time out before the answer can come retry while their
    request is still in flight; the network duplicates and reorders."""
    net = NetConfig(duplicate=0.05, reorder=0.05)
    rt, outcomes = run_group(
        seed=5, faults=crash_and_restart_the_leader, net=net, client_timeout_ms=25.0
    )
    acked, _ = check_exactly_once(rt, outcomes)
    assert acked > 40
    assert sum(o.attempts > 1 for o in outcomes) > 10  # retries happened, many


@pytest.mark.slow
def test_lossy_network_and_a_leader_crash() -> None:
    # Once a strict xfail: a lost Accept was never re-sent and the group stalled.
    # The leader now re-sends unacknowledged slots with its heartbeats.
    lossy = NetConfig(loss=0.05, duplicate=0.05, reorder=0.05)
    rt, outcomes = run_group(seed=5, faults=crash_and_restart_the_leader, net=lossy)
    acked, _ = check_exactly_once(rt, outcomes)
    assert acked > 40


def test_same_seed_same_run() -> None:
    a, outcomes_a = run_group(seed=4, faults=crash_and_restart_the_leader, payments_per_client=8)
    b, outcomes_b = run_group(seed=4, faults=crash_and_restart_the_leader, payments_per_client=8)
    assert a.trace_digest() == b.trace_digest()
    assert outcomes_a == outcomes_b


class OwnClockReplica(LedgerReplica):
    """Planted bug: every replica stamps a command with its *own* clock when
    it accepts it, instead of replicating the leader's stamp."""

    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        if isinstance(msg, Accept):
            batch = tuple((rid, stamp(cmd, ctx.now_ms())) for rid, cmd in msg.batch)
            msg = dataclasses.replace(msg, batch=batch)
        super().on_message(ctx, src, msg)


def test_the_check_catches_replicas_that_read_their_own_clocks() -> None:
    rt, outcomes = run_group(
        seed=1, faults=lambda rt: None, payments_per_client=5, replica_class=OwnClockReplica
    )
    with pytest.raises(AssertionError, match="the replicas disagree"):
        check_exactly_once(rt, outcomes)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10, 30))
def test_leader_crash_many_seeds(seed: int) -> None:
    net = NetConfig(duplicate=0.05, reorder=0.05) if seed % 2 else None
    rt, outcomes = run_group(
        seed=seed, faults=crash_and_restart_the_leader, net=net, client_timeout_ms=25.0 + seed
    )
    check_exactly_once(rt, outcomes)
