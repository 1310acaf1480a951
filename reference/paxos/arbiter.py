"""The arbiter: a voter that stores no data (OceanBase's arbitration service).

A group of two full replicas cannot elect a leader after losing one of them
(one vote of two is no majority), and three full copies of a ledger cost a
third more disks than two. The arbiter is the cheap third vote: it answers
phase 1 (with no log to report), grants leader leases like any voter, and
votes on membership changes, but it never accepts a log entry, so it holds
nothing to read or to lose. Its whole durable state is one promise and one
membership.

Because it stores nothing, the arbiter may not help commit anything. In the
normal membership a commit needs both full replicas (q2_size is 2), so each
of them alone has every committed slot, and an election won with the
arbiter's vote and one replica's promise loses nothing. The arbiter's other
job is to approve the degraded membership when one replica is gone (see
replica.py for what a degraded group survives): the epoch it records is the
fence that stops any leader of the old membership.
"""

from __future__ import annotations

import copy
from collections.abc import Hashable

from reference.codec import Message
from reference.node import Context, NodeId, UnhandledMessage
from reference.paxos.messages import (
    Accept,
    Accepted,
    ChangeMembership,
    Heartbeat,
    HeartbeatAck,
    MembershipAck,
    Prepare,
    Promise,
)
from reference.paxos.voter import Voter


class Arbiter(Voter):
    """Votes in elections and membership changes; never accepts log entries."""

    def on_start(self, ctx: Context) -> None:
        assert self.node_id == self.cfg.membership.arbiter, "the arbiter must be the group's"
        self.recover_voter(ctx)

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        raise TypeError(f"Arbiter armed no timer {tag!r}")

    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        if isinstance(msg, Prepare):
            self._on_prepare(ctx, src, msg)
        elif isinstance(msg, Heartbeat):
            self._on_heartbeat(ctx, src, msg)
        elif isinstance(msg, ChangeMembership):
            self._on_change(ctx, src, msg)
        elif isinstance(msg, Accept):
            self._on_accept(ctx, src, msg)
        else:
            raise UnhandledMessage(self, msg)

    # --8<-- [start:arbiter-vote]
    def _on_prepare(self, ctx: Context, src: NodeId, msg: Prepare) -> None:
        if msg.membership.epoch > self.membership.epoch:
            self.adopt_membership(ctx, msg.membership)
        refuse = (
            msg.membership.epoch < self.membership.epoch  # a leader of an old membership
            or msg.ballot[1] not in self.membership.data  # only full replicas may lead
            or msg.ballot < self.promised
            or self.lease_blocks(ctx, msg.ballot)
        )
        if not refuse:
            self.set_promised(ctx, msg.ballot)
        self.sync(ctx)  # the promise is on disk before the candidate hears of it
        # No log to report: the arbiter accepted nothing, ever.
        ctx.send(src, Promise(msg.ballot, not refuse, self.promised, self.membership))

    def _on_change(self, ctx: Context, src: NodeId, msg: ChangeMembership) -> None:
        """Approve a membership change asked by the current leader, exactly once."""
        proposed = msg.proposed
        already = self.membership == proposed
        approve = already or (
            msg.current_epoch == self.membership.epoch
            and proposed.epoch == self.membership.epoch + 1
            and proposed.arbiter == self.node_id
            and msg.ballot >= self.promised  # no newer leader was elected meanwhile
            and msg.ballot[1] in self.membership.data
            and msg.ballot[1] in proposed.data
            and not self.lease_blocks(ctx, msg.ballot)
        )
        if approve and not already:
            self.set_promised(ctx, msg.ballot)
            self.adopt_membership(ctx, proposed)
            ctx.trace("paxos.arbiter_vote", epoch=proposed.epoch, data=list(proposed.data))
        self.sync(ctx)
        ctx.send(src, MembershipAck(proposed.epoch, approve, self.membership))

    # --8<-- [end:arbiter-vote]

    def _on_heartbeat(self, ctx: Context, src: NodeId, msg: Heartbeat) -> None:
        if msg.membership.epoch > self.membership.epoch:
            self.adopt_membership(ctx, msg.membership)
            self.sync(ctx)
        if msg.membership.epoch < self.membership.epoch or msg.ballot < self.promised:
            ctx.send(src, HeartbeatAck(msg.ballot, msg.round, False, self.promised, 0))
            return
        self.grant_lease(msg.ballot, msg.lease_until_ms)
        ctx.send(src, HeartbeatAck(msg.ballot, msg.round, True, self.promised, 0))

    def _on_accept(self, ctx: Context, src: NodeId, msg: Accept) -> None:
        if "arbiter-accepts" in self.mutations:
            # mutation: arbiter-accepts -- acknowledges an entry it never stores.
            ctx.send(src, Accepted(msg.ballot, msg.slot, True, self.promised))
            return
        ctx.send(src, Accepted(msg.ballot, msg.slot, False, self.promised))

    def clone(self) -> Arbiter:
        return copy.copy(self)  # every field is immutable

    def state_key(self) -> tuple[object, ...]:
        return (self.voter_key(),)
