"""Following a Paxos group's leader from the outside: whom to send the next request to.

Every client of a group (the ledger service's `LedgerClient`, the bench's
`LoadClient`, the ledger front) sends to the replica it believes leads, and
moves that belief on what the replicas say:

- an answer (`ok`) from a replica: it leads;
- a refusal ("not the leader", no lease yet, overloaded) with a hint naming
  another member: follow the hint;
- a refusal without a useful hint, from the replica we believed in: try the
  next replica, round the ring (a refusal from another one is stale news:
  the belief has moved already);
- silence past a timeout: the believed leader may be down, try the next one.

The belief starts at the first replica: groups are built so that it
campaigns first.
"""

from __future__ import annotations

from collections.abc import Sequence

from reference.node import NodeId

__all__ = ["LeaderFollower"]


# --8<-- [start:leader-follower]
class LeaderFollower:
    """Whom one client believes leads one Paxos group."""

    def __init__(self, replicas: Sequence[NodeId]) -> None:
        assert replicas, "a group has at least one replica"
        self.replicas: tuple[NodeId, ...] = tuple(replicas)
        self.leader: NodeId = self.replicas[0]

    def answered(self, src: NodeId) -> None:
        """`src` committed or served a request: it leads."""
        if src in self.replicas:
            self.leader = src

    def refused(self, src: NodeId, hint: NodeId | None) -> None:
        """`src` would not serve a request; `hint` is whom it believes leads."""
        if hint in self.replicas and hint != src:
            self.leader = hint
        elif self.leader == src:
            self.leader = self._after(src)

    def silent(self) -> None:
        """No answer in time from the believed leader: try the next replica."""
        self.leader = self._after(self.leader)

    def _after(self, replica: NodeId) -> NodeId:
        i = self.replicas.index(replica) if replica in self.replicas else -1
        return self.replicas[(i + 1) % len(self.replicas)]


# --8<-- [end:leader-follower]
