"""`d11 bench mq`: transactional messages through the broker on real processes.

Three `BrokerReplica` processes on loopback (their disks fsynced files) and
one local node in the bench's process that is both the producer and the
consumer group. It keeps `inflight` requests outstanding; a request stores
`batch` half messages (one `SendHalves`, in a `CommandBatch`) and carries the
verdicts (`EndTransactions` COMMIT) on the halves its previous request stored:
one proposal, so one Paxos slot and one fsync, per round trip. The consumer
side long-polls all its queues at the leader in one read (`PullQueries`, a
lease read held until one of them grows, as RocketMQ's broker suspends a
pull) and acknowledges what it pulled by committing its offsets every
`OFFSET_COMMIT_MS`. A message counts when it is pulled; its latency is from
its half send to that pull (half stored, committed, delivered), over the
measured window after a warm-up. With `batch=1` each message is its own half
and its verdict its own one-way request, as a RocketMQ producer sends them:
the unbatched figure.

The load is closed: a request leaves only when one is answered, so at most
`inflight` requests (and the messages they carry) are in the broker at once
and nothing queues in front of it that the bench offered beyond what it
serves. Each message's stages are noted on the load's clock (`Delivery`):
its half stored, its verdict answered, its pull, and the offset commit that
acknowledged it; the report prints each stage's p50 and p99 beside the end to
end figures, and the longest time no message was delivered (a stall).
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import statistics
import time
from collections.abc import Hashable
from dataclasses import dataclass
from math import isnan, nan
from typing import TYPE_CHECKING, Any, NamedTuple

from reference.codec import Message
from reference.mq.broker import BrokerReplica
from reference.mq.machine import BrokerConfig, BrokerMachine
from reference.mq.messages import (
    CommandBatch,
    CommitOffset,
    EndTransaction,
    EndTransactions,
    Payload,
    PullQueries,
    PullQuery,
    PullResult,
    PullResults,
    SendHalf,
    SendHalves,
    StoredMessage,
)
from reference.node import Context, Node, NodeId
from reference.paxos.config import PaxosConfig
from reference.paxos.leader import LeaderFollower
from reference.paxos.messages import Membership, Propose, ProposeResult, Read, ReadResult

if TYPE_CHECKING:
    from reference.runtime.bench import StageWatch
    from reference.telemetry import Telemetry

__all__ = [
    "BenchError",
    "Delivery",
    "MqBenchReport",
    "longest_pause_ms",
    "run_mq_bench",
    "stage_quantiles",
]

REPLICAS = ("b1", "b2", "b3")
TOPIC, GROUP, PRODUCERS, CONSUMERS = "payments", "bench", "bench-producers", "bench-consumers"
QUEUES = 8
PULL_BATCH = 256
SUSPEND_MS = 400  # long polling: a pull with nothing to read waits at the leader (< the timeout)
OFFSET_COMMIT_MS = 100.0
TARGET_MESSAGES_PER_S = 20_000.0
TARGET_P99_MS = 50.0
WARMUP_MS = 1_000.0
REQUEST_TIMEOUT_MS = 1_000.0
SETUP_TIMEOUT_MS = 15_000.0


class Delivery(NamedTuple):
    """One message's life on the load's clock, ms: its half sent, the answer that said
    it stored (on a quorum, fsynced), the answer to the request carrying its COMMIT
    (nan if that answer was lost: a one-way verdict), and its pull. A tuple: one is
    made per message on the load's loop (a frozen dataclass cost 2 us, a tuple 1)."""

    pulled_ms: float
    born_ms: float
    stored_ms: float
    committed_ms: float

    @property
    def latency_ms(self) -> float:
        return self.pulled_ms - self.born_ms


class BenchError(RuntimeError):
    """The cluster did not come up or delivered nothing; the message says how."""


@dataclass(frozen=True)
class BrokerTuning:
    """Paxos knobs of the bench's broker group (as `d11 bench process` for the ledger):
    etcd-like timing for a loaded machine, and no compaction inside a short run
    (a snapshot holds the whole commit log)."""

    window_slots: int = 2
    batch_max_commands: int = 64
    # None: a request with room in the window is proposed at once; 0: at the end of
    # the leader's turn, so requests that arrived together share a slot (paxos/config).
    # 0: measured at load 9-10, three alternating runs each, 3,987-4,790 -> 3,754-6,227
    # msgs/s batched (medians 4,287 -> 6,142) and the leader's CPU 29-31 -> 24-26 us a
    # message (fewer slots, so fewer accepts, answers and fsyncs for as many messages).
    propose_delay_ms: float | None = 0.0
    # 0: a follower applies the slot an Accept says is chosen on its loop's next turn,
    # alongside the new accept's fsync, not before it (the disk's writer needs the
    # interpreter's lock to start; reference/runtime/bench.py says the same for the
    # ledger). Measured at load 10-14 (other helpers' benches), 14 alternating pairs
    # of 3 s: medians 7,063 -> 9,337 and 10,329 -> 13,171 msgs/s batched, p99 medians
    # 186 -> 134 and 172 -> 128 ms, the accept round's mean 15.7 -> 13.6 and 12.0 -> 10.7 ms.
    learn_delay_ms: float | None = 0.0
    snapshot_every_slots: int = 1_000_000
    election_timeout_ms: float = 1000.0
    heartbeat_interval_ms: float = 100.0
    lease_ms: float = 300.0


def broker_replica(node_id: str, replicas: list[str], **tuning: Any) -> BrokerReplica:
    """A process node factory, by name (see reference/runtime/spec.py)."""
    membership = Membership(epoch=0, data=tuple(replicas))
    cfg = PaxosConfig(membership=membership, **dataclasses.asdict(BrokerTuning(**tuning)))
    return BrokerReplica(
        node_id, cfg, BrokerConfig(queues_per_topic=QUEUES), {PRODUCERS: ("load",)}
    )


def watched_broker_replica(node_id: str, replicas: list[str], **tuning: float | None) -> StageWatch:
    """The same replica, its leader's stages noted per request (`message_budget`)."""
    from reference.runtime.bench import StageWatch

    return StageWatch(broker_replica(node_id, replicas, **tuning))


class MqLoad(Node):
    """Producer and consumer of the bench (see the module docstring)."""

    def __init__(self, node_id: str, inflight: int, batch: int) -> None:
        self.node_id = node_id
        self.inflight = inflight
        self.batch = batch
        self.follower = LeaderFollower(REPLICAS)  # whom to send to (paxos/leader.py)
        self.ids = itertools.count(1)
        self.requests = itertools.count(1)
        self.sent: dict[str, tuple[float, Any, int]] = {}  # request -> (first send, cmd, tries)
        self.born_ms: dict[str, float] = {}  # msg id -> when its half was first sent
        self.stored_ms: dict[str, float] = {}  # msg id -> its half request's answer
        self.committed_ms: dict[str, float] = {}  # msg id -> its COMMIT's request's answer
        self.pulled: list[Delivery] = []
        # Acknowledgement: offset commit request -> when sent; then (sent, answered).
        self.offsets_sent: dict[str, float] = {}
        self.acks: list[tuple[float, float]] = []
        # For the stage budget (`message_budget`): requests answered at their first
        # try, request -> (sent, answered); a request carrying verdicts -> (sent,
        # the messages it commits); a message -> when it was pulled.
        self.timeline: dict[str, tuple[float, float]] = {}
        self.commits: dict[str, tuple[float, tuple[str, ...]]] = {}
        self.pulled_at: dict[str, float] = {}
        self.next_offset: dict[int, int] = dict.fromkeys(range(QUEUES), 0)
        self.pulling: str | None = None  # the long poll over every queue (one at a time)
        self.pulls = itertools.count(1)
        self.running = False
        self.ready = False

    def setup(self, ctx: Context) -> None:
        self._propose(ctx, "ping", CommandBatch(()))

    def start(self, ctx: Context) -> None:
        self.running = True
        for _ in range(self.inflight):
            self._produce(ctx)
        self._pull(ctx)
        ctx.set_timer(OFFSET_COMMIT_MS, "offsets")
        ctx.set_timer(REQUEST_TIMEOUT_MS / 2, "sweep")

    def _produce(self, ctx: Context, ends: tuple[EndTransactions, ...] = ()) -> None:
        """One request: the verdicts on the last batch, then the next batch's halves."""
        now_ms = ctx.now_ms()
        mids = tuple(f"m{next(self.ids)}" for _ in range(self.batch))
        for mid in mids:
            self.born_ms[mid] = now_ms
        # A batch's halves as one command, its bodies' fields in columns (each
        # message's Payload is mid, "u1", "m1@pay", 1); a single message alone, as
        # RocketMQ sends it.
        n = self.batch
        halves = (
            SendHalves(
                PRODUCERS, TOPIC, mids, mids, mids, ("u1",) * n, ("m1@pay",) * n, (1,) * n, 0
            )
            if n > 1
            else SendHalf(
                PRODUCERS, TOPIC, mids[0], mids[0], Payload(mids[0], "u1", "m1@pay", 1), 0
            )
        )
        request_id = f"half/{next(self.requests)}"
        if ends:
            self.commits[request_id] = (now_ms, tuple(m for e in ends for m in e.msg_ids))
        self._propose(ctx, request_id, CommandBatch((*ends, halves)))

    def _propose(self, ctx: Context, request_id: str, command: Any) -> None:
        first_ms, _, tries = self.sent.get(request_id, (ctx.now_ms(), command, 0))
        self.sent[request_id] = (first_ms, command, tries + 1)
        ctx.send(self.follower.leader, Propose(request_id, command))

    def _pull(self, ctx: Context) -> None:
        """Long-poll every queue in one read (the leader answers when one grows)."""
        if self.pulling is not None or not self.running:
            return
        self.pulling = f"pull/{next(self.pulls)}"
        queries = tuple(
            PullQuery(CONSUMERS, TOPIC, q, offset, PULL_BATCH, 0, SUSPEND_MS)
            for q, offset in self.next_offset.items()
        )
        ctx.send(self.follower.leader, Read(self.pulling, PullQueries(queries)))
        ctx.set_timer(REQUEST_TIMEOUT_MS, "pull-timeout")

    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        if isinstance(msg, ReadResult):
            self._on_pull(ctx, src, msg)
            return
        if not isinstance(msg, ProposeResult):
            return  # a check-back
        if msg.request_id not in self.sent:
            self._on_one_way(ctx, msg)
            return
        _, command, _ = self.sent[msg.request_id]
        if not msg.ok:
            self.follower.refused(src, msg.leader_hint)
            self._propose(ctx, msg.request_id, command)  # same id: applied at most once
            return
        self.follower.answered(src)
        first_ms, _, tries = self.sent.pop(msg.request_id)
        if tries == 1:
            self.timeline[msg.request_id] = (first_ms, ctx.now_ms())
        if msg.request_id == "ping":
            self.ready = True
        elif msg.request_id.startswith("half/"):
            now_ms = ctx.now_ms()
            stored = _half_ids(command)
            self._noted(self.stored_ms, stored, now_ms)
            carried = self.commits.get(msg.request_id)
            if carried is not None:
                self._noted(self.committed_ms, carried[1], now_ms)
            # The local transaction is empty here: its verdicts ride with the next
            # batch's halves (one proposal, one slot, one fsync for both). When the
            # load stops they go alone, one-way, as RocketMQ's endTransaction.
            if self.running and self.batch > 1:
                self._produce(ctx, (EndTransactions(PRODUCERS, stored, True, 0),))
            else:
                ends = tuple(EndTransaction(PRODUCERS, m, True, False, 0) for m in stored)
                end_id = f"end/{msg.request_id}"
                self.commits[end_id] = (now_ms, stored)
                ctx.send(self.follower.leader, Propose(end_id, CommandBatch(ends)))
                if self.running:
                    self._produce(ctx)

    def _noted(self, at: dict[str, float], msg_ids: tuple[str, ...], now_ms: float) -> None:
        """Note `now_ms` for messages not yet pulled (a late answer notes nothing)."""
        born = self.born_ms
        for m in msg_ids:
            if m in born:
                at.setdefault(m, now_ms)

    def _on_one_way(self, ctx: Context, msg: ProposeResult) -> None:
        """The answer to a one-way verdict or an offset commit (noted, nothing resent)."""
        if not msg.ok:
            return
        if msg.request_id.startswith("end/"):
            carried = self.commits.get(msg.request_id)
            if carried is not None:
                self._noted(self.committed_ms, carried[1], ctx.now_ms())
        else:
            sent_ms = self.offsets_sent.pop(msg.request_id, None)
            if sent_ms is not None:
                self.acks.append((sent_ms, ctx.now_ms()))

    def _on_pull(self, ctx: Context, src: NodeId, msg: ReadResult) -> None:
        if msg.request_id != self.pulling:
            return  # an answer after its timeout (the pull was sent again)
        self.pulling = None
        ctx.cancel_timer("pull-timeout")
        if not msg.ok or not isinstance(msg.value, PullResults):
            self.follower.refused(src, msg.leader_hint)
            ctx.set_timer(5.0, "pull")
            return
        now_ms = ctx.now_ms()
        for q, found in zip(self.next_offset, msg.value.results, strict=True):
            assert isinstance(found, PullResult)
            for m in found.messages:
                born_ms = self.born_ms.pop(m.msg_id, None)
                if born_ms is not None:
                    stored_ms = self.stored_ms.pop(m.msg_id, nan)
                    committed_ms = self.committed_ms.pop(m.msg_id, nan)
                    self.pulled.append(Delivery(now_ms, born_ms, stored_ms, committed_ms))
                    self.pulled_at[m.msg_id] = now_ms
            self.next_offset[q] = found.next_offset
        self._pull(ctx)  # long polling: the leader holds it until a queue grows

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        if tag in ("pull", "pull-timeout"):
            if tag == "pull-timeout":
                self.pulling = None  # unanswered: ask again
            self._pull(ctx)
        elif tag == "offsets":
            commits = tuple(
                CommitOffset(CONSUMERS, TOPIC, q, o) for q, o in self.next_offset.items()
            )
            request_id = f"offsets/{next(self.requests)}"
            self.offsets_sent[request_id] = ctx.now_ms()
            ctx.send(self.follower.leader, Propose(request_id, CommandBatch(commits)))
            if self.running:
                ctx.set_timer(OFFSET_COMMIT_MS, "offsets")
        elif tag == "sweep":
            now_ms = ctx.now_ms()
            for request_id, (first_ms, command, tries) in list(self.sent.items()):
                if now_ms - first_ms > REQUEST_TIMEOUT_MS * tries:
                    self._propose(ctx, request_id, command)
            if self.running:
                ctx.set_timer(REQUEST_TIMEOUT_MS / 2, "sweep")


def _half_ids(request: CommandBatch) -> tuple[str, ...]:
    """The msg ids of the half messages a request stores."""
    ids: list[str] = []
    for command in request.commands:
        if isinstance(command, SendHalves):
            ids.extend(command.msg_ids)
        elif isinstance(command, SendHalf):
            ids.append(command.msg_id)
    return tuple(ids)


@dataclass(frozen=True)
class MessageBudget:
    """Where one message's time goes, stage by stage (means, ms, one clock): its half's
    request to the leader and back, then the request carrying its COMMIT up to the
    slot that applies it, then its delivery. Leader stages from `StageWatch` traces
    (one request in `STAGE_SAMPLE_EVERY`), the ends from the load's own clock."""

    sampled: int  # requests with every stage noted
    half: dict[str, float]  # stage -> mean ms
    commit: dict[str, float]
    latency_mean_ms: float  # what the load measured, to set the sum beside
    held_ms: dict[str, tuple[float, int]]  # message type -> (mean wait for an fsync, count)
    fsync_ms: tuple[float, int] | None  # the disks' own fsyncs: (mean, count)

    def render(self, name: str) -> list[str]:
        def part(stages: dict[str, float]) -> str:
            each = ", ".join(f"{stage} {ms:.1f}" for stage, ms in stages.items())
            return f"{each} (= {sum(stages.values()):.1f})"

        total_ms = sum(self.half.values()) + sum(self.commit.values())
        lines = [
            f"{name}: budget of one message, ms (means over {self.sampled:,} sampled "
            f"requests): half round {part(self.half)}; commit {part(self.commit)}; "
            f"total {total_ms:.1f} against {self.latency_mean_ms:.1f} measured"
        ]
        waits = ", ".join(f"{kind} {ms:.1f} x {n:,}" for kind, (ms, n) in self.held_ms.items())
        fsync = (
            f"; the fsyncs themselves {self.fsync_ms[0]:.1f} ms x {self.fsync_ms[1]:,}"
            if self.fsync_ms
            else ""
        )
        if waits or fsync:
            lines.append(f"{name}: sends held for an fsync, mean ms x count: {waits}{fsync}")
        return lines


# --8<-- [start:message-budget]
def message_budget(
    load: MqLoad, telemetry: Telemetry, begin_ms: float, end_ms: float
) -> MessageBudget | None:
    """Join the leader's stage traces with the load's clock (see `MessageBudget`)."""
    from reference.runtime.bench import STAGE_TRACE

    half: dict[str, list[float]] = {}
    commit: dict[str, list[float]] = {}
    sampled = 0
    for event in telemetry.find(STAGE_TRACE):
        request = event["request"]
        in_ms, slot_ms = event["in_ms"], event["slot_ms"]
        chosen_ms, out_ms = event["chosen_ms"], event["out_ms"]
        timeline = load.timeline.get(request)
        if timeline is not None and begin_ms <= timeline[0] < end_ms:
            sampled += 1
            sent_ms, answered_ms = timeline
            for stage, ms in (
                ("to leader", in_ms - sent_ms),
                ("queueing", slot_ms - in_ms),
                ("accept round", chosen_ms - slot_ms),
                ("apply and answer", out_ms - chosen_ms),
                ("reply", answered_ms - out_ms),
            ):
                half.setdefault(stage, []).append(ms)
        carried = load.commits.get(request)
        delivered = (
            [load.pulled_at[m] for m in carried[1] if m in load.pulled_at] if carried else []
        )
        if carried is not None and delivered and begin_ms <= carried[0] < end_ms:
            sampled += timeline is None
            for stage, ms in (
                ("to leader", in_ms - carried[0]),
                ("queueing", slot_ms - in_ms),
                ("accept round", chosen_ms - slot_ms),
                ("delivery", statistics.fmean(delivered) - chosen_ms),
            ):
                commit.setdefault(stage, []).append(ms)
    window = [d.latency_ms for d in load.pulled if begin_ms <= d.pulled_ms < end_ms]
    if not half or not commit or not window:
        return None
    held: dict[str, tuple[float, int]] = {}
    for kind in ("Accept", "Accepted", "ProposeResult", "ReadResult"):
        count = telemetry.counter(f"fsync_held.{kind}")
        if count:
            held[kind] = (telemetry.counter(f"fsync_held_us.{kind}") / count / 1000.0, count)
    fsyncs = telemetry.counter("fsyncs")
    return MessageBudget(
        sampled,
        {stage: statistics.fmean(v) for stage, v in half.items()},
        {stage: statistics.fmean(v) for stage, v in commit.items()},
        statistics.fmean(window),
        held,
        (telemetry.counter("fsync_us") / fsyncs / 1000.0, fsyncs) if fsyncs else None,
    )


# --8<-- [end:message-budget]


# --8<-- [start:stages]
def stage_quantiles(
    window: list[Delivery], acks: list[tuple[float, float]]
) -> dict[str, tuple[float, float]]:
    """Each stage's (p50, p99), ms, over the messages delivered in the window: the half
    stored (sent to answered), then its COMMIT and its delivery (stored to pulled; the
    verdict's own answer beside it), end to end (sent to pulled), and the consumer's
    acknowledgement (pulled to the answer of the first offset commit sent after it)."""
    sent_ms = [sent for sent, _ in acks]  # acks are in the order they were sent
    acked = []
    for d in window:
        i = bisect.bisect_left(sent_ms, d.pulled_ms)
        if i < len(acks):
            acked.append(acks[i][1] - d.pulled_ms)
    stages = {
        "half stored": [d.stored_ms - d.born_ms for d in window],
        "commit and delivery": [d.pulled_ms - d.stored_ms for d in window],
        "verdict answered": [d.committed_ms - d.stored_ms for d in window],
        "end to end": [d.latency_ms for d in window],
        "consumer ack": acked,
    }
    quantiles = {}
    for name, values in stages.items():
        known = sorted(v for v in values if not isnan(v))
        if known:
            quantiles[name] = (_quantile(known, 0.50), _quantile(known, 0.99))
    return quantiles


def longest_pause_ms(window: list[Delivery]) -> float:
    """The longest time between two deliveries in the window: a stall shows here."""
    times = sorted(d.pulled_ms for d in window)
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


# --8<-- [end:stages]


@dataclass(frozen=True)
class MqBenchRow:
    batch: int
    inflight: int
    messages: int
    seconds: float
    p50_ms: float
    p99_ms: float
    # CPU microseconds per delivered message, per process (replicas and the
    # harness, which hosts the load), measured over the window, when /proc says.
    cpu_us: dict[str, float] = dataclasses.field(default_factory=dict)
    budget: MessageBudget | None = None
    stages: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    longest_pause_ms: float | None = None  # between two deliveries in the window

    @property
    def messages_per_s(self) -> float:
        return self.messages / self.seconds

    def stages_line(self) -> str | None:
        """Each stage's p50/p99 (see `stage_quantiles`), and the longest stall."""
        if not self.stages:
            return None
        each = ", ".join(f"{name} {p50:.1f}/{p99:.1f}" for name, (p50, p99) in self.stages.items())
        pause = (
            f"; longest pause in deliveries {self.longest_pause_ms:.1f} ms"
            if self.longest_pause_ms is not None
            else ""
        )
        return f"stages p50/p99 ms: {each}{pause}"

    def cpu_line(self) -> str | None:
        """Each process's CPU per message and how busy it kept one core."""
        if not self.cpu_us:
            return None
        each = ", ".join(
            f"{node} {us:.1f} ({us * self.messages_per_s / 1e4:.0f}%)"
            for node, us in self.cpu_us.items()
        )
        return f"CPU per message measured, us (share of one core busy): {each}"


@dataclass(frozen=True)
class MqBenchReport:
    batched: MqBenchRow
    unbatched: MqBenchRow
    fsync: bool
    path_us: dict[str, float] | None = None  # path_cost(): CPU per message by role

    def render(self) -> str:
        b, u = self.batched, self.unbatched
        rate_ratio = b.messages_per_s / TARGET_MESSAGES_PER_S
        p99_ratio = b.p99_ms / TARGET_P99_MS
        lines = [
            f"mq on ProcessRuntime: 3 broker replicas (one Paxos group) on loopback, fsync "
            f"{'on' if self.fsync else 'off'}; half, commit, pull, offset commit",
            f"{'mode':<10} {'in flight':>9} {'msgs/request':>12} {'msgs/s':>9} "
            f"{'p50 ms':>7} {'p99 ms':>7}",
        ]
        for name, row in (("batched", b), ("unbatched", u)):
            lines.append(
                f"{name:<10} {row.inflight:>9} {row.batch:>12} {row.messages_per_s:>9,.0f} "
                f"{row.p50_ms:>7.1f} {row.p99_ms:>7.1f}"
            )
        for name, row in (("batched", b), ("unbatched", u)):
            stages = row.stages_line()
            if stages is not None:
                lines.append(f"{name}: {stages}")
        for name, row in (("batched", b), ("unbatched", u)):
            cpu = row.cpu_line()
            if cpu is not None:
                lines.append(f"{name}: {cpu}")
        for name, row in (("batched", b), ("unbatched", u)):
            if row.budget is not None:
                lines.extend(row.budget.render(name))
        lines.append(
            f"batched: {rate_ratio:.2f}x the {TARGET_MESSAGES_PER_S:,.0f} msgs/s target, p99 "
            f"{p99_ratio:.2f}x the {TARGET_P99_MS:.0f} ms target"
        )
        if self.path_us:
            roles = ", ".join(f"{role} {us:.1f}" for role, us in self.path_us.items())
            lines.append(
                f"CPU per message along the path, in one process (us): {roles}; "
                f"{1e6 / sum(self.path_us.values()):,.0f} msgs per CPU-second"
            )
        lines.append(f"messages_per_s: {b.messages_per_s:.0f}")
        return "\n".join(lines)


def _quantile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def run_one(*, seconds: float, inflight: int, batch: int, fsync: bool, **tuning: Any) -> MqBenchRow:
    from reference.runtime.bench import FLUSH_WAIT_MS, cpu_by_node, cpu_us_per
    from reference.runtime.process import ProcessRuntime
    from reference.runtime.spec import NodeSpec

    assert seconds > 0 and inflight >= 1 and batch >= 1
    args: dict[str, Any] = {"replicas": list(REPLICAS), **tuning}  # BrokerTuning overrides
    with ProcessRuntime(seed=1, fsync=fsync) as rt:
        for replica in REPLICAS:
            rt.add_node(replica, NodeSpec(f"{__name__}:watched_broker_replica", args))
        load = MqLoad("load", inflight, batch)
        rt.add_local_node("load", lambda node_id: load)
        rt.start()
        ctx = rt.context("load")
        assert ctx is not None
        rt.call_after(0.0, lambda: load.setup(ctx))
        deadline_s = time.monotonic() + SETUP_TIMEOUT_MS / 1000
        while not load.ready:
            if time.monotonic() > deadline_s:
                raise BenchError(
                    f"the broker group did not commit in {SETUP_TIMEOUT_MS / 1000:.0f} s "
                    f"(replica logs in {rt.data_dir})"
                )
            rt.run_for(50)
            if not load.ready and load.sent:  # nobody answered: try the next replica
                rt.call_after(0.0, lambda: load.setup(ctx))
        rt.call_after(0.0, lambda: load.start(ctx))
        rt.run_for(WARMUP_MS)
        begin_ms = rt.now_ms
        cpu_begin = cpu_by_node(rt, REPLICAS)
        rt.run_for(seconds * 1000)
        end_ms = rt.now_ms
        cpu_end = cpu_by_node(rt, REPLICAS)
        load.running = False
        rt.run_for(FLUSH_WAIT_MS)  # the replicas' last stage traces reach the harness
        budget = message_budget(load, rt.telemetry, begin_ms, end_ms)
    window = [d for d in load.pulled if begin_ms <= d.pulled_ms < end_ms]
    if not window:
        raise BenchError("no message was delivered during the measured window")
    latencies = sorted(d.latency_ms for d in window)
    return MqBenchRow(
        batch, inflight, len(window), (end_ms - begin_ms) / 1000,
        _quantile(latencies, 0.50), _quantile(latencies, 0.99),
        cpu_us_per(cpu_begin, cpu_end, len(window)), budget,
        stage_quantiles(window, load.acks), longest_pause_ms(window),
    )  # fmt: skip


# --8<-- [start:path-cost]
def path_cost(*, batches: int = 60, batch: int = 64) -> dict[str, float]:
    """CPU microseconds per message of the batched path, by role, in this process:
    every encode, decode and apply a message goes through on the load (its
    request, the answer, its pull), the leader (the request, the accept for the
    followers and its own disk record, the apply, the answer, the pull) and the
    two followers together (the accept, the disk record, the apply). Not the
    runtime's framing, HMAC or scheduling: what no busy neighbour changes much."""
    from reference.codec import decode, encode
    from reference.disk.file import encode_write
    from reference.mq.broker import stamp
    from reference.paxos.messages import Accept

    spent: dict[str, float] = {"load": 0.0, "leader": 0.0, "followers": 0.0}
    replicas = [BrokerMachine(BrokerConfig(queues_per_topic=QUEUES)) for _ in REPLICAS]
    previous: tuple[str, ...] = ()
    ids = itertools.count(1)

    def timed(role: str, work: Any) -> Any:
        start_s = time.process_time()
        out = work()
        spent[role] += time.process_time() - start_s
        return out

    def request(r: int) -> bytes:
        nonlocal previous
        mids = tuple(f"m{i}" for i in itertools.islice(ids, batch))
        n = len(mids)
        halves = SendHalves(
            PRODUCERS, TOPIC, mids, mids, mids, ("u1",) * n, ("m1@pay",) * n, (1,) * n, 0
        )
        ends = (EndTransactions(PRODUCERS, previous, True, 0),) if previous else ()
        previous = mids
        return encode(Propose(f"half/{r}", CommandBatch((*ends, halves))))

    def lead(raw: bytes, r: int) -> tuple[bytes, bytes]:
        propose = decode(raw)
        assert isinstance(propose, Propose)
        entries = ((propose.request_id, stamp(propose.command, 1_000.0 + r)),)
        vote = Accept((1, REPLICAS[0]), 0, r + 1, entries, r)
        encode_write(("put", "paxos/acc/", vote))  # its disk record: the vote, put first
        accept = encode(vote)  # encoded once: the record's bytes (reference/codec.py)
        result = replicas[0].apply(entries[0][1])
        return accept, encode(ProposeResult(propose.request_id, True, result, REPLICAS[0]))

    def follow(accept: bytes) -> None:
        for machine in replicas[1:]:
            msg = decode(accept)
            assert isinstance(msg, Accept)
            encode_write(("put", "paxos/acc/", msg))  # the Accept's own bytes
            machine.apply(msg.batch[0][1])

    def pull() -> bytes:
        queries = tuple(
            PullQuery(CONSUMERS, TOPIC, q, -1, PULL_BATCH, 10**12) for q in range(QUEUES)
        )
        found = replicas[0].read(PullQueries(queries))
        assert isinstance(found, PullResults)
        for q, next_offset in enumerate(found.next_offsets):
            replicas[0].apply(CommitOffset(CONSUMERS, TOPIC, q, next_offset))
        return encode(ReadResult("pull/1", True, found, 0, REPLICAS[0]))

    for r in range(batches):
        raw = timed("load", lambda r=r: request(r))
        accept, answer = timed("leader", lambda raw=raw, r=r: lead(raw, r))
        timed("followers", lambda accept=accept: follow(accept))
        timed("load", lambda answer=answer: decode(answer))
        pulled = timed("leader", pull)  # every queue in one read (PullQueries)
        timed("load", lambda pulled=pulled: _pulled(decode(pulled)))
    messages = batches * batch
    return {role: s * 1e6 / messages for role, s in spent.items()}


def _pulled(answer: object) -> list[StoredMessage]:
    """The messages of a pull's answer, as the load's consumer reads them (`_on_pull`)."""
    assert isinstance(answer, ReadResult) and isinstance(answer.value, PullResults)
    return [m for found in answer.value.results for m in found.messages]


# --8<-- [end:path-cost]


def run_mq_bench(
    *, seconds: float, inflight: int, batch: int, fsync: bool, unbatched_inflight: int
) -> MqBenchReport:
    batched = run_one(seconds=seconds, inflight=inflight, batch=batch, fsync=fsync)
    unbatched = run_one(seconds=seconds, inflight=unbatched_inflight, batch=1, fsync=fsync)
    return MqBenchReport(batched, unbatched, fsync, path_cost(batch=batch))
