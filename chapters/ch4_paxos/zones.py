"""Chapter 3's GZone and CZone, with anti-entropy: the rules are re-sent periodically.

`reference.cells` publishes a routing change once: the GZone sends it to
each CZone, each CZone to its subscribers, and a message lost on the way
(a partition at the wrong moment) leaves a gateway on old rules for good.
Chapter 3's scenarios never cut a city while the rules change; chapter 4's
nemeses do, and a gateway left on old rules forwards a moved cell's users
back to the cell that lost them, which forwards them back again. These
subclasses re-send the current rules every `REPUBLISH_MS`, so every reachable
subscriber converges on the newest version within one period of a heal.
Stale rules cost availability only: every path to an account still ends at
its group's single Paxos log.
"""

from __future__ import annotations

from collections.abc import Hashable

from reference.cells import CZone, GZone
from reference.cells.messages import ConfigUpdate
from reference.gateway.messages import RulesUpdate
from reference.node import Context

__all__ = ["REPUBLISH_MS", "RepublishingCZone", "RepublishingGZone"]

REPUBLISH_MS = 250.0
_REPUBLISH = "republish"


class RepublishingGZone(GZone):
    def on_start(self, ctx: Context) -> None:
        super().on_start(ctx)
        ctx.set_timer(REPUBLISH_MS, _REPUBLISH)

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        if tag != _REPUBLISH:
            super().on_timer(ctx, tag)
            return
        for czone in self.czones:
            ctx.send(czone, ConfigUpdate(self.rules, self.merchants))
        ctx.set_timer(REPUBLISH_MS, _REPUBLISH)


class RepublishingCZone(CZone):
    def on_start(self, ctx: Context) -> None:
        ctx.set_timer(REPUBLISH_MS, _REPUBLISH)

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        if tag != _REPUBLISH:
            super().on_timer(ctx, tag)
            return
        for sub in self.subscribers:
            ctx.send(sub, RulesUpdate(self.rules))
        ctx.set_timer(REPUBLISH_MS, _REPUBLISH)
