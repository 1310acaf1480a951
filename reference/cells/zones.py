"""GZone and CZone: the data that cannot be split by user.

Routing rules and the merchant directory are global: every cell needs them,
and no uid owns them. One GZone holds the master copy (durably, on its
disk); each city has a CZone, a read-mostly copy that the GZone updates
asynchronously and that serves the city's readers and pushes rule changes to
its subscribers (the city's gateways, and the clients). Reads stay in the
city; only the rare writes cross it.

Each CZone is also its city's acceptor in the rules log
(`reference.cells.rules_log`): when there is more than one failover
controller, a new rules version exists only once a majority of the CZones
accepted it, so no two controllers can mint the same version twice. Given
cells to witness (cell -> gateway: by its builder, or by a fenced
controller's `WatchCells`), it probes them as the controller does and votes
for no version that fails over a cell it still hears.

A push is re-sent until it is acknowledged: one message lost to a partition
at the wrong moment would otherwise leave a gateway on old rules for good,
forwarding a moved cell's users back to the cell that lost them. Re-sends go
only to the peers still behind, with doubling pauses capped at
`RESEND_MAX_MS`, so a peer cut off for an hour costs one message every few
seconds, and a healthy deployment sends nothing extra but one ack per push.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence

from reference.cells.messages import (
    ConfigAck,
    ConfigUpdate,
    DirectoryRead,
    DirectoryReply,
    RulesAccept,
    RulesAck,
    RulesPrepare,
    RulesRefused,
    SetRules,
    WatchCells,
    WatchCellsAck,
)
from reference.cells.rules_log import RulesAcceptor, Witness
from reference.codec import Message
from reference.gateway.messages import Ping, Pong, RulesUpdate, RulesUpdateAck
from reference.gateway.router import RoutingRules
from reference.node import Context, Node, NodeId

__all__ = ["RESEND_FIRST_MS", "RESEND_MAX_MS", "CZone", "GZone"]

RESEND_FIRST_MS = 200.0  # first pause before re-sending an unacknowledged push
RESEND_MAX_MS = 3_200.0  # the pause doubles up to this, never beyond
_RESEND = "resend"
_PROBE = "witness-probe"
_RULES_KEY = "czone/rules"  # the newest rules adopted from the GZone
_VOTES_KEY = "czone/votes"  # the acceptor's promises and accepted values, per version
_WITNESS_KEY = "czone/witness"  # the cells to probe, as a controller's WatchCells named them


class _Acks:
    """Which version each peer has acknowledged, and when to ask the laggards again."""

    def __init__(self, peers: Iterable[NodeId], version: int) -> None:
        # Every peer booted with the same rules as we did: nothing to send yet.
        self.acked: dict[NodeId, int] = {peer: version for peer in peers}
        self.pause_ms = RESEND_FIRST_MS
        self.armed = False

    def behind(self, version: int) -> list[NodeId]:
        return [peer for peer, acked in self.acked.items() if acked < version]

    def ack(self, peer: NodeId, version: int) -> None:
        if peer in self.acked:
            self.acked[peer] = max(self.acked[peer], version)

    def pushed(self, ctx: Context, version: int) -> None:
        """A new version went out to everyone: start the re-send clock afresh."""
        self.pause_ms = RESEND_FIRST_MS
        self.arm(ctx, version)

    def arm(self, ctx: Context, version: int) -> None:
        if not self.armed and self.behind(version):
            self.armed = True
            ctx.set_timer(self.pause_ms, _RESEND)

    def fired(self, ctx: Context, version: int) -> list[NodeId]:
        """The re-send timer fired: who to send to again; re-armed, with a longer pause."""
        self.armed = False
        laggards = self.behind(version)
        self.pause_ms = min(2 * self.pause_ms, RESEND_MAX_MS)
        self.arm(ctx, version)
        assert RESEND_FIRST_MS <= self.pause_ms <= RESEND_MAX_MS
        return laggards


class GZone(Node):
    """The global zone: the master copy of the rules and the merchant directory."""

    def __init__(
        self, rules: RoutingRules, merchants: Sequence[int], czones: Sequence[NodeId]
    ) -> None:
        self.rules = rules
        self.merchants = tuple(merchants)
        self.czones = tuple(czones)
        self.acks = _Acks(self.czones, rules.version)

    def on_start(self, ctx: Context) -> None:
        saved = ctx.disk.get("rules")
        if saved is not None and saved.version > self.rules.version:
            self.rules = saved
        self._publish(ctx)
        self.acks.pushed(ctx, self.rules.version)

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        if tag != _RESEND:
            super().on_timer(ctx, tag)
            return
        for czone in self.acks.fired(ctx, self.rules.version):
            ctx.count("config_resent")
            ctx.send(czone, ConfigUpdate(self.rules, self.merchants))

    # --8<-- [start:gzone-set-rules]
    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        if isinstance(msg, SetRules):
            if msg.rules.version > self.rules.version:
                self.rules = msg.rules
                ctx.disk.put("rules", msg.rules)
                ctx.disk.sync()  # durable before anyone hears of it
                ctx.trace("rules-set", version=msg.rules.version, reason=msg.reason)
                self._publish(ctx)
                self.acks.pushed(ctx, self.rules.version)
            ctx.send(src, RulesAck(self.rules.version))
        elif isinstance(msg, ConfigAck):
            self.acks.ack(src, msg.version)
        elif isinstance(msg, DirectoryRead):
            ctx.send(
                src, DirectoryReply(msg.req_id, self.merchants, self.rules.version, ctx.node_id)
            )
        else:
            super().on_message(ctx, src, msg)

    def _publish(self, ctx: Context) -> None:
        for czone in self.czones:
            ctx.send(czone, ConfigUpdate(self.rules, self.merchants))

    # --8<-- [end:gzone-set-rules]


class CZone(Node):
    """A city's copy of the global data; pushes rule changes to its subscribers."""

    def __init__(
        self,
        rules: RoutingRules,
        merchants: Sequence[int],
        subscribers: Sequence[NodeId],
        *,
        witness: Mapping[str, NodeId] | None = None,
        probe_every_ms: float = 100.0,
        suspect_after_ms: float = 1_500.0,
    ) -> None:
        """`witness`: the cells (cell -> gateway) this city probes, to vote on their
        failover in the rules log; none (chapters 3 and 4): no probes, no objection."""
        assert 0 < probe_every_ms < suspect_after_ms
        self.rules = rules
        self.merchants = tuple(merchants)
        self.subscribers = tuple(subscribers)
        self.acks = _Acks(self.subscribers, rules.version)
        self.votes = RulesAcceptor()
        self.witness = Witness(dict(witness), suspect_after_ms) if witness else None
        self.probe_every_ms = probe_every_ms
        self.probing = False  # a probe timer is set
        self.seq = 0

    def on_start(self, ctx: Context) -> None:
        votes = ctx.disk.get(_VOTES_KEY)
        if votes is not None:
            promised, accepted, refused = votes
            self.votes = RulesAcceptor(dict(promised), dict(accepted), dict(refused))
        watch = ctx.disk.get(_WITNESS_KEY)
        if watch is not None:
            self._watch(ctx, watch)
        elif self.witness is not None:
            self.witness.start(ctx.now_ms())
            self._probe_soon(ctx)
        saved = ctx.disk.get(_RULES_KEY)
        if saved is not None and saved.version > self.rules.version:
            # Back from a crash: the GZone will not send again what we
            # acknowledged, and who among our subscribers has it is unknown.
            self.rules = saved
            for sub in self.subscribers:
                ctx.send(sub, RulesUpdate(saved))
            self.acks.pushed(ctx, saved.version)

    # --8<-- [start:czone-push]
    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        if isinstance(msg, ConfigUpdate):
            # One version, one rule set: what the rules log (or a lone controller) ensures.
            assert msg.rules.version != self.rules.version or msg.rules == self.rules, (
                f"two rule sets numbered {msg.rules.version}"
            )
            if msg.rules.version > self.rules.version:
                self.rules = msg.rules
                ctx.disk.put(_RULES_KEY, msg.rules)  # on disk before the ack, as a gateway
                ctx.disk.sync()
                for sub in self.subscribers:
                    ctx.send(sub, RulesUpdate(msg.rules))
                self.acks.pushed(ctx, self.rules.version)
            self.merchants = msg.merchants
            ctx.send(src, ConfigAck(self.rules.version, ctx.node_id))
        elif isinstance(msg, RulesUpdateAck):
            self.acks.ack(src, msg.version)
        elif isinstance(msg, DirectoryRead):
            ctx.send(
                src, DirectoryReply(msg.req_id, self.merchants, self.rules.version, ctx.node_id)
            )
        elif isinstance(msg, (RulesPrepare, RulesAccept)):
            self._vote(ctx, src, msg)
        elif isinstance(msg, Pong) and self.witness is not None:
            self.witness.heard(msg.node, ctx.now_ms())
        elif isinstance(msg, WatchCells):
            if self.witness is None or self.witness.gateways != dict(msg.gateways):
                ctx.disk.put(_WITNESS_KEY, msg)
                ctx.disk.sync()
                self._watch(ctx, msg)
            ctx.send(src, WatchCellsAck(ctx.node_id))
        else:
            super().on_message(ctx, src, msg)

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        if tag == _PROBE and self.witness is not None:
            self.probing = False
            self.seq += 1
            for gateway in sorted(set(self.witness.gateways.values())):
                ctx.send(gateway, Ping(self.seq))
            self._probe_soon(ctx)
            return
        if tag != _RESEND:
            super().on_timer(ctx, tag)
            return
        for sub in self.acks.fired(ctx, self.rules.version):
            ctx.count("rules_resent")
            ctx.send(sub, RulesUpdate(self.rules))

    # --8<-- [end:czone-push]

    def _watch(self, ctx: Context, msg: WatchCells) -> None:
        """Witness these cells from now on, each given a full suspicion period."""
        self.witness = Witness(dict(msg.gateways), msg.suspect_after_ms)
        self.witness.start(ctx.now_ms())
        self.probe_every_ms = msg.probe_every_ms
        self._probe_soon(ctx)

    def _probe_soon(self, ctx: Context) -> None:
        if not self.probing:
            self.probing = True
            ctx.set_timer(self.probe_every_ms, _PROBE)

    def _vote(self, ctx: Context, src: NodeId, msg: RulesPrepare | RulesAccept) -> None:
        """The city's vote in the rules log: on disk before the controller hears it.
        A value that fails over a cell this city still hears gets no vote."""
        if isinstance(msg, RulesPrepare):
            reply = self.votes.on_prepare(msg, ctx.node_id)
        else:
            alive = () if self.witness is None else self.witness.alive(msg.fails, ctx.now_ms())
            reply = self.votes.on_accept(msg, ctx.node_id, alive)
            if isinstance(reply, RulesRefused):
                ctx.trace("failover-vetoed", version=msg.version, alive=",".join(alive))
        votes = self.votes
        ctx.disk.put(_VOTES_KEY, (votes.promised, votes.accepted, votes.refused))
        ctx.disk.sync()
        ctx.send(src, reply)
