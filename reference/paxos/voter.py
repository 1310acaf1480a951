"""What every voter of a group shares: the durable promise, the membership, the lease.

Both full replicas and the arbiter are voters: they answer phase 1, grant
leader leases and hold the current membership. This module keeps the rules
they must agree on in one place.

Lease rule (the follower's half). A heartbeat carries `lease_until_ms`, the
leader's clock when it sent the heartbeat plus `lease_ms`. A voter that
acknowledges it promises: no vote for any other ballot until its *own* clock
reads `lease_until_ms + max_clock_skew_ms`. Every clock is within the skew
bound S of true time, so by then true time has passed the instant the leader
sent the heartbeat plus `lease_ms` (the leader's half, in replica.py, stops
serving reads S earlier on its own clock). A restarted voter has forgotten its
promises, so it refuses to vote at all for `lease_ms + 2*S` after it boots.
"""

from __future__ import annotations

from reference.node import Context, Node, NodeId
from reference.paxos.config import PaxosConfig
from reference.paxos.messages import BALLOT_ZERO, Ballot, Membership

KEY_PROMISED = "paxos/promised"
KEY_MEMBERSHIP = "paxos/membership"


class Voter(Node):
    """Shared state and rules of replicas and arbiters (see the module docstring)."""

    def __init__(self, node_id: NodeId, cfg: PaxosConfig) -> None:
        assert node_id in cfg.membership.voters(), f"{node_id} is not a voter of the group"
        self.node_id = node_id
        self.cfg = cfg
        self.mutations = cfg.mutations
        self.membership = cfg.membership
        self.promised: Ballot = BALLOT_ZERO
        self.lease_holder: Ballot | None = None
        self.lease_until_ms = 0.0  # in the holder's clock
        self.votes_blocked_until_ms = 0.0  # in our clock (quiet period after a restart)
        self.dirty = False  # unsynced writes on the disk

    def recover_voter(self, ctx: Context) -> None:
        self.promised = ctx.disk.get(KEY_PROMISED, BALLOT_ZERO)
        self.membership = ctx.disk.get(KEY_MEMBERSHIP, self.cfg.membership)
        s = self.cfg.max_clock_skew_ms
        self.votes_blocked_until_ms = ctx.now_ms() + self.cfg.lease_ms + 2 * s

    # --8<-- [start:lease-grant]
    def lease_blocks(self, ctx: Context, ballot: Ballot) -> bool:
        """True while a lease we granted (or our restart quiet period) forbids
        a vote for `ballot`."""
        now_ms = ctx.now_ms()
        if now_ms < self.votes_blocked_until_ms:
            return True
        if self.lease_holder is None or self.lease_holder == ballot:
            return False
        return now_ms < self.lease_until_ms + self.cfg.max_clock_skew_ms

    def grant_lease(self, ballot: Ballot, lease_until_ms: float) -> None:
        if self.lease_holder != ballot:
            self.lease_holder, self.lease_until_ms = ballot, lease_until_ms
        else:
            self.lease_until_ms = max(self.lease_until_ms, lease_until_ms)

    # --8<-- [end:lease-grant]

    def vote_blocked_remaining_ms(self, ctx: Context, ballot: Ballot) -> float:
        """How long (our clock) until `lease_blocks(ballot)` turns False."""
        until = self.votes_blocked_until_ms
        if self.lease_holder is not None and self.lease_holder != ballot:
            until = max(until, self.lease_until_ms + self.cfg.max_clock_skew_ms)
        return max(0.0, until - ctx.now_ms())

    def set_promised(
        self, ctx: Context, ballot: Ballot, durable: bool = True, learner: bool = False
    ) -> None:
        # A promise only ever grows, except on a replica the membership removed
        # (a learner): its old promises belong to an epoch that can no longer
        # choose anything, so it follows the current leader's ballot.
        assert learner or ballot >= self.promised, f"promise going back: {ballot} < {self.promised}"
        if ballot == self.promised:
            return
        self.promised = ballot
        if durable:
            ctx.disk.put(KEY_PROMISED, ballot)
            self.dirty = True

    def is_voter(self) -> bool:
        return self.node_id in self.membership.voters()

    def adopt_membership(self, ctx: Context, membership: Membership) -> bool:
        """Move to a newer membership (persisted); True if it changed."""
        if membership.epoch <= self.membership.epoch:
            return False
        self.membership = membership
        ctx.disk.put(KEY_MEMBERSHIP, membership)
        self.dirty = True
        ctx.trace("paxos.membership", epoch=membership.epoch, data=list(membership.data))
        return True

    def sync(self, ctx: Context) -> None:
        if self.dirty:
            ctx.disk.sync()
            self.dirty = False

    def voter_key(self) -> tuple[object, ...]:
        """Volatile voter state, for the explorer's state hashing."""
        return (
            self.membership,
            self.promised,
            self.lease_holder,
            self.lease_until_ms,
            self.votes_blocked_until_ms,
            self.dirty,
        )
