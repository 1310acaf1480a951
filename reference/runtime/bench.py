"""`d11 bench process`: the Paxos ledger on real processes, measured.

Three `LedgerReplica` processes on loopback (their disks fsynced files), and
one local load generator in the harness's process that keeps `clients`
requests in flight, each a `CreateTransfers` of `batch` transfers between
random accounts, sent to the leader (following `leader_hint`s). A request
counts when its `ProposeResult` says it was committed and applied; its
latency is from the first send to that answer. Figures: committed
transfers per second, and request latency p50/p99, over the measured
window after a warm-up.

The budget of one payment: each replica runs inside a `StageWatch`, which
notes, for the requests it leads, when each arrived, when the leader put
it in a slot (its `Accept` left), when the slot was chosen (the handler
that applied it began) and when its answer left the node; the host notes
how long each message waited for an fsync. The load client notes when it
sent and heard back, on the same clock (one machine, one monotonic epoch),
so the stages add up to the latency it saw.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import random
import statistics
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from reference.codec import Message
from reference.ledger.commands import CreateAccounts, CreateTransfers
from reference.ledger.records import Account, Transfer
from reference.ledger.service import LedgerReplica
from reference.node import Context, Node, NodeId
from reference.paxos.config import PaxosConfig
from reference.paxos.leader import LeaderFollower
from reference.paxos.messages import Accept, Membership, Propose, ProposeResult
from reference.paxos.replica import Replica

if TYPE_CHECKING:
    from reference.telemetry import Telemetry

REPLICAS = ("r1", "r2", "r3")
ACCOUNTS = 1_000
LEDGER, CODE = 1, 1
# 8 requests of 8 transfers in flight: by Little's law, 64 transfers at
# 10,000/s is a 6.4 ms mean latency, room under the 30 ms p99 target. The
# old default (64 x 8 in flight) could not be under 100 ms at 5,000/s
# whatever the system did: it measured the queue the generator built.
DEFAULT_CLIENTS = 8
WARMUP_MS = 1_000.0
REQUEST_TIMEOUT_MS = 1_000.0
SETUP_TIMEOUT_MS = 15_000.0
STAGE_SAMPLE_EVERY = 4  # one request in this many is traced stage by stage
STAGE_TRACE = "bench.stages"
SLOTS_COUNTER, SLOT_REQUESTS_COUNTER = "bench.slots", "bench.slot_requests"
FLUSH_WAIT_MS = 400.0  # node processes flush their telemetry every 100 ms
# Trace events the ledger bench reads none of and a replica makes per slot:
# `paxos.learn`, one per slot learned on each replica, is most of what three
# replicas forward to the harness (decoded and stored there, on every
# request's path). Left out by the replicas' watch, they cost nothing;
# counters and every other trace (elections, snapshots) still arrive.
UNREAD_TRACES = frozenset({"paxos.learn"})


class BenchError(RuntimeError):
    """The cluster did not come up or did not commit; the message says how."""


def ledger_replica(
    node_id: str,
    replicas: list[str],
    **tuning: Any,
) -> LedgerReplica:
    """A process node factory: named, with JSON arguments (see spec.py);
    `tuning` holds `ReplicaTuning`'s fields."""
    membership = Membership(epoch=0, data=tuple(replicas))
    cfg = PaxosConfig(membership=membership, **dataclasses.asdict(ReplicaTuning(**tuning)))
    return StageWatch(LedgerReplica(node_id, cfg), unread_traces=UNREAD_TRACES)


class _WatchedContext:
    """The replica's own context, except that what it sends is seen first (and the
    trace kinds its watch was told go unread are dropped: `UNREAD_TRACES`)."""

    def __init__(self, ctx: Context, watch: StageWatch) -> None:
        self._ctx = ctx
        self._watch = watch

    def __getattr__(self, name: str) -> Any:
        # Kept once looked up (bound methods, the disk): the replica asks on every
        # event, and a lookup through __getattr__ each time was measurable.
        value = getattr(self._ctx, name)
        setattr(self, name, value)
        return value

    def send(self, dst: NodeId, msg: Message) -> None:
        self._watch.sent(self._ctx, msg)
        self._ctx.send(dst, msg)

    def trace(self, kind: str, **fields: object) -> None:
        if kind not in self._watch.unread_traces:
            self._ctx.trace(kind, **fields)


class StageWatch(Node):
    """A replica, unchanged, with its leader's stages noted per request.

    For every `STAGE_SAMPLE_EVERY`-th request this replica answers as leader,
    one `bench.stages` trace: when it arrived (`in_ms`), was proposed in a
    slot (`slot_ms`), chosen (`chosen_ms`: the handler that applied it
    began) and answered (`out_ms`: the node sent the answer; the host may
    still hold it for an fsync). The replica itself knows nothing of this.
    """

    def __init__(
        self,
        inner: Replica,  # a ledger's, a broker's (reference/mq/bench)
        unread_traces: frozenset[str] = frozenset(),  # trace kinds not forwarded at all
    ) -> None:
        self.inner = inner
        self.unread_traces = unread_traces
        self.node_id = inner.node_id
        self.handler_ms = 0.0  # when the handler now running began
        self.arrived: dict[str, float] = {}  # request -> first arrival, while led here
        self.slotted: dict[str, float] = {}  # request -> when its Accept first left
        self.answered = 0
        self.top_slot = 0  # the highest slot this replica proposed as leader
        self._watched: _WatchedContext | None = None  # one per context, not per event

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # tests and the explorer look at the replica

    def _watch(self, ctx: Context) -> Context:
        watched = self._watched
        if watched is None or watched._ctx is not ctx:
            watched = self._watched = _WatchedContext(ctx, self)
        return cast(Context, watched)

    def on_start(self, ctx: Context) -> None:
        self.inner.on_start(self._watch(ctx))

    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        self.handler_ms = now_ms = ctx.now_ms()
        if isinstance(msg, Propose):
            self.arrived.setdefault(msg.request_id, now_ms)
        self.inner.on_message(self._watch(ctx), src, msg)

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        self.handler_ms = ctx.now_ms()
        self.inner.on_timer(self._watch(ctx), tag)

    def sent(self, ctx: Context, msg: Message) -> None:
        if isinstance(msg, Accept):
            now_ms = ctx.now_ms()
            if msg.slot > self.top_slot:  # a new slot (its Accept goes to every peer)
                self.top_slot = msg.slot
                ctx.count(SLOTS_COUNTER)
                ctx.count(SLOT_REQUESTS_COUNTER, len(msg.batch))
            for request_id, _ in msg.batch:
                if request_id in self.arrived:
                    self.slotted.setdefault(request_id, now_ms)
        elif isinstance(msg, ProposeResult):
            in_ms = self.arrived.pop(msg.request_id, None)
            slot_ms = self.slotted.pop(msg.request_id, None)
            if not msg.ok or in_ms is None or slot_ms is None:
                return  # refused, or answered from the dedup table: no stages
            self.answered += 1
            if self.answered % STAGE_SAMPLE_EVERY == 0:
                ctx.trace(
                    STAGE_TRACE,
                    request=msg.request_id,
                    in_ms=in_ms,
                    slot_ms=slot_ms,
                    chosen_ms=self.handler_ms,
                    out_ms=ctx.now_ms(),
                )
        if len(self.arrived) > 100_000:  # a leader that lost its role keeps nothing forever
            self.arrived.clear()
            self.slotted.clear()


class LoadClient(Node):
    """Keeps `inflight` requests outstanding; records every committed one."""

    def __init__(self, node_id: str, inflight: int, batch: int, seed: int) -> None:
        self.node_id = node_id
        self.inflight = inflight
        self.batch = batch
        self.rng = random.Random(seed)
        self.leaders = LeaderFollower(REPLICAS)  # whom we believe leads
        self.next_transfer_id = itertools.count(1)
        self.next_request = itertools.count(1)
        # request -> (first send, the request as sent, tries)
        self.sent: dict[str, tuple[float, Propose, int]] = {}
        self.done: list[tuple[float, float, int]] = []  # (completed_ms, latency_ms, transfers ok)
        # request -> (first send, answer): requests answered at their first try.
        self.timeline: dict[str, tuple[float, float]] = {}
        self.accounts_ready = False
        self.running = False
        self.answered_since_sweep = True

    def setup(self, ctx: Context) -> None:
        accounts = tuple(Account(i, LEDGER, CODE) for i in range(1, ACCOUNTS + 1))
        self._send(ctx, "accounts", CreateAccounts(accounts, 0))

    def start_load(self, ctx: Context) -> None:
        self.running = True
        for _ in range(self.inflight):
            self._next(ctx)
        ctx.set_timer(REQUEST_TIMEOUT_MS / 2, "sweep")

    def _next(self, ctx: Context) -> None:
        transfers = []
        randrange = self.rng.randrange
        for _ in range(self.batch):
            # Two distinct accounts, uniformly: the credit is drawn from the
            # other ACCOUNTS - 1 (a quarter of what rng.sample costs; the load
            # generator's CPU is on every request's path, on a shared machine).
            debit = randrange(1, ACCOUNTS + 1)
            credit = randrange(1, ACCOUNTS)
            credit += credit >= debit
            transfers.append(Transfer(next(self.next_transfer_id), debit, credit, 1, LEDGER, CODE))
        self._send(
            ctx, f"{self.node_id}/{next(self.next_request)}", CreateTransfers(tuple(transfers), 0)
        )

    def _send(self, ctx: Context, request_id: str, command: Any) -> None:
        propose = Propose(request_id, command)
        self.sent[request_id] = (ctx.now_ms(), propose, 1)
        ctx.send(self.leaders.leader, propose)

    def _resend(self, ctx: Context, request_id: str) -> None:
        """Send a request (again): the very same Propose each time, whose bytes the
        codec remembers (a large message's, by identity), so a retry of the setup's
        1,000 accounts after each refusal (no leader yet) is not encoded again."""
        first_ms, propose, tries = self.sent[request_id]
        self.sent[request_id] = (first_ms, propose, tries + 1)
        ctx.send(self.leaders.leader, propose)

    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        if not isinstance(msg, ProposeResult) or msg.request_id not in self.sent:
            return
        first_ms, _, tries = self.sent[msg.request_id]
        if not msg.ok:
            self.leaders.refused(src, msg.leader_hint)
            self._resend(ctx, msg.request_id)  # same id: applied at most once
            return
        del self.sent[msg.request_id]
        self.leaders.answered(src)
        self.answered_since_sweep = True
        if msg.request_id == "accounts":
            self.accounts_ready = True
            return
        results = msg.result if isinstance(msg.result, tuple | list) else ()
        ok = sum(1 for r in results if r == "ok")
        now_ms = ctx.now_ms()
        self.done.append((now_ms, now_ms - first_ms, ok))
        if tries == 1:
            self.timeline[msg.request_id] = (first_ms, now_ms)
        if self.running:
            self._next(ctx)

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        # Requests unanswered for too long are resent. The leader is suspected
        # only if nothing at all was answered since the last sweep: a slow
        # leader is still the leader, and hopping would only add redirects.
        now_ms = ctx.now_ms()
        if not self.answered_since_sweep:
            self.leaders.silent()
        self.answered_since_sweep = False
        for request_id, (first_ms, _, tries) in list(self.sent.items()):
            if now_ms - first_ms > REQUEST_TIMEOUT_MS * tries:
                self._resend(ctx, request_id)
        if self.running:
            ctx.set_timer(REQUEST_TIMEOUT_MS / 2, "sweep")


# The targets (three replicas, fsync on): one transfer a request, as
# pgbench sends them, and the default of 8 requests of 8 transfers.
TARGETS: dict[str, tuple[float, float]] = {  # (transfers/s at least, p99 ms at most)
    "one": (4_000.0, 20.0),
    "default": (10_000.0, 30.0),
}


@dataclass(frozen=True)
class Stage:
    name: str
    mean_ms: float
    p50_ms: float
    note: str = ""


@dataclass
class StageBudget:
    """Where the time of one request goes, stage by stage (see the module docstring)."""

    sampled: int  # requests with every stage noted
    stages: list[Stage]
    held: dict[str, tuple[float, int]]  # message type -> (mean wait for an fsync, count)
    slots: int = 0  # slots the leader proposed over the whole run
    slot_requests: int = 0  # requests in them
    fsync_ms: tuple[float, int] | None = None  # the disks' own fsyncs: (mean, count)
    # Per replica, the mean ms of each fsync and of the hand-offs around it: loop to
    # writer thread (until its write began), the write, and writer back to loop
    # (until the loop heard the report).
    handoff_ms: dict[str, tuple[float, float, float]] = field(default_factory=dict)

    def render(self) -> list[str]:
        total = sum(stage.mean_ms for stage in self.stages)
        lines = [
            f"  budget of one request (mean and p50 over {self.sampled:,} requests, "
            "every stage on one clock):"
        ]
        for stage in self.stages:
            share = stage.mean_ms / total if total > 0 else 0.0
            note = f"  {stage.note}" if stage.note else ""
            lines.append(
                f"    {stage.name:<18} {stage.mean_ms:7.2f} ms mean {stage.p50_ms:7.2f} ms p50 "
                f"{share:4.0%}{note}"
            )
        lines.append(f"    {'total':<18} {total:7.2f} ms mean")
        if self.slots:
            lines.append(
                f"  the leader grouped {self.slot_requests / self.slots:.1f} requests a slot "
                f"({self.slot_requests:,} in {self.slots:,} slots, warm-up included)"
            )
        if self.held:
            waits = ", ".join(
                f"{name} {mean_ms:.2f} ms x {count:,}"
                for name, (mean_ms, count) in self.held.items()
            )
            lines.append(f"  held for an fsync (mean wait x messages held, all replicas): {waits}")
        if self.fsync_ms is not None:
            mean_ms, count = self.fsync_ms
            lines.append(
                f"  the fsyncs themselves (all replicas): {mean_ms:.2f} ms mean x {count:,}; "
                "a held message also waits for the fsync before its own, and the loop's turn"
            )
        if self.handoff_ms:
            lines.append(
                "  one fsync and its hand-offs (mean; a hand-off is a thread's wake-up "
                "and its wait for the GIL, or for the writer's previous write):"
            )
            for node, (to_writer_ms, write_ms, to_loop_ms) in self.handoff_ms.items():
                lines.append(
                    f"    {node}: loop to writer {to_writer_ms:.2f} ms, write {write_ms:.2f} ms, "
                    f"writer to loop {to_loop_ms:.2f} ms"
                )
        return lines


def _cpu_s(pid: int | None) -> float | None:
    """CPU seconds (user + system, every thread) a process has used; None off Linux."""
    if pid is None:
        return time.process_time()
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return None
    # After the command's closing parenthesis: utime and stime are fields 12, 13.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_by_node(rt: Any, replicas: Sequence[str] = REPLICAS) -> dict[str, float | None]:
    """Each replica's CPU seconds so far, and the harness's (it hosts the load)."""
    cpu: dict[str, float | None] = {}
    for replica in replicas:
        proc = rt.members[replica].proc
        cpu[replica] = _cpu_s(proc.pid) if proc is not None else None
    cpu["harness"] = _cpu_s(None)
    return cpu


def cpu_us_per(
    begin: dict[str, float | None], end: dict[str, float | None], units: int
) -> dict[str, float]:
    """CPU microseconds per unit (a transfer, a message) of each process between two readings."""
    out: dict[str, float] = {}
    for node, before in begin.items():
        after = end.get(node)
        if before is not None and after is not None and units:
            out[node] = (after - before) * 1e6 / units
    return out


def _stage_budget(load: LoadClient, telemetry: Telemetry, begin_ms: float) -> StageBudget | None:
    """Join the leader's stage traces with the client's send and answer times."""
    rows: list[tuple[float, float, float, float, float, float]] = []
    for event in telemetry.find(STAGE_TRACE):
        timeline = load.timeline.get(event["request"])
        if timeline is None or timeline[0] < begin_ms:
            continue
        sent_ms, answered_ms = timeline
        rows.append(
            (
                sent_ms,
                event["in_ms"],
                event["slot_ms"],
                event["chosen_ms"],
                event["out_ms"],
                answered_ms,
            )
        )
    if not rows:
        return None
    held: dict[str, tuple[float, int]] = {}
    for name in ("Accept", "Accepted", "ProposeResult"):
        count = telemetry.counter(f"fsync_held.{name}")
        if count:
            held[name] = (telemetry.counter(f"fsync_held_us.{name}") / count / 1000.0, count)
    # The leader's answers wait for its own fsync: the mean wait per answer
    # (held ones and the few that were not) is that stage; the rest of the
    # last leg is the hop back to the client.
    answers = sum(1 for _ in load.timeline)
    reply_held_ms = 0.0
    if "ProposeResult" in held and answers:
        mean_ms, count = held["ProposeResult"]
        reply_held_ms = mean_ms * min(1.0, count / max(answers, 1))

    def stage(name: str, a: int, b: int, note: str = "", minus_ms: float = 0.0) -> Stage:
        spans = sorted(row[b] - row[a] - minus_ms for row in rows)
        return Stage(name, statistics.fmean(spans), _quantile(spans, 0.5), note)

    fsyncs = telemetry.counter("fsyncs")
    stages = [
        stage("client to leader", 0, 1, "the request's hop, and the leader's backlog of reads"),
        stage("queueing", 1, 2, "waiting for a slot (the window was full)"),
        stage("accept round", 2, 3, "accepts out, followers' fsync, answers back"),
        stage("apply", 3, 4, "learn the slot, apply its batch, answer"),
        Stage("fsync", reply_held_ms, reply_held_ms, "the answer held until the leader's fsync"),
        stage("reply", 4, 5, "the hop back, and the client's turn", minus_ms=reply_held_ms),
    ]
    return StageBudget(
        sampled=len(rows),
        stages=stages,
        held=held,
        slots=telemetry.counter(SLOTS_COUNTER),
        slot_requests=telemetry.counter(SLOT_REQUESTS_COUNTER),
        fsync_ms=(telemetry.counter("fsync_us") / fsyncs / 1000.0, fsyncs) if fsyncs else None,
        handoff_ms=_handoff_ms(telemetry),
    )


def _handoff_ms(telemetry: Telemetry) -> dict[str, tuple[float, float, float]]:
    """Each replica's mean fsync and hand-offs around it (host.py `_count_fsyncs`)."""
    out: dict[str, tuple[float, float, float]] = {}
    for node in REPLICAS:
        fsyncs = telemetry.counter("fsyncs", node)
        reports = telemetry.counter("fsync_reports", node)
        if fsyncs and reports:
            out[node] = (
                telemetry.counter("fsync_handoff_us", node) / fsyncs / 1000.0,
                telemetry.counter("fsync_us", node) / fsyncs / 1000.0,
                telemetry.counter("fsync_report_us", node) / reports / 1000.0,
            )
    return out


@dataclass
class BenchReport:
    seconds: float
    transfers: int
    requests: int
    p50_ms: float
    p99_ms: float
    clients: int
    batch: int
    fsync: bool
    tuning: ReplicaTuning
    budget: StageBudget | None = None
    comparison: list[str] = field(default_factory=list)  # --compare-pgbench's lines
    # CPU microseconds per committed transfer, per process: what a shared,
    # busy machine disturbs least (throughput there measures the neighbours).
    cpu_us_per_transfer: dict[str, float] = field(default_factory=dict)

    @property
    def transfers_per_s(self) -> float:
        return self.transfers / self.seconds

    def render(self) -> str:
        target_tps, target_p99_ms = TARGETS["one" if self.batch == 1 else "default"]
        tps_ratio = self.transfers_per_s / target_tps
        p99_ratio = self.p99_ms / target_p99_ms
        lines = [
            f"ledger on ProcessRuntime: 3 Paxos replicas on loopback "
            f"(fsync {'on' if self.fsync else 'off'}), {self.clients} requests in flight "
            f"x {self.batch} transfers; window {self.tuning.window_slots} slots, "
            f"<= {self.tuning.batch_max_commands} requests a slot"
            f"{', gathered a turn at a time' if self.tuning.propose_delay_ms is not None else ''}, "
            f"snapshot every "
            f"{self.tuning.snapshot_every_slots} slots",
            f"  committed transfers/s: {self.transfers_per_s:,.0f} "
            f"({self.transfers:,} in {self.seconds:.1f} s; {tps_ratio:.2f}x the "
            f"{target_tps:,.0f}/s target)",
            f"  request latency: p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms "
            f"({p99_ratio:.2f}x the {target_p99_ms:.0f} ms p99 target)",
        ]
        if self.cpu_us_per_transfer:
            total_us = sum(self.cpu_us_per_transfer.values())
            each = ", ".join(f"{n} {us:.0f}" for n, us in self.cpu_us_per_transfer.items())
            lines.append(f"  CPU per committed transfer: {total_us:.0f} us ({each})")
        if self.budget is not None:
            lines += self.budget.render()
        lines += self.comparison
        lines += [
            f"transfers_per_s: {self.transfers_per_s:.0f}",
            f"p50_ms: {self.p50_ms:.2f}",
            f"p99_ms: {self.p99_ms:.2f}",
        ]
        return "\n".join(lines)


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


@dataclass(frozen=True)
class ReplicaTuning:
    """The Paxos knobs the bench gives every replica (PaxosConfig checks them).

    - A window of 2 slots, not 8: under load the leader then fills each slot
      with every request that queued meanwhile (up to `batch_max_commands`),
      so the per-slot costs (two accepts and two answers, a disk record, a
      trace; and the log compaction every `snapshot_every_slots`) are paid
      per many transfers. 8 slots of one request each cost more CPU, which
      is what this machine runs out of, for no gain in latency.
    - Requests gathered a turn at a time (`propose_delay_ms` 0): the leader
      proposes at the end of its loop's turn, so the requests one read
      brought share a slot. Proposing each at once, the first of eight
      answered clients' next requests took a slot alone and the other seven
      waited for the next (with one transfer a request: 0.5x the CPU a
      transfer, 2x the transfers a second, measured side by side).
    - Followers learn a turn later (`learn_delay_ms` 0): an Accept's commit
      index tells a follower the previous slot is chosen, and applying it in
      the handler held the interpreter's lock while the disk's writer thread
      waited for it to start the new accept's fsync; applied on the loop's
      next turn, it runs alongside that fsync instead.
    - A snapshot every 1,024 slots, not the simulator's 64: compaction is
      cheap now (sealed chunks are written once, see paxos/chunks.py), but it
      still writes every account and the unsealed tails, a pause of a few
      milliseconds; at 64 slots that came every 200 ms, on each replica, and
      set the p99. 1,024 slots keep under 1,024 batches of log to replay on
      a restart (etcd keeps 10,000 entries by default).
    - Timing as etcd's defaults have it (election 1 s, heartbeat 100 ms), not
      the simulator's 150/30 ms: on a shared, loaded 2-core machine a process
      is descheduled for 100 ms and more at times, and a follower that then
      campaigns turns one hiccup into a leader change costing ~0.5 s.
    """

    window_slots: int = 2
    batch_max_commands: int = 16
    propose_delay_ms: float | None = 0.0
    learn_delay_ms: float | None = 0.0
    snapshot_every_slots: int = 1024
    election_timeout_ms: float = 1000.0
    heartbeat_interval_ms: float = 100.0
    lease_ms: float = 300.0

    def __post_init__(self) -> None:
        assert self.window_slots >= 1 and self.batch_max_commands >= 1
        assert self.snapshot_every_slots >= 1


def run_bench(
    *,
    seconds: float,
    clients: int,
    batch: int,
    fsync: bool,
    tuning: ReplicaTuning | None = None,
) -> BenchReport:
    from reference.runtime.process import ProcessRuntime
    from reference.runtime.spec import NodeSpec

    assert seconds > 0 and clients >= 1 and batch >= 1
    tuning = tuning or ReplicaTuning()
    args = {"replicas": list(REPLICAS), **dataclasses.asdict(tuning)}
    with ProcessRuntime(seed=1, fsync=fsync) as rt:
        for replica in REPLICAS:
            rt.add_node(replica, NodeSpec(f"{__name__}:ledger_replica", args))
        load = LoadClient("load", clients, batch, seed=1)
        rt.add_local_node("load", lambda node_id: load)
        rt.start()
        ctx = rt.context("load")
        assert ctx is not None
        rt.call_after(0.0, lambda: load.setup(ctx))
        deadline_s = time.monotonic() + SETUP_TIMEOUT_MS / 1000
        while not load.accounts_ready:
            if time.monotonic() > deadline_s:
                raise BenchError(
                    f"the ledger did not commit its accounts in {SETUP_TIMEOUT_MS / 1000:.0f} s "
                    f"(replica logs in {rt.data_dir})"
                )
            rt.run_for(50)
        rt.call_after(0.0, lambda: load.start_load(ctx))
        rt.run_for(WARMUP_MS)
        begin_ms = rt.now_ms
        cpu_begin = cpu_by_node(rt)
        rt.run_for(seconds * 1000)
        end_ms = rt.now_ms
        cpu_end = cpu_by_node(rt)
        load.running = False
        rt.run_for(FLUSH_WAIT_MS)  # the replicas' last stage traces reach the harness
        budget = _stage_budget(load, rt.telemetry, begin_ms)
    window = [(lat, ok) for done_ms, lat, ok in load.done if begin_ms <= done_ms < end_ms]
    if not window:
        raise BenchError("no request committed during the measured window")
    latencies = sorted(lat for lat, _ in window)
    transfers = sum(ok for _, ok in window)
    return BenchReport(
        seconds=(end_ms - begin_ms) / 1000,
        transfers=transfers,
        requests=len(window),
        p50_ms=_quantile(latencies, 0.50),
        p99_ms=_quantile(latencies, 0.99),
        clients=clients,
        batch=batch,
        fsync=fsync,
        tuning=tuning,
        budget=budget,
        cpu_us_per_transfer=cpu_us_per(cpu_begin, cpu_end, transfers),
    )


def compare_with_pgbench(report: BenchReport) -> list[str]:
    """pgbench beside the ledger (pgbench.py): its lines for the report, or why it was skipped."""
    from reference.runtime.pgbench import PgbenchUnavailable, run_pgbench

    try:
        pg = run_pgbench(clients=report.clients, seconds=report.seconds)
    except PgbenchUnavailable as exc:
        return [f"  pgbench: skipped ({exc})"]
    return [
        f"  pgbench, measured just after on this machine: one PostgreSQL, fsync on, "
        f"the two-row transfer over 10,000 accounts, {pg.clients} clients: "
        f"{pg.tps:,.0f} transactions/s, latency mean {pg.latency_avg_ms:.2f} ms"
        + (f" ({pg.failed} failed)" if pg.failed else ""),
        f"  ledger / pgbench: {report.transfers_per_s / pg.tps:.2f}x the transfers a second "
        f"(each pgbench transaction is one transfer; this run sent {report.batch} a request)",
    ]
