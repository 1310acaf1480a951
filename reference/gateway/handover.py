"""The handover of a uid range between two live cells: one owner per range per epoch.

Chapter 3 moves a range when its cell is dead (failover): nobody else can be
serving it. The elastic cell of Double 11 is different: a range moves from a
live cell to a cell started for the peak, and back after it, while payments
of the range are in flight. The routing rules' version is the epoch:

- the rules of version e name one owner per bucket (the GZone writes them,
  the CZones push them, every gateway adopts them);
- the old owner, on adopting e, stops accepting the buckets it lost
  (a request for them is forwarded to their new owner, as any stranger's);
  the payments it had already accepted finish there, and once none of the
  range's is left in flight it sends the new owner `RangeReleased(e, buckets)`,
  for the whole range at once;
- the new owner, on adopting e, refuses its gained buckets ("handover": the
  client retries) until that release arrives. A range taken from a dead cell
  (in the rules' `moved`) is taken at once; so is one whose release has not
  come within `TAKEOVER_MS` (the old owner is cut off: its payments in flight
  are fenced by the ledger's log, never applied twice), and the takeover says
  which it was.

So no payment of a range is ever in the hands of two live owners, and the
time from the new rules to the release is the handover's figure. Every step
is a telemetry event (`owner-accept` the first time a cell accepts a bucket
in a version, `range-released`, `range-taken`), which the capstone writes into
the history for `chapters.capstone.elastic.check_owners`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from reference.gateway.messages import RangeReleased
from reference.gateway.router import RoutingRules
from reference.node import Context, NodeId

__all__ = ["TAKEOVER_MS", "Handover", "bucket_list", "parse_buckets"]

TAKEOVER_MS = 1_000.0  # no release this long after the rules: take the range anyway


class Handover:
    """A gateway's side of range handovers (see the module docstring)."""

    def __init__(self, cell: str, *, wait: bool = True) -> None:
        self.cell = cell
        self.wait = wait  # False: the planted bug, a gained range is served at once
        self.held: dict[int, tuple[str, int, float]] = {}  # bucket -> (old cell, version, since)
        self.losing: dict[int, tuple[str, int]] = {}  # bucket -> (new cell, version)
        self.gateways: dict[str, NodeId] = {}
        self.inflight: dict[str, int] = {}  # req_id -> bucket, payments accepted as owner
        self.released_early: dict[int, int] = {}  # bucket -> version released before adopted
        self.accepted: set[tuple[int, int]] = set()  # (bucket, version) first accepts seen

    # -- new rules ------------------------------------------------------------------
    def adopted(
        self, ctx: Context, old: RoutingRules, new: RoutingRules, gateways: Mapping[str, NodeId]
    ) -> None:
        self.gateways = dict(gateways)
        now_ms = ctx.now_ms()
        taken: dict[tuple[str, str], list[int]] = {}  # (old cell, how) -> buckets
        for b, (was, now) in enumerate(zip(old.buckets, new.buckets, strict=True)):
            if was == self.cell and now != self.cell:
                self.held.pop(b, None)
                if self.cell not in new.moved:  # failed over: the range was taken as dead
                    self.losing[b] = (now, new.version)
            elif now == self.cell and was != self.cell:
                early = self.released_early.pop(b, 0) >= new.version
                if self.wait and not early and was not in new.moved:
                    self.held[b] = (was, new.version, now_ms)
                else:
                    why = "released" if early else ("dead" if was in new.moved else "no-wait")
                    taken.setdefault((was, why), []).append(b)
        for (was, why), buckets in sorted(taken.items()):
            self._taken(ctx, buckets, was, new.version, why)
        self._release(ctx)

    # -- serving --------------------------------------------------------------------
    def serve(self, ctx: Context, bucket: int, version: int, req_id: str) -> bool:
        """May this gateway, the bucket's owner in `version`, accept the payment now?"""
        held = self.held.get(bucket)
        if held is not None:
            old, held_version, since_ms = held
            if ctx.now_ms() - since_ms < TAKEOVER_MS:
                return False
            del self.held[bucket]
            self._taken(ctx, [bucket], old, held_version, "timeout")
        if (bucket, version) not in self.accepted:
            self.accepted.add((bucket, version))
            ctx.trace("owner-accept", bucket=bucket, version=version, cell=self.cell)
        self.inflight[req_id] = bucket
        return True

    def done(self, ctx: Context, req_id: str) -> None:
        """A payment accepted here finished (replied, refused, or given up on)."""
        if self.inflight.pop(req_id, None) is not None and self.losing:
            self._release(ctx)

    # -- releasing and taking ----------------------------------------------------------
    def _release(self, ctx: Context) -> None:
        busy = set(self.inflight.values())
        ranges: dict[tuple[str, int], list[int]] = {}
        for b, (to, version) in self.losing.items():
            ranges.setdefault((to, version), []).append(b)
        for (to, version), buckets in sorted(ranges.items()):
            if busy.intersection(buckets):
                continue  # a range is released whole, once none of its payments is in flight
            for b in buckets:
                del self.losing[b]
            gateway = self.gateways.get(to)
            ctx.trace(
                "range-released", buckets=bucket_list(buckets), version=version, cell=self.cell,
                to=to,
            )  # fmt: skip
            if gateway is not None:
                ctx.send(gateway, RangeReleased(version, tuple(buckets), self.cell, ctx.node_id))

    def released(self, ctx: Context, msg: RangeReleased) -> None:
        taken = []
        for b in msg.buckets:
            held = self.held.get(b)
            if held is not None and held[0] == msg.cell and held[1] <= msg.version:
                del self.held[b]
                taken.append(b)
            elif held is None:
                self.released_early[b] = max(self.released_early.get(b, 0), msg.version)
        if taken:
            self._taken(ctx, taken, msg.cell, msg.version, "released")

    def _taken(self, ctx: Context, buckets: list[int], old: str, version: int, how: str) -> None:
        ctx.trace(
            "range-taken", buckets=bucket_list(buckets), version=version, cell=self.cell,
            frm=old, how=how,
        )  # fmt: skip


def bucket_list(buckets: Iterable[int]) -> str:
    """Buckets as a trace field: "67,68,69" (a real backend's telemetry carries short
    lists only; a string crosses whole)."""
    return ",".join(str(b) for b in buckets)


def parse_buckets(field: object) -> list[int]:
    """`bucket_list`'s inverse (a list, as an older trace has it, passes through)."""
    if isinstance(field, str):
        return [int(b) for b in field.split(",") if b]
    assert isinstance(field, list | tuple), field
    return [int(b) for b in field]
