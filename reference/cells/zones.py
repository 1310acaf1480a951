"""GZone and CZone: the data that cannot be split by user.

Routing rules and the merchant directory are global: every cell needs them,
and no uid owns them. One GZone holds the master copy (durably, on its
disk); each city has a CZone, a read-mostly copy that the GZone updates
asynchronously and that serves the city's readers and pushes rule changes to
its subscribers (the city's gateways, and the clients). Reads stay in the
city; only the rare writes cross it.
"""

from __future__ import annotations

from collections.abc import Sequence

from reference.cells.messages import (
    ConfigUpdate,
    DirectoryRead,
    DirectoryReply,
    RulesAck,
    SetRules,
)
from reference.codec import Message
from reference.gateway.messages import RulesUpdate
from reference.gateway.router import RoutingRules
from reference.node import Context, Node, NodeId

__all__ = ["CZone", "GZone"]


class GZone(Node):
    """The global zone: the master copy of the rules and the merchant directory."""

    def __init__(
        self, rules: RoutingRules, merchants: Sequence[int], czones: Sequence[NodeId]
    ) -> None:
        self.rules = rules
        self.merchants = tuple(merchants)
        self.czones = tuple(czones)

    def on_start(self, ctx: Context) -> None:
        saved = ctx.disk.get("rules")
        if saved is not None and saved.version > self.rules.version:
            self.rules = saved
        self._publish(ctx)

    # --8<-- [start:gzone-set-rules]
    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        if isinstance(msg, SetRules):
            if msg.rules.version > self.rules.version:
                self.rules = msg.rules
                ctx.disk.put("rules", msg.rules)
                ctx.disk.sync()  # durable before anyone hears of it
                ctx.trace("rules-set", version=msg.rules.version, reason=msg.reason)
                self._publish(ctx)
            ctx.send(src, RulesAck(self.rules.version))
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
        self, rules: RoutingRules, merchants: Sequence[int], subscribers: Sequence[NodeId]
    ) -> None:
        self.rules = rules
        self.merchants = tuple(merchants)
        self.subscribers = tuple(subscribers)

    # --8<-- [start:czone-push]
    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        if isinstance(msg, ConfigUpdate):
            if msg.rules.version > self.rules.version:
                self.rules = msg.rules
                for sub in self.subscribers:
                    ctx.send(sub, RulesUpdate(msg.rules))
            self.merchants = msg.merchants
        elif isinstance(msg, DirectoryRead):
            ctx.send(
                src, DirectoryReply(msg.req_id, self.merchants, self.rules.version, ctx.node_id)
            )
        else:
            super().on_message(ctx, src, msg)

    # --8<-- [end:czone-push]
