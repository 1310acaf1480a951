"""Consumer groups' live members, as the broker's leader tells them from heartbeats.

Soft state of one leader, as in RocketMQ's broker (`ConsumerManager`): a
member is live while its heartbeats come, and a member silent for
`timeout_ms` is dropped, so the group's next member list hands its queues
to the others. What every leader must agree on is not here but in the
replicated state (`machine.BrokerMachine.locks`): who holds which queue's
lock. That is also how a leader elected after a member died knows of it:
every lock holder of the replicated state owes *this* leader a heartbeat,
counted from the first heartbeat of its group the leader answers. A holder
still silent after `timeout_ms` is released like a member that stopped
beating, and its queues change hands in seconds, not when their locks' 60 s
run out. (RocketMQ's broker drops a consumer whose channel closes, or after
120 s without a heartbeat, and leaves its queue locks to expire.)

Sans-IO: `heartbeat` says whose locks to release; the broker proposes the
releases through the log (`LockQueues` with `unlock`), so every replica
applies them, and a lock with an open claim is kept there
(`BrokerMachine._lock`).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

from reference.node import NodeId

__all__ = ["ConsumerMembers"]


# --8<-- [start:membership]
@dataclass
class ConsumerMembers:
    """Who of each consumer group this leader heard from, and who it waits for."""

    timeout_ms: float
    # group -> member -> when its last heartbeat came (this leader's clock)
    seen: dict[str, dict[NodeId, float]] = field(default_factory=dict)
    # (group, member) -> since when this leader waits for a lock holder it has not
    # heard from (inf: released already, or dropped: not counted again)
    owed: dict[tuple[str, NodeId], float] = field(default_factory=dict)
    term: Hashable = None  # the leader's ballot these were learned under

    def __post_init__(self) -> None:
        assert self.timeout_ms > 0, self.timeout_ms

    def heartbeat(
        self,
        term: Hashable,
        group: str,
        member: NodeId,
        now_ms: float,
        holders: Iterable[NodeId],
    ) -> list[NodeId]:
        """Record `member`'s heartbeat at `now_ms`; `holders` are the group's lock
        holders in the replicated state. Returns the members whose locks to release
        now: the live ones silent too long, and the holders never heard at all."""
        if term != self.term:
            # This node leads again after another did: the members it heard from
            # in its last term get a heartbeat's grace from now, as the holders do
            # (their old times would drop a live member before its beat arrives).
            self.seen = {g: dict.fromkeys(ms, now_ms) for g, ms in self.seen.items()}
            self.term, self.owed = term, {}
        live = self.seen.setdefault(group, {})
        live[member] = now_ms
        self.owed.pop((group, member), None)
        release: list[NodeId] = []
        for other, seen_ms in list(live.items()):
            if now_ms - seen_ms > self.timeout_ms:
                del live[other]  # silent for too long: its queues go to the others
                self.owed[(group, other)] = math.inf
                release.append(other)
        for holder in sorted(set(holders) - live.keys()):
            since_ms = self.owed.setdefault((group, holder), now_ms)
            if now_ms - since_ms > self.timeout_ms:
                self.owed[(group, holder)] = math.inf  # released once
                release.append(holder)
        return release

    def live(self, group: str) -> tuple[NodeId, ...]:
        """The group's members this leader heard from lately, sorted."""
        return tuple(sorted(self.seen.get(group, {})))


# --8<-- [end:membership]
