"""The knobs of one Paxos group, with the invariants between them asserted."""

from __future__ import annotations

from dataclasses import dataclass, field

from reference.node import NodeId
from reference.paxos.messages import Membership
from reference.paxos.mutations import check_mutations


@dataclass(frozen=True)
class PaxosConfig:
    """Static configuration shared by every member of one group.

    Clock model: every node's clock is within `max_clock_skew_ms` of true
    time (the simulator's per-node `skew_ms`), so two clocks differ by at most
    twice the bound. Leases are safe exactly while that holds.
    """

    membership: Membership  # the initial one; later ones live on disk
    election_timeout_ms: float = 150.0
    election_jitter_ms: float = 0.0  # extra random delay (ctx.random); 0: deterministic
    heartbeat_interval_ms: float = 30.0
    lease_ms: float = 100.0
    max_clock_skew_ms: float = 10.0
    arbitration_timeout_ms: float = 300.0  # silence before a 2+arbiter group degrades
    window_slots: int = 8  # pipelining: slots in flight at once
    batch_max_commands: int = 16  # batching: commands per slot
    # None: a request with room in the window is proposed at once. A delay
    # (0 on a real runtime: the end of the current turn of its loop) lets
    # every request that arrived together share one slot, instead of the
    # first taking a slot of its own and the rest waiting for the next.
    propose_delay_ms: float | None = None
    # None: a follower learns what an Accept's commit index says is chosen (and
    # applies it) in the handler that accepts. A delay (0 on a real runtime:
    # the loop's next turn) applies it after the handler, once the disk's
    # writer thread has taken the accept to its fsync: the apply then runs
    # alongside that fsync instead of ahead of it (the writer needs the
    # interpreter's lock to start, and a handler holds it to its end).
    learn_delay_ms: float | None = None
    pending_max_commands: int = 4096  # bounded queue at the leader
    snapshot_every_slots: int = 64  # compact the log after this many applied slots
    catchup_max_entries: int = 64
    dedup_max_requests: int = 100_000
    rounds_kept: int = 8  # heartbeat rounds remembered for late acks
    mutations: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        m = self.membership
        assert m.data and len(set(m.data)) == len(m.data), m
        assert m.arbiter is None or m.arbiter not in m.data, m
        assert self.max_clock_skew_ms >= 0
        # A lease shorter than the clock uncertainty protects nothing.
        assert self.lease_ms > 2 * self.max_clock_skew_ms, "lease_ms must exceed 2*skew bound"
        # The leader must renew its lease before it runs out.
        assert self.heartbeat_interval_ms < self.lease_ms - 2 * self.max_clock_skew_ms
        # Followers must not campaign while the lease they granted still runs.
        assert self.election_timeout_ms > self.lease_ms
        assert self.window_slots >= 1 and self.batch_max_commands >= 1
        assert self.propose_delay_ms is None or self.propose_delay_ms >= 0
        assert self.learn_delay_ms is None or self.learn_delay_ms >= 0
        assert self.snapshot_every_slots >= 1 and self.catchup_max_entries >= 1
        check_mutations(self.mutations)

    @property
    def replicas(self) -> tuple[NodeId, ...]:
        """Every full replica the group was built with (degraded or not)."""
        return self.membership.data
