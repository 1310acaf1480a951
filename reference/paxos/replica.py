"""A Multi-Paxos replica: acceptor, learner and (when elected) leader, sans-IO.

One log of slots, each holding a batch of client commands, replicated on the
data replicas of a group (see `messages.Membership`):

- Phase 1 (election). A replica whose election timer fires picks a ballot
  `(round, node_id)` above any it has seen and sends `Prepare` with its
  commit index. Each voter promises never to accept a lower ballot (fsynced
  before it answers) and reports every slot above that commit index: what it
  accepted there and at which ballot, what it knows was chosen, and its
  snapshot if it is ahead. With promises from a phase-1 quorum the candidate
  leads: for every slot above its commit index it re-proposes the value
  accepted at the highest ballot (no-ops fill the gaps), so a value that may
  have been chosen is never replaced.
- Phase 2 (replication). The leader batches queued commands into slots,
  keeps up to `window_slots` in flight, persists and fsyncs its own accept,
  then sends `Accept`. An acceptor fsyncs before it answers. A slot is chosen
  once a phase-2 quorum of data replicas accepted it at the leader's ballot;
  the leader applies chosen slots in order and answers the clients.
- Learning. Followers learn the commit index from every accept and
  heartbeat; slots they accepted at the leader's ballot are known; for the
  rest they ask the leader (`CatchUpRequest`) and get entries or a snapshot.
- Compaction. Every `snapshot_every_slots` applied slots (each replica at its
  own phase, so they do not all pause at once) the replica writes a snapshot
  of the state machine (and its dedup table), fsyncs it, and only then
  truncates the log records it covers. Sealed parts of a snapshot are
  written once (chunks.py).
- Leases. The leader sends a heartbeat round every `heartbeat_interval_ms`,
  stamped with its clock at sending plus `lease_ms`. Once a phase-1 quorum
  acknowledged a round sent at t, it may answer reads locally until
  `t + lease_ms - max_clock_skew_ms` on its own clock (voter.py has the
  voters' half). A read is served only once every slot the leader recovered
  in phase 1 is committed, so it reflects every acknowledged write.
- Membership: 3 or 5 full replicas, or 2 full replicas and an arbiter
  (arbiter.py). With an arbiter, a commit needs both full replicas. When the
  leader has heard nothing from the other replica for
  `arbitration_timeout_ms`, it asks the arbiter to approve the degraded
  membership {leader} + arbiter (a new epoch). Only after the arbiter has
  recorded it does the leader commit alone. When the lost replica is back and
  has learned every slot, the leader freezes new proposals and asks the
  arbiter to upgrade back to both replicas.

If the *leader* of a 2+arbiter group is the replica that fails, the other one
is elected with the arbiter's vote (safe: every commit needed both replicas,
so it holds them all), cannot commit alone in the old membership, and
degrades the lost one after the same arbitration timeout.

What a degraded group (one survivor S, the arbiter A, the lost replica L) can
and cannot survive:

- RPO stays 0 through the degrade: before it, every commit needed both
  replicas, so S holds every committed slot; the arbiter's vote on the new
  epoch ends the old one (S and A both refuse older epochs), so no leader of
  the old membership can commit anything afterwards.
- In degraded mode S is the only copy of the data. Losing S's disk (or S for
  good) loses committed slots: RPO > 0 is possible, exactly as for any
  single-copy store. A crash of S with its disk intact loses nothing; the
  group is unavailable until S is back (it needs S and A to elect S again).
- Losing the arbiter while degraded: S keeps committing (phase 2 needs only
  S) until S must be re-elected or renew its lease: both need the arbiter.
  Reads stop when S's lease runs out; writes continue while S stays leader.
- L returning is harmless: L's ballot cannot win (A and S refuse its old
  epoch and L is no data replica of the new one); it learns as a follower
  and is promoted only after it has every slot, while S proposes nothing.
- Losing S and A together, or a partition that leaves S without A when S
  must be re-elected, stops the group (no split brain, no data loss).
- An upgrade in flight with the arbiter unreachable keeps new proposals
  frozen until the arbiter answers (a retry every heartbeat).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable
from typing import Any

from reference.codec import Message
from reference.node import Context, NodeId, UnhandledMessage
from reference.paxos.chunks import ChunkStore
from reference.paxos.config import PaxosConfig
from reference.paxos.messages import (
    NOOP,
    Accept,
    Accepted,
    Ballot,
    Batch,
    CatchUpReply,
    CatchUpRequest,
    ChangeMembership,
    ChosenVote,
    Heartbeat,
    HeartbeatAck,
    Membership,
    MembershipAck,
    Prepare,
    Promise,
    Propose,
    ProposeResult,
    Read,
    ReadResult,
)
from reference.paxos.replicated_state import ReplicatedState, StateMachine
from reference.paxos.voter import Voter

KEY_ACCEPTED = "paxos/acc/"  # + slot: the Accept voted for (older disks: (ballot, batch))
KEY_LOG = "paxos/log/"  # + slot: batch (or ChosenVote: our vote's), a slot known chosen
KEY_SNAPSHOT = "paxos/snapshot"  # (last slot, state), its large parts in chunks (chunks.py)

FOLLOWER, CANDIDATE, LEADER = "follower", "candidate", "leader"


def _slot_key(prefix: str, slot: int) -> str:
    # f"{prefix}{slot:012d}", the same string at half the cost: four keys a
    # slot on every replica, a percent of a rehearsal level's CPU.
    return prefix + str(slot).zfill(12)


class Replica(Voter):
    """A full replica of a Paxos group (see the module docstring)."""

    def __init__(
        self, node_id: NodeId, cfg: PaxosConfig, machine_factory: Callable[[], StateMachine]
    ) -> None:
        assert node_id in cfg.replicas, f"{node_id} is not a replica of the group"
        super().__init__(node_id, cfg)
        self.machine_factory = machine_factory
        self.state = ReplicatedState(machine_factory(), cfg.dedup_max_requests)
        self.accepted: dict[int, tuple[Ballot, Batch]] = {}  # slot -> our vote
        self.chosen: dict[int, Batch] = {}  # known-chosen slots not yet compacted
        self.logged_by_vote: set[int] = set()  # chosen slots whose log record is a ChosenVote
        self.snapshot_slot = 0
        self.chunks = ChunkStore()
        self.role = FOLLOWER
        self.ballot: Ballot = (0, node_id)  # our own ballot as candidate/leader
        self.leader_hint: NodeId | None = None
        self.catchup_asked_ms = -1e18
        # Candidate.
        self.promises: dict[NodeId, Promise] = {}
        # Leader.
        self.recovered_upto = 0  # reads wait until the commit index reaches this
        self.next_slot = 1
        self.inflight: dict[int, tuple[Batch, set[NodeId]]] = {}
        self.pending: deque[tuple[str, Any]] = deque()
        self.pump_armed = False  # cfg.propose_delay_ms: a "pump" timer is set
        # cfg.learn_delay_ms: (leader, ballot, commit index) of the latest Accept,
        # to learn from when the "learn" timer fires (None: nothing deferred).
        self.learn_pending: tuple[NodeId, Ballot, int] | None = None
        self.waiting: dict[str, NodeId] = {}  # request_id -> client to answer
        self.round = 0
        self.rounds: dict[int, tuple[float, set[NodeId]]] = {}
        self.read_lease_until_ms = -1e18
        self.last_ack_ms: dict[NodeId, float] = {}
        self.peer_commit: dict[NodeId, int] = {}
        # Per peer, the highest slot it acknowledged since the last heartbeat.
        self.acked_since_beat: dict[NodeId, int] = {}
        self.changing: Membership | None = None  # a membership change awaiting the arbiter
        # Fixed by the configuration, so worked out once: each Accept re-arms
        # the election timer and each applied slot asks when to compact.
        rank, replicas = cfg.replicas.index(node_id), len(cfg.replicas)
        self.peers = tuple(r for r in cfg.replicas if r != node_id)
        # Staggered by rank so the explorer's runs are deterministic.
        self.election_delay_ms = cfg.election_timeout_ms * (1 + rank / replicas)
        # Compactions are shifted by rank (see `_next_compaction_slot`).
        self.compaction_phase = rank * cfg.snapshot_every_slots // replicas

    @property
    def commit_index(self) -> int:
        return self.state.applied_index

    # -- recovery ---------------------------------------------------------------

    def on_start(self, ctx: Context) -> None:
        self.recover_voter(ctx)
        disk = ctx.disk
        stored = disk.get(KEY_SNAPSHOT)
        snapshot = None if stored is None else self.chunks.load(disk, stored, recovering=True)
        if snapshot is not None:
            self.state.restore(snapshot)
            self.snapshot_slot = snapshot[0]
        for key in disk.keys(KEY_ACCEPTED):
            vote = disk.get(key)  # an Accept, or (ballot, batch) on an older disk
            if isinstance(vote, Accept):
                vote = (vote.ballot, vote.batch)
            self.accepted[int(key[len(KEY_ACCEPTED) :])] = vote
        for key in disk.keys(KEY_LOG):
            slot = int(key[len(KEY_LOG) :])
            if slot > self.snapshot_slot:
                record = disk.get(key)
                if isinstance(record, ChosenVote):
                    vote = self.accepted.get(slot)
                    # The vote was written before the record that points at it,
                    # and is rewritten only after the record holds the value.
                    assert vote is not None and vote[0] == record.ballot, (slot, record, vote)
                    record = vote[1]
                    self.logged_by_vote.add(slot)
                self.chosen[slot] = record
        self._apply_chosen(ctx)
        self._arm_election(ctx)
        ctx.trace("paxos.recovered", commit_index=self.commit_index, promised=self.promised)

    # -- dispatch ---------------------------------------------------------------

    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        handler = _HANDLERS.get(type(msg))
        if handler is None:
            raise UnhandledMessage(self, msg)
        handler(self, ctx, src, msg)

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        if tag == "election":
            self._on_election_timer(ctx)
        elif tag == "heartbeat":
            self._on_heartbeat_timer(ctx)
        elif tag == "pump":
            self.pump_armed = False
            self._pump(ctx)
        elif tag == "learn":
            pending, self.learn_pending = self.learn_pending, None
            if pending is not None:
                self._learn_from_leader(ctx, *pending)
        else:
            raise TypeError(f"Replica armed no timer {tag!r}")

    # -- election ---------------------------------------------------------------

    def _arm_election(self, ctx: Context) -> None:
        # Staggered by rank (`election_delay_ms`); optional jitter breaks the
        # symmetry of repeated split votes in long runs.
        delay_ms = self.election_delay_ms
        if self.cfg.election_jitter_ms > 0:
            delay_ms += ctx.random.random() * self.cfg.election_jitter_ms
        ctx.set_timer(delay_ms, "election")

    def _on_election_timer(self, ctx: Context) -> None:
        if self.role == LEADER:
            return
        if self.node_id not in self.membership.data:
            self._arm_election(ctx)  # a removed replica learns; it does not campaign
            return
        ballot = (max(self.promised[0], self.ballot[0]) + 1, self.node_id)
        wait_ms = self.vote_blocked_remaining_ms(ctx, ballot)
        if wait_ms > 0:  # a lease we granted still runs: campaign when it ends
            ctx.set_timer(wait_ms, "election")
            return
        self._campaign(ctx, ballot)

    def _campaign(self, ctx: Context, ballot: Ballot) -> None:
        self.role, self.ballot, self.leader_hint = CANDIDATE, ballot, None
        self.promises = {}
        ctx.trace("paxos.campaign", ballot=ballot)
        prepare = Prepare(ballot, self.membership, self.commit_index)
        for voter in self.membership.voters():
            if voter != self.node_id:
                ctx.send(voter, prepare)
        self._arm_election(ctx)  # retry with a higher ballot if this one stalls
        self._on_prepare(ctx, self.node_id, prepare)  # vote for ourselves, durably

    # --8<-- [start:phase1-promise]
    def _on_prepare(self, ctx: Context, src: NodeId, msg: Prepare) -> None:
        if msg.membership.epoch > self.membership.epoch:
            self.adopt_membership(ctx, msg.membership)
        stale = msg.membership.epoch < self.membership.epoch
        eligible = msg.ballot[1] in self.membership.data
        if (
            stale
            or not eligible
            or msg.ballot < self.promised
            or self.lease_blocks(ctx, msg.ballot)
        ):
            self.sync(ctx)
            ctx.send(src, Promise(msg.ballot, False, self.promised, self.membership))
            return
        if msg.ballot > self.promised and src != self.node_id:
            self._step_down(ctx, leader_hint=None)
        if src != self.node_id:
            # Granting a candidate our promise gives it its election's time: a
            # follower that kept its old timer would campaign against the ballot
            # it just promised and depose it (a duel; Raft resets its timer on a
            # granted vote for the same reason).
            self._arm_election(ctx)
        # --8<-- [start:durable-promise]
        # mutation: forget-promise -- the promise stays in memory, off the disk.
        self.set_promised(ctx, msg.ballot, durable="forget-promise" not in self.mutations)
        self.sync(ctx)  # the promise is on disk before anyone hears of it
        # --8<-- [end:durable-promise]
        above = msg.commit_index
        accepted = tuple((s, b, v) for s, (b, v) in sorted(self.accepted.items()) if s > above)
        chosen = tuple((s, v) for s, v in sorted(self.chosen.items()) if s > above)
        snapshot = self._stored_snapshot(ctx) if self.snapshot_slot > above else None
        promise = Promise(
            msg.ballot, True, self.promised, self.membership, accepted, chosen, snapshot
        )
        if src == self.node_id:
            self._on_promise(ctx, src, promise)
        else:
            ctx.send(src, promise)

    # --8<-- [end:phase1-promise]

    def _on_promise(self, ctx: Context, src: NodeId, msg: Promise) -> None:
        if msg.membership.epoch > self.membership.epoch:
            self.adopt_membership(ctx, msg.membership)
            self.sync(ctx)
        if not msg.ok:
            self._note_higher(ctx, src, msg.promised)
            return
        if self.role != CANDIDATE or msg.ballot != self.ballot:
            return  # a late answer to an older campaign
        self.promises[src] = msg
        voters = set(self.membership.voters())
        if len(voters & self.promises.keys()) >= self.membership.q1_size():
            self._become_leader(ctx)

    # --8<-- [start:phase1-adopt]
    def _become_leader(self, ctx: Context) -> None:
        promises = list(self.promises.values())
        snapshots = [p.snapshot for p in promises if p.snapshot is not None]
        best = max(snapshots, key=lambda snap: snap[0], default=None)
        if best is not None and best[0] > self.commit_index:
            self._install_snapshot(ctx, best)
        for p in promises:
            for slot, batch in p.chosen:
                self._learn(ctx, slot, batch)
        # For each slot above the commit index, the value accepted at the
        # highest ballot: the only one that may have been chosen there.
        adopted: dict[int, tuple[Ballot, Batch]] = {}
        for p in promises:
            for slot, ballot, batch in p.accepted:
                if slot <= self.commit_index:
                    continue
                if slot not in adopted or ballot > adopted[slot][0]:
                    adopted[slot] = (ballot, batch)
        if "no-adopt" in self.mutations:
            adopted = {}  # mutation: no-adopt -- the reports are ignored.
        top = max([self.commit_index, *adopted, *self.chosen])
        self.role, self.leader_hint = LEADER, self.node_id
        self.promises = {}
        self.inflight, self.rounds, self.round = {}, {}, 0
        self.acked_since_beat = {}
        self.read_lease_until_ms = -1e18
        self.last_ack_ms = dict.fromkeys(self.cfg.replicas, ctx.now_ms())
        self.changing = None
        ctx.cancel_timer("election")
        ctx.trace("paxos.leader", ballot=self.ballot, commit_index=self.commit_index, top=top)
        recovered = [
            (slot, self.chosen.get(slot, adopted.get(slot, (self.ballot, NOOP))[1]))
            for slot in range(self.commit_index + 1, top + 1)
        ]
        self.recovered_upto, self.next_slot = top, top + 1
        self._propose_slots(ctx, recovered)
        ctx.set_timer(0.0, "heartbeat")  # assert leadership (and start the lease) at once
        self._pump(ctx)

    # --8<-- [end:phase1-adopt]

    def _note_higher(self, ctx: Context, src: NodeId, ballot: Ballot) -> None:
        """A voter promised a higher ballot than ours: stop leading."""
        if src not in self.membership.voters():
            return  # a removed replica's old promises bind nobody
        if ballot > self.ballot and self.role != FOLLOWER:
            self._step_down(ctx, leader_hint=None)

    def _step_down(self, ctx: Context, leader_hint: NodeId | None) -> None:
        was = self.role
        self.leader_hint = leader_hint
        if was == FOLLOWER:
            return
        self.role = FOLLOWER
        self.promises, self.inflight, self.rounds = {}, {}, {}
        self.read_lease_until_ms = -1e18
        self.changing = None
        ctx.cancel_timer("heartbeat")
        self._arm_election(ctx)
        # Queued commands were never proposed: certainly not applied.
        for request_id, _ in self.pending:
            client = self.waiting.pop(request_id, None)
            if client is not None:
                ctx.send(client, ProposeResult(request_id, False, None, leader_hint, "not-leader"))
        self.pending.clear()
        # In-flight ones may still be chosen: the client must retry (same id).
        for request_id, client in self.waiting.items():
            ctx.send(client, ProposeResult(request_id, False, None, leader_hint, "leader-changed"))
        self.waiting = {}
        if was == LEADER:
            ctx.trace("paxos.step_down", ballot=self.ballot)

    # -- phase 2 ------------------------------------------------------------------

    def _log_peers(self) -> tuple[NodeId, ...]:
        """Who gets accepts: every full replica (a removed one learns from them)."""
        if "arbiter-accepts" in self.mutations and self.membership.arbiter is not None:
            return (*self.peers, self.membership.arbiter)  # mutation: arbiter-accepts
        return self.peers

    def _pump(self, ctx: Context) -> None:
        """Batch queued commands into new slots, up to the pipelining window."""
        for _ in range(self.cfg.pending_max_commands + 1):  # bounded: each pass drains some
            if self.role != LEADER or self.changing is not None or not self.pending:
                return
            fresh: list[tuple[int, Batch]] = []
            while self.pending and len(self.inflight) + len(fresh) < self.cfg.window_slots:
                batch: list[tuple[str, Any]] = []
                while self.pending and len(batch) < self.cfg.batch_max_commands:
                    batch.append(self.pending.popleft())
                fresh.append((self.next_slot, tuple(batch)))
                self.next_slot += 1
            if not fresh:
                return  # the window is full: wait for acknowledgements
            self._propose_slots(ctx, fresh)

    def _propose_slots(self, ctx: Context, slots: list[tuple[int, Batch]]) -> None:
        if not slots:
            return
        accepts = []
        for slot, batch in slots:
            assert slot > self.commit_index, (slot, self.commit_index)
            accept = Accept(self.ballot, self.membership.epoch, slot, batch, self.commit_index)
            self._store_accepted(ctx, accept)
            self.inflight[slot] = (batch, {self.node_id})
            accepts.append(accept)
        # The accepts leave before our own sync: the followers' fsyncs then run
        # alongside ours instead of after it. _check_chosen counts our vote at
        # once, so on a real disk a slot may be chosen on a follower's durable
        # vote and ours still in the writer's batch. Safe, because nobody
        # learns of that choice before ours is durable too: the host holds
        # every send made while a sync is owed (reference/runtime/host.py), so
        # the client's answer and the commit index riding a later Accept wait
        # for our fsync. A leader that crashes first has told nobody; the next
        # one may choose anew. (On the simulator, sync() is durable on return.)
        for accept in accepts:
            for peer in self._log_peers():
                ctx.send(peer, accept)
        self.sync(ctx)
        for slot, _ in slots:
            self._check_chosen(ctx, slot, pump=False)

    def _store_accepted(self, ctx: Context, accept: Accept) -> None:
        # The vote's disk record is the Accept itself (its ballot and batch,
        # with two ints more): the one object the leader sends and a follower
        # received, so the disk reuses its wire bytes (encode once, see
        # reference/codec.py). Older disks hold (ballot, batch): on_start reads both.
        slot, ballot, batch = accept.slot, accept.ballot, accept.batch
        if slot in self.logged_by_vote:
            # The slot's log record points at the vote about to be replaced:
            # it must hold the chosen value itself first.
            ctx.disk.put(_slot_key(KEY_LOG, slot), self.chosen[slot])
            self.logged_by_vote.discard(slot)
        self.accepted[slot] = (ballot, batch)
        ctx.disk.put(_slot_key(KEY_ACCEPTED, slot), accept)
        self.dirty = True

    # --8<-- [start:phase2-accept]
    def _on_accept(self, ctx: Context, src: NodeId, msg: Accept) -> None:
        learner = not self.is_voter() and msg.epoch == self.membership.epoch
        if msg.epoch < self.membership.epoch or (msg.ballot < self.promised and not learner):
            ctx.send(src, Accepted(msg.ballot, msg.slot, False, self.promised))
            return
        if self.role != FOLLOWER and msg.ballot != self.ballot:
            self._step_down(ctx, leader_hint=msg.ballot[1])
        self.leader_hint = msg.ballot[1]
        self.set_promised(ctx, msg.ballot, learner=learner)
        if msg.slot > self.commit_index:
            self._store_accepted(ctx, msg)
        # --8<-- [start:accept-sync]
        if "ack-before-sync" not in self.mutations:
            self.sync(ctx)  # fsync, THEN acknowledge
        # mutation: ack-before-sync -- the write waits for a later sync.
        ctx.send(src, Accepted(msg.ballot, msg.slot, True, self.promised))
        # --8<-- [end:accept-sync]
        self._arm_election(ctx)
        if self.cfg.learn_delay_ms is None:
            self._learn_from_leader(ctx, src, msg.ballot, msg.commit_index)
            return
        # Later (config.py says why). Chosen stays chosen, so learning late is
        # safe; only the latest leader's word is kept: a commit index only grows
        # under one ballot, and a newer ballot's supersedes (what it misses,
        # catch-up brings).
        if self.learn_pending is None:
            ctx.set_timer(self.cfg.learn_delay_ms, "learn")
        self.learn_pending = (src, msg.ballot, msg.commit_index)

    # --8<-- [end:phase2-accept]

    # --8<-- [start:commit]
    def _on_accepted(self, ctx: Context, src: NodeId, msg: Accepted) -> None:
        if not msg.ok:
            self._note_higher(ctx, src, msg.promised)
            return
        if self.role != LEADER or msg.ballot != self.ballot:
            return
        self.acked_since_beat[src] = max(self.acked_since_beat.get(src, 0), msg.slot)
        if msg.slot not in self.inflight:
            return
        self.inflight[msg.slot][1].add(src)
        self._check_chosen(ctx, msg.slot, pump=True)

    def _check_chosen(self, ctx: Context, slot: int, pump: bool) -> None:
        """A slot is chosen once a phase-2 quorum of data replicas accepted it."""
        batch, acks = self.inflight[slot]
        counted = set(self.membership.data)
        if "arbiter-accepts" in self.mutations and self.membership.arbiter is not None:
            counted.add(self.membership.arbiter)  # mutation: arbiter-accepts
        needed = self.membership.q2_size()
        if "minority-commit" in self.mutations:
            needed = max(1, needed - 1)  # mutation: minority-commit
        if len(acks & counted) < needed:
            return
        del self.inflight[slot]
        self._learn(ctx, slot, batch)
        if pump:
            self._pump(ctx)

    # --8<-- [end:commit]

    # -- learning, applying, compaction ------------------------------------------------

    def _learn(self, ctx: Context, slot: int, batch: Batch) -> None:
        """Record that `batch` is chosen at `slot`; apply every slot now contiguous."""
        if slot <= self.commit_index or slot in self.chosen:
            assert slot <= self.snapshot_slot or self.chosen.get(slot, batch) == batch, slot
            return
        self.chosen[slot] = batch
        vote = self.accepted.get(slot)
        if vote is not None and vote[1] is batch:  # the common case: we voted for it
            ctx.disk.put(_slot_key(KEY_LOG, slot), ChosenVote(vote[0]))
            self.logged_by_vote.add(slot)
        else:
            ctx.disk.put(_slot_key(KEY_LOG, slot), batch)
        self.dirty = True
        ctx.trace("paxos.learn", slot=slot, batch=batch)
        self._apply_chosen(ctx)

    def _apply_chosen(self, ctx: Context) -> None:
        while self.commit_index + 1 in self.chosen:
            slot = self.commit_index + 1
            for request_id, result in self.state.apply_batch(slot, self.chosen[slot]):
                client = self.waiting.pop(request_id, None)
                if client is not None:
                    ctx.send(client, ProposeResult(request_id, True, result, self.node_id))
        if self.commit_index >= self._next_compaction_slot():
            self._compact(ctx)

    # --8<-- [start:compaction-phase]
    def _next_compaction_slot(self) -> int:
        """The first slot after the last snapshot at this replica's phase.

        Every `snapshot_every_slots` slots, shifted by the replica's rank: a
        compaction pauses a replica for a few milliseconds, and replicas that
        all compacted at the same slot would pause together, the leader and
        the quorum it waits for alike.
        """
        every = self.cfg.snapshot_every_slots
        phase = self.compaction_phase  # rank * every // replicas
        return self.snapshot_slot + every - (self.snapshot_slot - phase) % every

    # --8<-- [end:compaction-phase]

    def _compact(self, ctx: Context) -> None:
        """Snapshot the applied state, make it durable, then drop the log it covers."""
        snapshot = self.state.snapshot()
        self._store_snapshot(ctx, snapshot)
        self.snapshot_slot = snapshot[0]
        self._truncate_log(ctx, self.snapshot_slot)
        ctx.trace("paxos.snapshot", slot=self.snapshot_slot)

    def _store_snapshot(self, ctx: Context, snapshot: tuple[int, Any]) -> None:
        """Write `snapshot` durably: its new chunks, then the record naming them."""
        ctx.disk.put(KEY_SNAPSHOT, self.chunks.store(ctx.disk, snapshot))
        self.dirty = True
        self.sync(ctx)
        self.chunks.forget_unreferenced(ctx.disk)  # synced with the next write

    def _stored_snapshot(self, ctx: Context) -> tuple[int, Any] | None:
        stored = ctx.disk.get(KEY_SNAPSHOT)
        return None if stored is None else self.chunks.load(ctx.disk, stored)

    def _truncate_log(self, ctx: Context, upto: int) -> None:
        for slot in [s for s in self.accepted if s <= upto]:
            del self.accepted[slot]
            ctx.disk.delete(_slot_key(KEY_ACCEPTED, slot))
        for slot in [s for s in self.chosen if s <= upto]:
            del self.chosen[slot]
            self.logged_by_vote.discard(slot)
            ctx.disk.delete(_slot_key(KEY_LOG, slot))
        self.dirty = True

    def _install_snapshot(self, ctx: Context, snapshot: tuple[int, Any]) -> None:
        slot = snapshot[0]
        assert slot > self.commit_index, (slot, self.commit_index)
        self.state = ReplicatedState(self.machine_factory(), self.cfg.dedup_max_requests)
        self.state.restore(snapshot)
        self._store_snapshot(ctx, snapshot)
        self.snapshot_slot = slot
        self._truncate_log(ctx, slot)
        ctx.trace("paxos.install_snapshot", slot=slot)
        self._apply_chosen(ctx)

    def _learn_from_leader(self, ctx: Context, leader: NodeId, ballot: Ballot, upto: int) -> None:
        """Slots <= `upto` are chosen; the ones we accepted at `ballot` hold the value."""
        if "truncate-before-apply" in self.mutations:
            # mutation: truncate-before-apply -- drop the log before applying it.
            self._truncate_log(ctx, min(upto, max(self.accepted, default=0)))
        for slot in range(self.commit_index + 1, upto + 1):
            vote = self.accepted.get(slot)
            if slot in self.chosen:
                continue
            if vote is None or vote[0] != ballot:
                break
            self._learn(ctx, slot, vote[1])
        if self.commit_index < upto:
            self._ask_catch_up(ctx, leader)

    def _ask_catch_up(self, ctx: Context, leader: NodeId) -> None:
        now_ms = ctx.now_ms()
        if now_ms - self.catchup_asked_ms < self.cfg.heartbeat_interval_ms:
            return  # one request per heartbeat interval: bounded
        self.catchup_asked_ms = now_ms
        ctx.send(leader, CatchUpRequest(self.commit_index + 1))

    def _on_catch_up_request(self, ctx: Context, src: NodeId, msg: CatchUpRequest) -> None:
        snapshot = self._stored_snapshot(ctx) if msg.from_slot <= self.snapshot_slot else None
        start = max(msg.from_slot, self.snapshot_slot + 1)
        end = min(self.commit_index, start + self.cfg.catchup_max_entries - 1)
        entries: list[tuple[int, Batch]] = []
        for slot in range(start, end + 1):
            if slot not in self.chosen:
                break
            entries.append((slot, self.chosen[slot]))
        ctx.send(src, CatchUpReply(tuple(entries), snapshot))

    def _on_catch_up_reply(self, ctx: Context, src: NodeId, msg: CatchUpReply) -> None:
        self.catchup_asked_ms = -1e18
        if msg.snapshot is not None and msg.snapshot[0] > self.commit_index:
            self._install_snapshot(ctx, msg.snapshot)
        for slot, batch in msg.entries:
            self._learn(ctx, slot, batch)
        self.sync(ctx)

    # -- heartbeats, leases ----------------------------------------------------------

    def _on_heartbeat_timer(self, ctx: Context) -> None:
        if self.role != LEADER:
            return
        now_ms = ctx.now_ms()
        self.round += 1
        self.rounds[self.round] = (now_ms, {self.node_id})
        self.rounds.pop(self.round - self.cfg.rounds_kept, None)
        lease_until_ms = now_ms + self.cfg.lease_ms
        self.grant_lease(self.ballot, lease_until_ms)
        beat = Heartbeat(
            self.ballot, self.membership, self.commit_index, self.round, lease_until_ms
        )
        for peer in sorted(set(self.membership.voters()) | set(self.cfg.replicas)):
            if peer != self.node_id:
                ctx.send(peer, beat)
        # The network may have lost an Accept or its answer: send each slot
        # still in flight again to whoever has not acknowledged it (bounded by
        # the window), or one lost message would stall the log for good. But a
        # peer that acknowledged a *later* slot since the last round has it
        # coming, merely slow: links are FIFO, so its answer to an earlier slot
        # is lost only if a later one arrived first. Resending to it would only
        # queue duplicates behind the originals (each costing it a sync), and
        # under load those would feed the very backlog that delays its acks.
        for slot in sorted(self.inflight):
            batch, acks = self.inflight[slot]
            accept = Accept(self.ballot, self.membership.epoch, slot, batch, self.commit_index)
            for peer in self._log_peers():
                latest = self.acked_since_beat.get(peer)
                if peer not in acks and (latest is None or latest > slot):
                    ctx.send(peer, accept)
        self.acked_since_beat = {}
        self._check_membership(ctx)
        ctx.set_timer(self.cfg.heartbeat_interval_ms, "heartbeat")

    def _on_heartbeat(self, ctx: Context, src: NodeId, msg: Heartbeat) -> None:
        if msg.membership.epoch > self.membership.epoch:
            self.adopt_membership(ctx, msg.membership)
        learner = not self.is_voter() and msg.membership.epoch == self.membership.epoch
        stale = msg.membership.epoch < self.membership.epoch
        if stale or (msg.ballot < self.promised and not learner):
            self.sync(ctx)
            ctx.send(src, HeartbeatAck(msg.ballot, msg.round, False, self.promised, 0))
            return
        if self.role != FOLLOWER and msg.ballot != self.ballot:
            self._step_down(ctx, leader_hint=msg.ballot[1])
        if learner and msg.ballot != self.promised:
            self.set_promised(ctx, msg.ballot, learner=True)
        self.leader_hint = msg.ballot[1]
        self.grant_lease(msg.ballot, msg.lease_until_ms)
        self._arm_election(ctx)
        self._learn_from_leader(ctx, src, msg.ballot, msg.commit_index)
        self.sync(ctx)  # what we report as learned is on disk
        ctx.send(src, HeartbeatAck(msg.ballot, msg.round, True, self.promised, self.commit_index))

    def _on_heartbeat_ack(self, ctx: Context, src: NodeId, msg: HeartbeatAck) -> None:
        if not msg.ok:
            self._note_higher(ctx, src, msg.promised)
            return
        if self.role != LEADER or msg.ballot != self.ballot or msg.round not in self.rounds:
            return
        self.last_ack_ms[src] = ctx.now_ms()
        self.peer_commit[src] = max(self.peer_commit.get(src, 0), msg.commit_index)
        sent_ms, acks = self.rounds[msg.round]
        acks.add(src)
        if len(acks & set(self.membership.voters())) >= self.membership.q1_size():
            # --8<-- [start:lease-skew]
            # Counted from when the round was SENT, shortened by the skew bound.
            lease_ms = self.cfg.lease_ms - self.cfg.max_clock_skew_ms
            if "lease-no-skew" in self.mutations:
                lease_ms = self.cfg.lease_ms  # mutation: lease-no-skew
            # --8<-- [end:lease-skew]
            self.read_lease_until_ms = max(self.read_lease_until_ms, sent_ms + lease_ms)

    # -- membership: degrade and upgrade (2 replicas + arbiter) -------------------------

    # --8<-- [start:degrade]
    def _check_membership(self, ctx: Context) -> None:
        """Leader, every heartbeat: degrade after silence, upgrade after catch-up."""
        m = self.membership
        if m.arbiter is None:
            return
        if self.changing is not None:  # retry until the arbiter answers
            ctx.send(m.arbiter, ChangeMembership(self.ballot, m.epoch, self.changing))
            return
        now_ms = ctx.now_ms()
        timeout_ms = self.cfg.arbitration_timeout_ms
        silent = {
            r
            for r in m.data
            if r != self.node_id and now_ms - self.last_ack_ms.get(r, now_ms) >= timeout_ms
        }
        fresh_ms = 2 * self.cfg.heartbeat_interval_ms
        back = {
            r
            for r in self.cfg.replicas
            if r not in m.data
            and now_ms - self.last_ack_ms.get(r, -1e18) < fresh_ms
            and self.peer_commit.get(r, -1) >= self.next_slot - 1
            and not self.inflight
        }
        if silent:  # degrade: the survivors go on with the arbiter's blessing
            data = tuple(r for r in m.data if r not in silent)
        elif back:  # upgrade: a returned replica holds every slot; propose nothing meanwhile
            data = tuple(r for r in self.cfg.replicas if r in m.data or r in back)
        else:
            return
        proposed = Membership(m.epoch + 1, data, m.arbiter)
        ctx.trace("paxos.change_membership", epoch=proposed.epoch, data=list(data))
        if silent and "degrade-without-arbiter" in self.mutations:
            # mutation: degrade-without-arbiter -- no vote asked, none awaited.
            self._on_membership_ack(ctx, m.arbiter, MembershipAck(proposed.epoch, True, proposed))
            return
        self.changing = proposed
        ctx.send(m.arbiter, ChangeMembership(self.ballot, m.epoch, proposed))

    def _on_membership_ack(self, ctx: Context, src: NodeId, msg: MembershipAck) -> None:
        # Whatever the arbiter recorded is the group's membership now, even if
        # we stopped leading meanwhile: the arbiter's vote made it so.
        if self.adopt_membership(ctx, msg.membership):
            self.sync(ctx)
            kind = (
                "paxos.degrade"
                if len(msg.membership.data) < len(self.cfg.replicas)
                else ("paxos.upgrade")
            )
            ctx.trace(kind, epoch=msg.membership.epoch, data=list(msg.membership.data))
        if self.changing is not None and (
            not msg.ok or self.changing.epoch <= self.membership.epoch
        ):
            self.changing = None  # done, or refused (then nothing changed: retry later)
        if self.role == LEADER:
            for slot in sorted(self.inflight):  # a smaller quorum may now suffice
                if slot in self.inflight:
                    self._check_chosen(ctx, slot, pump=False)
            self._pump(ctx)

    # --8<-- [end:degrade]

    # -- clients -----------------------------------------------------------------------

    def _on_propose(self, ctx: Context, src: NodeId, msg: Propose) -> None:
        if msg.request_id in self.state.results:  # a retry of an applied request
            result = self.state.results[msg.request_id]
            ctx.send(src, ProposeResult(msg.request_id, True, result, self.node_id))
            return
        if self.role != LEADER:
            ctx.send(
                src, ProposeResult(msg.request_id, False, None, self.leader_hint, "not-leader")
            )
            return
        if msg.request_id in self.waiting:  # already queued or in flight
            self.waiting[msg.request_id] = src
            return
        if len(self.pending) >= self.cfg.pending_max_commands:
            ctx.send(src, ProposeResult(msg.request_id, False, None, self.node_id, "overloaded"))
            return
        self.waiting[msg.request_id] = src
        self.pending.append((msg.request_id, msg.command))
        # --8<-- [start:gather]
        delay_ms = self.cfg.propose_delay_ms
        if delay_ms is None or len(self.inflight) >= self.cfg.window_slots:
            self._pump(ctx)  # (with the window full, a no-op: a commit pumps)
        elif not self.pump_armed:
            self.pump_armed = True  # requests arriving meanwhile join this one's slot
            ctx.set_timer(delay_ms, "pump")
        # --8<-- [end:gather]

    # --8<-- [start:lease-read]
    def _on_read(self, ctx: Context, src: NodeId, msg: Read) -> None:
        serving = (
            self.role == LEADER
            and self.commit_index >= self.recovered_upto  # every earlier commit is applied
            and ctx.now_ms() < self.read_lease_until_ms  # no other leader can exist yet
        )
        if not serving:
            ctx.send(src, ReadResult(msg.request_id, False, None, 0, self.leader_hint, "no-lease"))
            return
        value = self.state.machine.read(msg.query)
        ctx.send(src, ReadResult(msg.request_id, True, value, self.commit_index, self.node_id))

    # --8<-- [end:lease-read]

    # -- explorer support -----------------------------------------------------------------

    def clone(self) -> Replica:
        """A deep copy, made quickly (the explorer copies a node per branch)."""
        other = object.__new__(Replica)
        other.__dict__ = self.__dict__.copy()
        other.state = self.state.clone()
        other.accepted, other.chosen = dict(self.accepted), dict(self.chosen)
        other.logged_by_vote = set(self.logged_by_vote)
        other.chunks = self.chunks.clone()
        other.promises = dict(self.promises)
        other.inflight = {s: (b, set(a)) for s, (b, a) in self.inflight.items()}
        other.pending, other.waiting = deque(self.pending), dict(self.waiting)
        other.rounds = {r: (t, set(a)) for r, (t, a) in self.rounds.items()}
        other.last_ack_ms, other.peer_commit = dict(self.last_ack_ms), dict(self.peer_commit)
        other.acked_since_beat = dict(self.acked_since_beat)
        return other

    def state_key(self) -> tuple[object, ...]:
        """Every volatile field that matters, hashable (the explorer dedups on it)."""
        return (
            self.voter_key(),
            self.role,
            self.ballot,
            self.commit_index,
            self.state.machine.snapshot(),
            tuple(sorted(self.accepted.items())),
            tuple(sorted(self.chosen.items())),
            tuple(sorted(self.logged_by_vote)),
            self.snapshot_slot,
            tuple(sorted(self.promises)),
            self.next_slot,
            tuple(sorted((s, b, tuple(sorted(a))) for s, (b, a) in self.inflight.items())),
            tuple(self.pending),
            self.round,
            tuple(sorted((r, t, tuple(sorted(a))) for r, (t, a) in self.rounds.items())),
            self.read_lease_until_ms,
            self.changing,
            self.catchup_asked_ms,
            tuple(sorted(self.peer_commit.items())),
            tuple(sorted(self.acked_since_beat.items())),
            self.learn_pending,
        )


_HANDLERS: dict[type, Callable[[Replica, Context, NodeId, Any], None]] = {
    Prepare: Replica._on_prepare,
    Promise: Replica._on_promise,
    Accept: Replica._on_accept,
    Accepted: Replica._on_accepted,
    Heartbeat: Replica._on_heartbeat,
    HeartbeatAck: Replica._on_heartbeat_ack,
    CatchUpRequest: Replica._on_catch_up_request,
    CatchUpReply: Replica._on_catch_up_reply,
    MembershipAck: Replica._on_membership_ack,
    Propose: Replica._on_propose,
    Read: Replica._on_read,
}
