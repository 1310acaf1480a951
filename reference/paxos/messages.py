"""The messages of the Paxos ledger group, between replicas, the arbiter and clients.

Every message is a registered, frozen dataclass (`reference.codec.message`),
so the same replica runs in the simulator and as a real process. Ballots are
`(round, node_id)` tuples, compared lexicographically: a higher round wins,
and the node id breaks ties, so two candidates never share a ballot.

A log slot holds a *batch*: a tuple of `(request_id, command)` pairs. The
empty batch is a no-op, used to fill a gap the new leader found in the log.
"""

from __future__ import annotations

from typing import Any

from reference.codec import Message, message
from reference.node import NodeId

Ballot = tuple[int, str]
"""(round, node id); compared lexicographically."""

BALLOT_ZERO: Ballot = (0, "")

Batch = tuple[tuple[str, Any], ...]
"""The value of one slot: (request_id, command) pairs, in order. () is a no-op."""

NOOP: Batch = ()


@message(name="paxos.Membership")
class Membership(Message):
    """Who votes and who stores data, in one configuration `epoch`.

    `data` are the full replicas: they accept log entries and keep the state.
    `arbiter`, when present, votes in elections (phase 1), grants leases and
    votes on membership changes, but never accepts a log entry.
    """

    epoch: int
    data: tuple[NodeId, ...]
    arbiter: NodeId | None = None

    def voters(self) -> tuple[NodeId, ...]:
        return self.data if self.arbiter is None else (*self.data, self.arbiter)

    def q1_size(self) -> int:
        """Phase-1 (election, lease) quorum: a majority of the voters."""
        return len(self.voters()) // 2 + 1

    def q2_size(self) -> int:
        """Phase-2 (accept) quorum, counted among data replicas only.

        Flexible Paxos: any phase-1 quorum must meet any phase-2 quorum, so
        |Q1| + |Q2| > |voters|. The arbiter never accepts, so Q2 is drawn from
        the data replicas: 2 of 3 full replicas; both replicas of a 2+arbiter
        group; the lone survivor of a degraded group.
        """
        return len(self.voters()) - self.q1_size() + 1


# -- phase 1 -----------------------------------------------------------------


@message(name="paxos.ChosenVote")
class ChosenVote(Message):
    """A log record on disk, not a message: "the value chosen at this slot is
    the one this replica accepted at `ballot`" (its vote record holds it).

    A follower learns most slots it voted for, so writing the batch again as
    the log record would store, encode and fsync every batch twice.
    """

    ballot: Ballot


@message(name="paxos.Prepare")
class Prepare(Message):
    ballot: Ballot
    membership: Membership
    commit_index: int  # the candidate knows every slot <= this; report the rest


@message(name="paxos.Promise")
class Promise(Message):
    ballot: Ballot  # the ballot this answers
    ok: bool
    promised: Ballot  # the acceptor's promise after handling the Prepare
    membership: Membership
    # Slots above the candidate's commit index: (slot, accepted ballot, batch).
    accepted: tuple[tuple[int, Ballot, Batch], ...] = ()
    # Slots this acceptor knows are chosen, above the candidate's commit index.
    chosen: tuple[tuple[int, Batch], ...] = ()
    snapshot: tuple[int, Any] | None = None  # (last slot, state) when it is ahead


# -- phase 2 -----------------------------------------------------------------


@message(name="paxos.Accept")
class Accept(Message):
    ballot: Ballot
    epoch: int
    slot: int
    batch: Batch
    commit_index: int  # piggybacked: every slot <= this is chosen


@message(name="paxos.Accepted")
class Accepted(Message):
    ballot: Ballot
    slot: int
    ok: bool
    promised: Ballot


# -- heartbeats, leases, learning --------------------------------------------


@message(name="paxos.Heartbeat")
class Heartbeat(Message):
    ballot: Ballot
    membership: Membership
    commit_index: int
    round: int
    lease_until_ms: float  # in the leader's clock: when it sent this, plus lease_ms


@message(name="paxos.HeartbeatAck")
class HeartbeatAck(Message):
    ballot: Ballot
    round: int
    ok: bool
    promised: Ballot
    commit_index: int  # what the sender has learned and synced


@message(name="paxos.CatchUpRequest")
class CatchUpRequest(Message):
    from_slot: int


@message(name="paxos.CatchUpReply")
class CatchUpReply(Message):
    entries: tuple[tuple[int, Batch], ...]  # chosen slots, ascending, contiguous
    snapshot: tuple[int, Any] | None  # (last slot, state) when from_slot is compacted


# -- membership changes (the arbiter votes on them) ---------------------------


@message(name="paxos.ChangeMembership")
class ChangeMembership(Message):
    ballot: Ballot  # the leader asking
    current_epoch: int
    proposed: Membership


@message(name="paxos.MembershipAck")
class MembershipAck(Message):
    epoch: int  # the proposed epoch this answers
    ok: bool
    membership: Membership  # the arbiter's membership after handling it


# -- clients -------------------------------------------------------------------


@message(name="paxos.Propose")
class Propose(Message):
    request_id: str
    command: Any


@message(name="paxos.ProposeResult")
class ProposeResult(Message):
    request_id: str
    ok: bool
    result: Any = None
    leader_hint: NodeId | None = None  # where to retry when ok is False
    error: str = ""


@message(name="paxos.Read")
class Read(Message):
    request_id: str
    query: Any


@message(name="paxos.ReadResult")
class ReadResult(Message):
    request_id: str
    ok: bool
    value: Any = None
    applied_index: int = 0  # the read reflects every slot <= this
    leader_hint: NodeId | None = None
    error: str = ""
