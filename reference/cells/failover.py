"""Cell failover: when a cell stops answering, move its uid ranges to its standby.

The controller probes every primary cell's gateway. A cell silent for
`suspect_after_ms` is declared dead. Failing it over is two steps, both
plain data changes:

1. promote the cell's standby store (in another city) to primary: it stops
   following the dead primary's log and starts serving;
2. write new routing rules to the GZone: the dead cell's buckets now belong
   to the standby cell, and its data (merchant sub-accounts) "moved" there.

The GZone pushes the rules out through the CZones; gateways and clients
route by them from then on. No code changes, no rehash: a table edit.

Both steps go to one node over a network that loses messages, so each is
re-sent until acknowledged (Promote until PromoteAck, SetRules until a
RulesAck of its version), with doubling pauses capped at `RETRY_MAX_MS`.
The count of attempts is not capped: a failover that gives up halfway
leaves a dead cell's users with nowhere to go; the cap on the pause is what
bounds the cost. Both messages are idempotent at their receivers.

What failover cannot do is bring back what the dead primary had committed
and not yet shipped. With asynchronous replication those payments were
acknowledged to their clients and are gone from the new primary.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass

from reference.cells.messages import MoveRange, RulesAck, SetRules
from reference.codec import Message
from reference.gateway.handover import bucket_list
from reference.gateway.messages import Ping, Pong
from reference.gateway.router import RoutingRules
from reference.node import Context, Node, NodeId
from reference.sqlstore.messages import Promote, PromoteAck

__all__ = ["CellPair", "FailoverController"]

_PROBE = "probe"
RETRY_FIRST_MS = 200.0  # first pause before re-sending an unacknowledged Promote/SetRules
RETRY_MAX_MS = 3_200.0  # the pause doubles up to this


@dataclass(frozen=True)
class CellPair:
    """A primary cell and the standby cell that takes over its data."""

    cell: str
    gateway: NodeId
    standby_cell: str
    standby_store: NodeId


class FailoverController(Node):
    def __init__(
        self,
        pairs: Mapping[str, CellPair],
        rules: RoutingRules,
        gzone: NodeId,
        *,
        probe_every_ms: float = 100.0,
        suspect_after_ms: float = 1_500.0,
    ) -> None:
        assert 0 < probe_every_ms < suspect_after_ms
        self.pairs = dict(pairs)
        self.rules = rules
        self.gzone = gzone
        self.probe_every_ms = probe_every_ms
        self.suspect_after_ms = suspect_after_ms
        self.last_seen_ms: dict[str, float] = {}
        self.failing: dict[str, float] = {}  # cell -> when declared dead
        self.promoted: set[str] = set()
        self.seq = 0
        self.rules_acked = rules.version  # the GZone booted with these rules
        self.retry_ms: dict[Hashable, float] = {}  # retry timer tag -> its current pause

    def on_start(self, ctx: Context) -> None:
        saved = ctx.disk.get("rules")
        if saved is not None and saved.version > self.rules.version:
            self.rules = saved
            self._send_rules(ctx)  # we may have crashed before the GZone acknowledged them
        now_ms = ctx.now_ms()
        self.last_seen_ms = {cell: now_ms for cell in self.pairs if cell not in self.rules.moved}
        ctx.set_timer(self.probe_every_ms, _PROBE)

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        if isinstance(tag, tuple) and tag[0] == "promote-retry":
            cell = tag[1]
            if cell not in self.promoted:  # no PromoteAck yet: ask again
                ctx.count("promote_resent")
                ctx.send(self.pairs[cell].standby_store, Promote(f"{cell} failed over"))
                self._retry(ctx, tag)
            return
        if tag == "rules-retry":
            if self.rules_acked < self.rules.version:  # no RulesAck of them yet
                ctx.count("setrules_resent")
                ctx.send(self.gzone, SetRules(self.rules, "re-sent: not yet acknowledged"))
                self._retry(ctx, tag)
            return
        if tag != _PROBE:
            super().on_timer(ctx, tag)
            return
        self.seq += 1
        now_ms = ctx.now_ms()
        for cell, seen_ms in sorted(self.last_seen_ms.items()):
            if cell in self.failing:
                continue
            if now_ms - seen_ms > self.suspect_after_ms:
                self._fail_over(ctx, cell)
            else:
                ctx.send(self.pairs[cell].gateway, Ping(self.seq))
        ctx.set_timer(self.probe_every_ms, _PROBE)

    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        if isinstance(msg, Pong):
            cell = next((c for c, p in self.pairs.items() if p.gateway == msg.node), None)
            if cell is not None and cell in self.last_seen_ms:
                self.last_seen_ms[cell] = ctx.now_ms()
        elif isinstance(msg, PromoteAck):
            self._on_promoted(ctx, msg)
        elif isinstance(msg, MoveRange):
            self._move(ctx, msg)
        elif isinstance(msg, RulesAck):
            self.rules_acked = max(self.rules_acked, msg.version)
            if msg.version >= self.rules.version:
                ctx.cancel_timer("rules-retry")
                self.retry_ms.pop("rules-retry", None)
                done = sorted(c for c in self.failing if c in self.rules.moved)
                for cell in done:
                    ctx.trace(
                        "failover-complete", cell=cell, declared_ms=self.failing.pop(cell),
                        version=msg.version,
                    )  # fmt: skip
                    del self.last_seen_ms[cell]
        else:
            super().on_message(ctx, src, msg)

    # --8<-- [start:failover]
    def _fail_over(self, ctx: Context, cell: str) -> None:
        """Step 1: promote the standby. It answers with how much log it had."""
        self.failing[cell] = ctx.now_ms()
        pair = self.pairs[cell]
        ctx.trace("cell-dead", cell=cell, standby=pair.standby_cell)
        ctx.send(pair.standby_store, Promote(f"{cell} failed over"))
        self._arm_retry(ctx, ("promote-retry", cell))

    def _on_promoted(self, ctx: Context, ack: PromoteAck) -> None:
        """Step 2: rewrite the routing rules, so the dead cell's users go there."""
        cell = next(c for c, p in self.pairs.items() if p.standby_store == ack.node)
        if cell in self.promoted:
            return
        self.promoted.add(cell)
        ctx.cancel_timer(("promote-retry", cell))
        self.retry_ms.pop(("promote-retry", cell), None)
        standby = self.pairs[cell].standby_cell
        buckets = tuple(standby if owner == cell else owner for owner in self.rules.buckets)
        moved = {**self.rules.moved, cell: standby}
        self.rules = RoutingRules(self.rules.version + 1, buckets, moved)
        ctx.disk.put("rules", self.rules)
        ctx.disk.sync()
        ctx.send(self.gzone, SetRules(self.rules, f"failover of {cell}"))
        self._arm_retry(ctx, "rules-retry")

    # --8<-- [end:failover]

    # --8<-- [start:move-range]
    def _move(self, ctx: Context, msg: MoveRange) -> None:
        """A range to another live cell: the next rules version, written as a failover's.
        The controller is the one writer of the rules, so a move and a failover never
        race for a version (two controllers derive the same rules from the same steps)."""
        to = self.rules.home_of(msg.to_cell)
        buckets = list(self.rules.buckets)
        for b in msg.buckets:
            buckets[b] = to
        if tuple(buckets) == self.rules.buckets:
            return  # already there (a re-sent move)
        self.rules = RoutingRules(self.rules.version + 1, tuple(buckets), dict(self.rules.moved))
        ctx.trace("range-move", buckets=bucket_list(msg.buckets), to=to, version=self.rules.version)
        ctx.disk.put("rules", self.rules)
        ctx.disk.sync()
        ctx.send(self.gzone, SetRules(self.rules, msg.reason))
        self._arm_retry(ctx, "rules-retry")

    # --8<-- [end:move-range]

    # -- re-sending until acknowledged ------------------------------------------------------
    def _send_rules(self, ctx: Context) -> None:
        ctx.send(self.gzone, SetRules(self.rules, "re-sent after a restart"))
        self._arm_retry(ctx, "rules-retry")

    def _arm_retry(self, ctx: Context, tag: Hashable) -> None:
        """Start (or restart) a retry clock at its first, shortest pause."""
        ctx.cancel_timer(tag)
        self.retry_ms[tag] = RETRY_FIRST_MS
        ctx.set_timer(RETRY_FIRST_MS, tag)

    def _retry(self, ctx: Context, tag: Hashable) -> None:
        """A retry timer fired: set the next one, with the pause doubled (capped)."""
        pause_ms = min(2 * self.retry_ms.get(tag, RETRY_FIRST_MS), RETRY_MAX_MS)
        assert RETRY_FIRST_MS <= pause_ms <= RETRY_MAX_MS
        self.retry_ms[tag] = pause_ms
        ctx.set_timer(pause_ms, tag)
