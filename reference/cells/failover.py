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

That is the lone writer: one controller mints every version. It keeps
probing a cell whose Promote is unacknowledged, and a cell that answered
since it was declared dead is not promoted again: its failover is
cancelled and it is watched afresh (a suspicion made during a cut is stale
after the heal). A standby
controller (the capstone's, in another city) makes two writers, and a cut
city makes them disagree: each side sees the other's cells go silent. Given
`acceptors` (the three cities' CZones), the controller is *fenced*: a
failover is first a proposal for the next rules version in the rules log
(`reference.cells.rules_log`, one Paxos slot per version), and only a
version a majority of cities accepted is promoted and published. The side
cut off with a minority proposes and waits; a suspected cell that answers
again before its failover is chosen is forgiven. The acceptors are also
witnesses: each probes the cells itself and refuses a version that fails
over a cell it still hears, so a controller cut off from a cell that most
cities still reach cannot fail it over; the refused cell is watched again
(and suspected again if it stays silent). Every step a cell takes is in a
transition table (`LONE_WRITER`, `FENCED`).

What failover cannot do is bring back what the dead primary had committed
and not yet shipped. With asynchronous replication those payments were
acknowledged to their clients and are gone from the new primary.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass

from reference.cells.messages import (
    MoveRange,
    RulesAccepted,
    RulesAck,
    RulesNack,
    RulesPrepare,
    RulesPromise,
    RulesRefused,
    SetRules,
    WatchCells,
    WatchCellsAck,
)
from reference.cells.rules_log import Proposal, RulesProposer
from reference.codec import Message
from reference.gateway.handover import bucket_list
from reference.gateway.messages import Ping, Pong
from reference.gateway.router import RoutingRules
from reference.node import Context, Node, NodeId
from reference.sqlstore.messages import Promote, PromoteAck

__all__ = ["FENCED", "LONE_WRITER", "CellPair", "CellState", "FailoverController", "mermaid"]

_PROBE = "probe"
_LOG_RETRY = "log-retry"
_WATCH_RETRY = "watch-retry"
_ROUND_KEY = "rules-log/round"  # the proposer's last ballot round, never reused
RETRY_FIRST_MS = 200.0  # first pause before re-sending an unacknowledged Promote/SetRules
RETRY_MAX_MS = 3_200.0  # the pause doubles up to this


@dataclass(frozen=True)
class CellPair:
    """A primary cell and the standby cell that takes over its data."""

    cell: str
    gateway: NodeId
    standby_cell: str
    standby_store: NodeId


class CellState(enum.Enum):
    WATCHED = "watched"  # probed; answering
    SUSPECT = "suspect"  # silent too long; its failover proposed, not yet chosen (fenced)
    PROMOTING = "promoting"  # its standby store is being promoted
    PUBLISHING = "publishing"  # the rules moving it are on their way to the GZone
    DONE = "done"  # failed over; no longer watched


class CellEvent(enum.Enum):
    SILENT = "silent for suspect_after_ms"
    ANSWERED = "a pong"
    CHOSEN = "a chosen rules version moves it"
    REFUSED = "a majority of cities still hear it"
    PROMOTED = "its standby's PromoteAck"
    RULES_ACKED = "the GZone's RulesAck"


# --8<-- [start:cell-tables]
# h11 style: every step a cell can take, and nothing else. The lone writer
# (chapters 3 and 4: one controller) fails a silent cell over at once; a
# fenced controller only proposes it, and acts once a majority chose it.
LONE_WRITER: dict[tuple[CellState, CellEvent], CellState] = {
    (CellState.WATCHED, CellEvent.SILENT): CellState.PROMOTING,
    (CellState.PROMOTING, CellEvent.ANSWERED): CellState.WATCHED,  # stale: cancelled at the retry
    (CellState.PROMOTING, CellEvent.PROMOTED): CellState.PUBLISHING,  # mints version + 1
    (CellState.WATCHED, CellEvent.PROMOTED): CellState.PUBLISHING,  # cancelled too late
    (CellState.PUBLISHING, CellEvent.RULES_ACKED): CellState.DONE,
}
FENCED: dict[tuple[CellState, CellEvent], CellState] = {
    (CellState.WATCHED, CellEvent.SILENT): CellState.SUSPECT,
    (CellState.SUSPECT, CellEvent.ANSWERED): CellState.WATCHED,  # forgiven: not chosen yet
    (CellState.SUSPECT, CellEvent.REFUSED): CellState.WATCHED,  # the witnesses hear it: wait
    (CellState.SUSPECT, CellEvent.CHOSEN): CellState.PROMOTING,
    (CellState.WATCHED, CellEvent.CHOSEN): CellState.PROMOTING,  # the other controller's
    (CellState.PROMOTING, CellEvent.PROMOTED): CellState.PUBLISHING,
    (CellState.PUBLISHING, CellEvent.RULES_ACKED): CellState.DONE,
}
# --8<-- [end:cell-tables]


def mermaid(table: dict[tuple[CellState, CellEvent], CellState] | None = None) -> str:
    """The state diagram of a cell's table (`FENCED` by default), one arrow per row."""
    rows = FENCED if table is None else table
    lines = ["stateDiagram-v2", f"    [*] --> {CellState.WATCHED.value}"]
    lines += [f"    {a.value} --> {b.value}: {e.value}" for (a, e), b in rows.items()]
    lines.append(f"    {CellState.DONE.value} --> [*]")
    return "\n".join(lines)


class FailoverController(Node):
    def __init__(
        self,
        pairs: Mapping[str, CellPair],
        rules: RoutingRules,
        gzone: NodeId,
        *,
        probe_every_ms: float = 100.0,
        suspect_after_ms: float = 1_500.0,
        acceptors: Sequence[NodeId] = (),
    ) -> None:
        """`acceptors` (one per city, an odd number) fence every new rules version
        by a majority; none: this controller is the rules' only writer."""
        assert 0 < probe_every_ms < suspect_after_ms
        self.pairs = dict(pairs)
        self.rules = rules
        self.gzone = gzone
        self.probe_every_ms = probe_every_ms
        self.suspect_after_ms = suspect_after_ms
        self.table = FENCED if acceptors else LONE_WRITER
        self.acceptors = tuple(acceptors)
        self.log: RulesProposer | None = None  # the rules log's proposer (fenced), from on_start
        self.state: dict[str, CellState] = {}
        self.last_seen_ms: dict[str, float] = {}
        self.failing: dict[str, float] = {}  # cell -> when declared dead
        self.moves: list[MoveRange] = []  # operator moves not yet in a chosen version
        self.seq = 0
        self.rules_acked = rules.version  # the GZone booted with these rules
        self.retry_ms: dict[Hashable, float] = {}  # retry timer tag -> its current pause
        self.unwatched: set[NodeId] = set()  # acceptors yet to ack our WatchCells

    def _step(self, cell: str, event: CellEvent) -> None:
        nxt = self.table.get((self.state[cell], event))
        assert nxt is not None, f"{cell}: no step from {self.state[cell]} on {event}"
        self.state[cell] = nxt

    def on_start(self, ctx: Context) -> None:
        saved = ctx.disk.get("rules")
        if saved is not None and saved.version > self.rules.version:
            self.rules = saved
            self._send_rules(ctx)  # we may have crashed before the GZone acknowledged them
        now_ms = ctx.now_ms()
        self.last_seen_ms = {cell: now_ms for cell in self.pairs if cell not in self.rules.moved}
        self.state = {cell: CellState.WATCHED for cell in self.last_seen_ms}
        if self.acceptors:
            self.log = RulesProposer(ctx.node_id, self.acceptors, ctx.disk.get(_ROUND_KEY, 0))
            self.unwatched = set(self.acceptors)
            self._ask_to_watch(ctx)
            self._arm_retry(ctx, _WATCH_RETRY)
        ctx.set_timer(self.probe_every_ms, _PROBE)

    def _ask_to_watch(self, ctx: Context) -> None:
        """The acceptors are witnesses: name them the cells to probe (until each acks)."""
        gateways = tuple(sorted((c, p.gateway) for c, p in self.pairs.items()))
        msg = WatchCells(gateways, self.probe_every_ms, self.suspect_after_ms)
        for acceptor in sorted(self.unwatched):
            ctx.send(acceptor, msg)

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        if isinstance(tag, tuple) and tag[0] == "promote-retry":
            cell = tag[1]
            if self.state.get(cell) is CellState.PROMOTING and self._heard_since_declared(cell):
                self._cancel(ctx, cell)
            elif self.state.get(cell) is CellState.PROMOTING:  # no PromoteAck yet: ask again
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
        if tag == _WATCH_RETRY:
            if self.unwatched:
                self._ask_to_watch(ctx)
                self._retry(ctx, tag)
            return
        if tag == _LOG_RETRY:
            self._ask_again(ctx, self._retry)
            return
        if tag != _PROBE:
            super().on_timer(ctx, tag)
            return
        self.seq += 1
        now_ms = ctx.now_ms()
        # A lone writer still probes a cell whose Promote is unacknowledged: an
        # answer cancels the failover before the next Promote is sent (`_cancel`).
        probed = {CellState.WATCHED, CellState.SUSPECT}
        if self.log is None:
            probed.add(CellState.PROMOTING)
        for cell, seen_ms in sorted(self.last_seen_ms.items()):
            if self.state[cell] not in probed:
                continue
            if self.state[cell] is CellState.WATCHED and now_ms - seen_ms > self.suspect_after_ms:
                self._fail_over(ctx, cell)
            else:
                ctx.send(self.pairs[cell].gateway, Ping(self.seq))
        self._propose(ctx)
        ctx.set_timer(self.probe_every_ms, _PROBE)

    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        if isinstance(msg, Pong):
            cell = next((c for c, p in self.pairs.items() if p.gateway == msg.node), None)
            if cell is not None and cell in self.last_seen_ms:
                self.last_seen_ms[cell] = ctx.now_ms()
                if self.state[cell] is CellState.SUSPECT:
                    self._step(cell, CellEvent.ANSWERED)
                    del self.failing[cell]
                    ctx.trace("cell-alive", cell=cell)
        elif isinstance(msg, PromoteAck):
            self._on_promoted(ctx, msg)
        elif isinstance(msg, MoveRange):
            self._move(ctx, msg)
        elif isinstance(msg, RulesAck):
            self._on_rules_ack(ctx, msg)
        elif isinstance(msg, RulesPromise) and self.log is not None:
            self._send(ctx, self.log.on_promise(msg))
        elif isinstance(msg, RulesAccepted) and self.log is not None:
            self._send(ctx, self.log.on_accepted(msg))
        elif isinstance(msg, RulesNack) and self.log is not None:
            self._send(ctx, self.log.on_nack(msg))
        elif isinstance(msg, RulesRefused) and self.log is not None:
            self._send(ctx, self.log.on_refused(msg))
        elif isinstance(msg, WatchCellsAck):
            self.unwatched.discard(msg.node)
        else:
            super().on_message(ctx, src, msg)

    # --8<-- [start:failover]
    def _fail_over(self, ctx: Context, cell: str) -> None:
        """Step 1: promote the standby. It answers with how much log it had.
        (Fenced: first propose the failover; `_adopt` promotes once it is chosen.)"""
        self._step(cell, CellEvent.SILENT)
        self.failing[cell] = ctx.now_ms()
        pair = self.pairs[cell]
        ctx.trace("cell-dead", cell=cell, standby=pair.standby_cell)
        if self.state[cell] is CellState.PROMOTING:
            self._promote(ctx, cell)

    def _promote(self, ctx: Context, cell: str) -> None:
        ctx.send(self.pairs[cell].standby_store, Promote(f"{cell} failed over"))
        self._arm_retry(ctx, ("promote-retry", cell))

    def _heard_since_declared(self, cell: str) -> bool:
        """A lone writer's stale suspicion (a fenced controller's PROMOTING cell was
        chosen by a majority: too late to take back, whatever it hears since)."""
        if self.log is not None:
            return False
        return self.last_seen_ms.get(cell, 0.0) > self.failing.get(cell, float("inf"))

    def _cancel(self, ctx: Context, cell: str) -> None:
        """A lone writer's stale suspicion: `cell` answered after it was declared dead,
        and its standby has not acknowledged a Promote. Seen in `d11 tui ch4`: Hangzhou
        cut off for 15 s, the controller there declared sh-1 dead 400 ms in and re-sent
        its Promote until the heal let one through, then failed the healthy sh-1 over
        on that 16-second-old declaration. Watch it again instead (a full suspicion
        period). A Promote that reached the standby with its ack lost cannot be taken
        back: if that ack still comes, the failover goes on (`_on_promoted`)."""
        self._step(cell, CellEvent.ANSWERED)
        ctx.cancel_timer(("promote-retry", cell))
        self.retry_ms.pop(("promote-retry", cell), None)
        declared_ms = self.failing.pop(cell)
        ctx.trace("failover-cancelled", cell=cell, declared_ms=declared_ms)

    def _on_promoted(self, ctx: Context, ack: PromoteAck) -> None:
        """Step 2: rewrite the routing rules, so the dead cell's users go there.
        (A lone writer's cancelled failover, too, if the standby took the Promote:
        it is a primary now, and the cell's users had better go to it.)"""
        promoting = [
            c for c, p in self.pairs.items()
            if p.standby_store == ack.node
            and (self.state.get(c), CellEvent.PROMOTED) in self.table
        ]  # fmt: skip
        for cell in promoting:
            if self.state[cell] is CellState.WATCHED:
                self.failing[cell] = ctx.now_ms()
                ctx.trace("failover-resumed", cell=cell, standby=self.pairs[cell].standby_cell)
            self._step(cell, CellEvent.PROMOTED)
            ctx.cancel_timer(("promote-retry", cell))
            self.retry_ms.pop(("promote-retry", cell), None)
            if self.log is None:  # the lone writer mints the version itself
                self.rules = _failed_over(self.rules, cell, self.pairs[cell].standby_cell)
                self._publish(ctx, f"failover of {cell}")
        if self.log is not None and promoting and not self._promoting():
            self._publish(ctx, f"failover of {', '.join(sorted(self.rules.moved))}")

    # --8<-- [end:failover]

    def _on_rules_ack(self, ctx: Context, msg: RulesAck) -> None:
        self.rules_acked = max(self.rules_acked, msg.version)
        if msg.version < self.rules.version:
            return
        ctx.cancel_timer("rules-retry")
        self.retry_ms.pop("rules-retry", None)
        done = sorted(c for c, st in self.state.items() if st is CellState.PUBLISHING)
        for cell in done:
            assert cell in self.rules.moved, cell
            self._step(cell, CellEvent.RULES_ACKED)
            ctx.trace(
                "failover-complete", cell=cell, declared_ms=self.failing.pop(cell, None),
                version=msg.version,
            )  # fmt: skip
            del self.last_seen_ms[cell]

    # --8<-- [start:move-range]
    def _move(self, ctx: Context, msg: MoveRange) -> None:
        """A range to another live cell: the next rules version, written as a failover's.
        A lone controller writes it at once; a fenced one proposes it like a failover,
        and two controllers asked for the same move get it chosen once."""
        if self.log is not None:
            self.moves.append(msg)
            self._propose(ctx)
            return
        moved = _moved(self.rules, msg)
        if moved == self.rules:
            return  # already there (a re-sent move)
        self.rules = moved
        to = moved.home_of(msg.to_cell)
        ctx.trace("range-move", buckets=bucket_list(msg.buckets), to=to, version=moved.version)
        self._publish(ctx, msg.reason)

    # --8<-- [end:move-range]

    # -- the fenced controller: the rules log ------------------------------------------------
    # --8<-- [start:fenced]
    def _wanted(self) -> RoutingRules | None:
        """The next version this controller would write: suspects failed over, moves made.

        All suspects in one version, even though a witness's veto of one sinks the
        others (they are watched afresh, and proposed again if still silent): one
        failover a version was tried, and a value that one city accepted and another
        refused, with the third out of reach, then held the version for the whole cut
        (`d11 test double11 --nemesis partition-ring --seed 1`: no failover at all,
        where the batch had one cell, dead to two cities, chosen)."""
        rules = self.rules
        for cell in sorted(c for c, st in self.state.items() if st is CellState.SUSPECT):
            if cell not in rules.moved:
                rules = _failed_over(rules, cell, self.pairs[cell].standby_cell, self.rules.version)
        for move in self.moves:
            rules = _moved(rules, move, self.rules.version)
        return None if rules == self.rules else rules

    def _propose(self, ctx: Context) -> None:
        if self.log is None or self.log.want is not None:
            return  # lone writer, or a proposal already in flight
        want = self._wanted()
        if want is not None:
            self._send(ctx, self.log.propose(want, self.rules))
            self._arm_retry(ctx, _LOG_RETRY)

    def _send(self, ctx: Context, step: Proposal) -> None:
        assert self.log is not None
        if any(isinstance(msg, RulesPrepare) for _, msg in step.send):
            ctx.disk.put(_ROUND_KEY, self.log.round)  # a new ballot: durable before it is used
            ctx.disk.sync()
        for dst, msg in step.send:
            ctx.send(dst, msg)
        for cell in step.refused:
            self._refused(ctx, cell)
        if step.vetoed:  # not a duel with another proposer: ask again now, for the rest
            self._ask_again(ctx, self._arm_retry)
        if step.chosen is not None:
            self._adopt(ctx, step.chosen)

    def _ask_again(self, ctx: Context, rearm: Callable[[Context, Hashable], None]) -> None:
        """A new round for what we want now (the proposer may adopt a value instead),
        or give the proposal up if we want nothing any more."""
        assert self.log is not None
        want = self._wanted()
        self._send(ctx, self.log.on_timeout(want))
        if want is None:
            ctx.cancel_timer(_LOG_RETRY)
            self.retry_ms.pop(_LOG_RETRY, None)
            ctx.trace("failover-abandoned", version=self.rules.version + 1)
        else:
            rearm(ctx, _LOG_RETRY)

    def _refused(self, ctx: Context, cell: str) -> None:
        """A majority of cities still hear `cell`: only we lost it. Watch it afresh
        (a full suspicion period), and leave it out of what we propose next."""
        ctx.trace("failover-refused", cell=cell, version=self.rules.version + 1)
        if self.state.get(cell) is CellState.SUSPECT:
            self._step(cell, CellEvent.REFUSED)
            del self.failing[cell]
            self.last_seen_ms[cell] = ctx.now_ms()

    def _adopt(self, ctx: Context, chosen: RoutingRules) -> None:
        """A majority chose `chosen` (ours or the other controller's): act on it."""
        assert chosen.version == self.rules.version + 1, (chosen.version, self.rules.version)
        ctx.cancel_timer(_LOG_RETRY)
        self.retry_ms.pop(_LOG_RETRY, None)
        self.rules = chosen
        ctx.trace("rules-chosen", version=chosen.version, moved=",".join(sorted(chosen.moved)))
        for move in [m for m in self.moves if _moved(chosen, m) == chosen]:
            self.moves.remove(move)  # in this version (or an earlier one)
            to = chosen.home_of(move.to_cell)
            ctx.trace("range-move", buckets=bucket_list(move.buckets), to=to,
                      version=chosen.version)  # fmt: skip
        for cell in sorted(chosen.moved):
            if self.state.get(cell) in (CellState.WATCHED, CellState.SUSPECT):
                self.failing.setdefault(cell, ctx.now_ms())
                self._step(cell, CellEvent.CHOSEN)
                self._promote(ctx, cell)
        ctx.disk.put("rules", chosen)
        ctx.disk.sync()
        if not self._promoting():
            self._publish(ctx, f"rules version {chosen.version}")
        self._propose(ctx)  # anything left (a suspect the chosen value did not move)

    # --8<-- [end:fenced]

    def _promoting(self) -> bool:
        return any(st is CellState.PROMOTING for st in self.state.values())

    def _publish(self, ctx: Context, reason: str) -> None:
        ctx.disk.put("rules", self.rules)
        ctx.disk.sync()
        ctx.send(self.gzone, SetRules(self.rules, reason))
        self._arm_retry(ctx, "rules-retry")

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


def _failed_over(rules: RoutingRules, cell: str, standby: str, base: int = -1) -> RoutingRules:
    """`rules` with `cell`'s buckets and data moved to `standby`: the version after
    `base` (several changes built on one base make one version), or after `rules`."""
    version = rules.version + 1 if base < 0 else base + 1
    buckets = tuple(standby if owner == cell else owner for owner in rules.buckets)
    return RoutingRules(version, buckets, {**rules.moved, cell: standby})


def _moved(rules: RoutingRules, msg: MoveRange, base: int = -1) -> RoutingRules:
    """`rules` with `msg.buckets` moved to wherever `msg.to_cell`'s data lives now."""
    to = rules.home_of(msg.to_cell)
    buckets = list(rules.buckets)
    for b in msg.buckets:
        buckets[b] = to
    if tuple(buckets) == rules.buckets:
        return rules
    version = rules.version + 1 if base < 0 else base + 1
    return RoutingRules(version, tuple(buckets), dict(rules.moved))
