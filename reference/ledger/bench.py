"""`d11 bench ledger`: the Paxos ledger's throughput and commit latency, simulated.

Three `LedgerReplica`s, one per city (15 ms one way between cities), and a
closed loop of `LedgerClient`s next to the leader, each keeping one transfer
in flight. A transfer commits when the leader and one other city have it on
disk, so its latency is about one cross-city round trip plus two fsyncs,
whatever the load, until the leader's pipeline is full: `window_slots` slots
in flight, each holding up to `batch_max_commands` commands. Batching is the
difference between one transfer per round trip per slot and sixteen.

Everything runs in simulated time on the deterministic simulator, so the
figures are the protocol's, not this laptop's: the same seed prints the same
table on any machine.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from reference.ledger.commands import CreateAccounts, CreateTransfers
from reference.ledger.records import Account, Transfer
from reference.ledger.service import LedgerClient, LedgerReplica, Outcome
from reference.net.sim import NetConfig
from reference.net.topology import Topology
from reference.paxos.config import PaxosConfig
from reference.paxos.messages import Membership

__all__ = ["BenchError", "LedgerBenchRow", "run_ledger_bench"]

CITIES = (("hangzhou", "hz"), ("shanghai", "sh"), ("shenzhen", "sz"))
WARMUP_MS = 1_000.0  # election and account creation happen before this
LEDGER = 1
CODE = 1
BATCH_ON = 16
CLIENTS_MAX = 4_096
SECONDS_MAX = 60.0


class BenchError(ValueError):
    """Options the benchmark cannot run with: a one-line message."""


@dataclass(frozen=True)
class LedgerBenchRow:
    mode: str
    clients: int
    batch_max_commands: int
    transfers: int  # committed (result ok) inside the measured window
    transfers_per_s: float  # per simulated second
    p50_ms: float
    p99_ms: float
    rtt_ms: float  # one cross-city round trip, for the latency in round trips
    slots: int  # log slots the leader committed in the window
    retries: int  # client attempts beyond the first (timeouts, leader changes)

    @property
    def p50_rtts(self) -> float:
        return self.p50_ms / self.rtt_ms

    @property
    def p99_rtts(self) -> float:
        return self.p99_ms / self.rtt_ms

    @property
    def per_slot(self) -> float:
        return self.transfers / self.slots if self.slots else 0.0


def _percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100.0 * len(ordered))) - 1]


def _run_one(batch: int, clients: int, seconds: float, seed: int, mode: str = "") -> LedgerBenchRow:
    from reference.runtime.sim import SimRuntime

    replicas = [f"ledger-{short}" for _, short in CITIES]
    layout: dict[str, dict[str, list[str]]] = {}
    for (city, short), replica in zip(CITIES, replicas, strict=True):
        layout[city] = {f"{short}-1": [replica]}
    client_ids = [f"client-{i}" for i in range(clients)]
    layout["hangzhou"]["hz-1"] += ["setup", *client_ids]  # next to the first leader
    net = NetConfig()
    rt = SimRuntime(topology=Topology.build(layout), seed=seed, net=net)
    cfg = PaxosConfig(membership=Membership(1, tuple(replicas)), batch_max_commands=batch)
    for r in replicas:
        rt.add_node(r, lambda nid: LedgerReplica(nid, cfg))
    accounts = tuple(Account(1 + i, LEDGER, CODE) for i in range(2 * clients))
    rt.add_node(
        "setup",
        lambda nid: LedgerClient(nid, replicas, [CreateAccounts(accounts, 0)], start_ms=300.0),
    )
    start_ms, end_ms = WARMUP_MS, WARMUP_MS + seconds * 1000.0
    outcomes: list[Outcome] = []
    per_client = int(seconds * 1000.0) + 1  # more than a client can finish: bounded by time
    for i, cid in enumerate(client_ids):
        transfers = [
            CreateTransfers(
                (Transfer(1 + i * per_client + k, 1 + 2 * i, 2 + 2 * i, 1, LEDGER, CODE),), 0
            )
            for k in range(per_client)
        ]
        rt.add_node(
            cid,
            functools.partial(
                LedgerClient, replicas=replicas, commands=transfers,
                on_outcome=outcomes.append, start_ms=start_ms, think_ms=0.0, timeout_ms=1_000.0,
            ),
        )  # fmt: skip
    rt.start()
    slots_at: list[int] = []
    rt.call_at(start_ms, lambda: slots_at.append(_commit_index(rt, replicas)))
    rt.call_at(end_ms, lambda: slots_at.append(_commit_index(rt, replicas)))
    rt.run_until(end_ms)
    done = [
        o
        for o in outcomes
        if o.answered and start_ms <= o.completed_ms < end_ms and o.result == ("ok",)
    ]
    latencies = [o.completed_ms - o.invoked_ms for o in done]
    rtt_ms = 2 * net.latency_ms["cross_city"]
    return LedgerBenchRow(
        mode=mode or ("batching" if batch > 1 else "no batching"),
        clients=clients,
        batch_max_commands=batch,
        transfers=len(done),
        transfers_per_s=len(done) / seconds,
        p50_ms=_percentile(latencies, 50),
        p99_ms=_percentile(latencies, 99),
        rtt_ms=rtt_ms,
        slots=slots_at[1] - slots_at[0] if len(slots_at) == 2 else 0,
        retries=sum(o.attempts - 1 for o in outcomes),
    )


def _commit_index(rt: object, replicas: list[str]) -> int:
    indices = [getattr(rt.node(r), "commit_index", 0) for r in replicas]  # type: ignore[attr-defined]
    return max(indices)


def run_ledger_bench(
    *, clients: int = 64, seconds: float = 2.0, seed: int = 1
) -> list[LedgerBenchRow]:
    """One client alone (the bare commit latency), then the same closed loop
    of `clients` twice: one command per slot, then up to 16."""
    if not 1 <= clients <= CLIENTS_MAX:
        raise BenchError(f"--clients must be between 1 and {CLIENTS_MAX}, not {clients}")
    if not 0 < seconds <= SECONDS_MAX:
        raise BenchError(f"--seconds must be in (0, {SECONDS_MAX:g}], not {seconds}")
    unloaded = _run_one(BATCH_ON, 1, seconds, seed, mode="unloaded")
    return [unloaded, *(_run_one(batch, clients, seconds, seed) for batch in (1, BATCH_ON))]


def render(rows: list[LedgerBenchRow], seconds: float) -> str:
    """The table `d11 bench ledger` prints; its last line is the batching speedup."""
    head = (
        f"ledger bench: 3 replicas (hangzhou, shanghai, shenzhen; leader in hangzhou), "
        f"closed loop, {seconds:g} simulated s, "
        f"1 round trip = {rows[0].rtt_ms:g} ms"
    )
    cols = (
        f"{'mode':<12} {'clients':>7} {'batch':>5} {'transfers/s':>12} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'p50 RTT':>8} {'p99 RTT':>8} {'slots':>7} {'per slot':>9} {'retries':>8}"
    )
    lines = [head, cols]
    for r in rows:
        lines.append(
            f"{r.mode:<12} {r.clients:>7} {r.batch_max_commands:>5} {r.transfers_per_s:>12.1f} "
            f"{r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.p50_rtts:>8.2f} {r.p99_rtts:>8.2f} "
            f"{r.slots:>7} {r.per_slot:>9.2f} {r.retries:>8}"
        )
    base, batched = rows[-2].transfers_per_s, rows[-1].transfers_per_s  # same load, batch 1 vs 16
    speedup = batched / base if base else float("inf")
    lines.append(f"batching_speedup: {speedup:.2f}")
    return "\n".join(lines)
