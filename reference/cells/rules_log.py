"""The routing rules' versions, each chosen by a majority of cities (one Paxos slot each).

Chapter 3's controller is the one writer of the rules: it mints version
n + 1 on its own. Give it a standby in another city and there are two
writers; cut a city off and each sees the other side's cells go silent,
fails them over, and mints *its own* version n + 1. Gateways then hold two
rule sets under one number, and one uid bucket has two owners.

The fix is chapter 4's: a version is a slot of a replicated log, and a
slot's value is what a majority of acceptors (one per city: the CZones)
accepted. A controller that wants version n + 1 runs single-decree Paxos
for slot n + 1 (`RulesProposer`, below). Two consequences:

- one version, one rule set, whoever proposes: two proposals for a slot
  meet in the acceptor they share, and the later adopts the earlier's value;
- a controller cut off with a minority of cities cannot commit anything, so
  its opinion that the majority's cells are dead changes nothing: it keeps
  asking until the cut heals, and then learns what the majority chose.

The fence decides who may write a version, not whether a cell is dead. So
each acceptor is also its city's *witness*: it probes every cell's gateway
itself (`Witness`), and it refuses to accept a version that fails over a
cell its own probes still hear (`RulesRefused`, naming the cell). A failover
is chosen only if a majority of cities found the cell silent, not just the
controller that proposes it. A refusal is for good at that ballot, and it
tells the proposer something Paxos alone would not: once a majority refused
a value, nothing was chosen for the slot at or below that ballot (an
acceptor never refuses the value it already accepted, so a chosen value is
never refused by a majority). The proposer may then ignore the values
accepted at those ballots, or one city that could not see a live cell would
hold the slot for as long as the others can.

All three classes are sans-IO: they take messages (and the time) and return
the messages to send; the controller and the CZone own the network, the
clock and the disk.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from reference.cells.messages import (
    Ballot,
    RulesAccept,
    RulesAccepted,
    RulesNack,
    RulesPrepare,
    RulesPromise,
    RulesRefused,
)
from reference.codec import Message
from reference.gateway.router import RoutingRules
from reference.node import NodeId

__all__ = ["NO_BALLOT", "Proposal", "RulesAcceptor", "RulesProposer", "Witness"]

NO_BALLOT: Ballot = (0, "")  # below every real ballot (rounds start at 1)

Send = list[tuple[NodeId, Message]]


# --8<-- [start:witness]
@dataclass
class Witness:
    """One city's own view of the cells: when its probes last heard each cell's gateway.

    The CZone sends the probes and passes each answer and the time in; a cell is
    alive to this city while it answered within `suspect_after_ms`. A cell it does
    not watch is never alive to it (it has no probes, so no objection)."""

    gateways: Mapping[str, NodeId]  # cell -> the gateway probed
    suspect_after_ms: float
    last_heard_ms: dict[str, float] = field(default_factory=dict)

    def start(self, now_ms: float) -> None:
        """Every cell gets a full suspicion period from (re)start, as at the controller."""
        self.last_heard_ms = dict.fromkeys(self.gateways, now_ms)

    def heard(self, gateway: NodeId, now_ms: float) -> None:
        for cell, gw in self.gateways.items():
            if gw == gateway:
                self.last_heard_ms[cell] = now_ms

    def alive(self, cells: Collection[str], now_ms: float) -> tuple[str, ...]:
        """Of `cells`, those this city still hears."""
        return tuple(
            c for c in sorted(cells)
            if c in self.last_heard_ms and now_ms - self.last_heard_ms[c] <= self.suspect_after_ms
        )  # fmt: skip


# --8<-- [end:witness]


# --8<-- [start:acceptor]
@dataclass
class RulesAcceptor:
    """One city's vote on each version: the highest ballot promised, the value accepted,
    and the ballot at which it refused a value as a witness.

    The caller makes all three durable before sending a reply (a vote forgotten in
    a crash could let two values be chosen; a refusal forgotten, one value)."""

    promised: dict[int, Ballot] = field(default_factory=dict)  # version -> ballot
    accepted: dict[int, tuple[Ballot, RoutingRules]] = field(default_factory=dict)
    refused: dict[int, Ballot] = field(default_factory=dict)  # version -> ballot refused

    def on_prepare(self, msg: RulesPrepare, me: NodeId) -> Message:
        if msg.ballot <= self.promised.get(msg.version, NO_BALLOT):
            return RulesNack(msg.version, self.promised[msg.version], me)
        self.promised[msg.version] = msg.ballot
        ballot, rules = self.accepted.get(msg.version, (NO_BALLOT, None))
        return RulesPromise(msg.version, msg.ballot, ballot, rules, me)

    def on_accept(self, msg: RulesAccept, me: NodeId, alive: Collection[str] = ()) -> Message:
        """`alive`: the cells among `msg.fails` that this city's probes still hear."""
        assert msg.rules.version == msg.version, msg
        if msg.ballot < self.promised.get(msg.version, NO_BALLOT):
            return RulesNack(msg.version, self.promised[msg.version], me)
        if msg.ballot == self.refused.get(msg.version):
            return RulesRefused(msg.version, msg.ballot, tuple(alive), me)  # refused for good
        mine = self.accepted.get(msg.version)
        if alive and (mine is None or mine[1] != msg.rules):
            # Never the value already accepted: it may be chosen, and a chosen value
            # must stay learnable (and a majority's refusal must prove it unchosen).
            self.promised[msg.version] = self.refused[msg.version] = msg.ballot
            return RulesRefused(msg.version, msg.ballot, tuple(alive), me)
        self.promised[msg.version] = msg.ballot
        self.accepted[msg.version] = (msg.ballot, msg.rules)
        return RulesAccepted(msg.version, msg.ballot, me)


# --8<-- [end:acceptor]


class Phase(enum.Enum):
    IDLE = "idle"  # nothing proposed
    PREPARING = "preparing"  # phase 1: asking a majority to promise our ballot
    ACCEPTING = "accepting"  # phase 2: asking a majority to accept a value


class Event(enum.Enum):
    PROPOSE = "propose"
    PROMISED = "majority promised"
    ACCEPTED = "majority accepted"  # the value is chosen
    REJECTED = "nack"  # an acceptor promised a higher ballot
    TIMEOUT = "timeout"  # no majority answered in time (a cut, lost messages)
    ABANDON = "abandon"  # the caller no longer wants anything (its suspects answered)
    WITNESSED = "majority refused"  # a majority of cities still hear a cell the value fails


# --8<-- [start:proposer-table]
# h11 style: every transition the proposer makes, and nothing else.
TRANSITIONS: dict[tuple[Phase, Event], Phase] = {
    (Phase.IDLE, Event.PROPOSE): Phase.PREPARING,
    (Phase.PREPARING, Event.PROMISED): Phase.ACCEPTING,
    (Phase.PREPARING, Event.REJECTED): Phase.PREPARING,  # a higher ballot, again
    (Phase.PREPARING, Event.TIMEOUT): Phase.PREPARING,
    (Phase.ACCEPTING, Event.ACCEPTED): Phase.IDLE,
    (Phase.ACCEPTING, Event.REJECTED): Phase.PREPARING,
    (Phase.ACCEPTING, Event.TIMEOUT): Phase.PREPARING,
    (Phase.ACCEPTING, Event.WITNESSED): Phase.PREPARING,  # unchosen up to here: free again
    (Phase.PREPARING, Event.ABANDON): Phase.IDLE,
    (Phase.ACCEPTING, Event.ABANDON): Phase.IDLE,  # safe: a later proposer finds the value
}
# --8<-- [end:proposer-table]


@dataclass(frozen=True)
class Proposal:
    """What a step of the proposer produced: messages to send, the chosen value, and
    whether a majority of witnesses refused the value (`vetoed`), naming the cells
    they still hear (`refused`)."""

    send: Send
    chosen: RoutingRules | None = None
    vetoed: bool = False
    refused: tuple[str, ...] = ()


class RulesProposer:
    """Single-decree Paxos for one version at a time: version `base.version + 1`.

    The proposer does not pick its value freely: if a promise reports a value
    already accepted for the slot, the highest-ballot one is proposed instead
    (it may be chosen already). So the chosen value may be another
    controller's; the caller adopts it as its new base and proposes again
    for whatever it still wants (`Proposal.chosen`)."""

    def __init__(self, me: str, acceptors: Sequence[NodeId], first_round: int = 0) -> None:
        """`first_round`: above every round this proposer used before (the caller keeps it
        on disk: a ballot reused for another value after a crash could choose two)."""
        assert len(acceptors) % 2 == 1 and len(set(acceptors)) == len(acceptors), acceptors
        self.me = me
        self.acceptors = tuple(acceptors)
        self.majority = len(self.acceptors) // 2 + 1
        self.phase = Phase.IDLE
        self.round = first_round
        self.ballot: Ballot = NO_BALLOT
        self.want: RoutingRules | None = None  # our value for the slot
        self.base: RoutingRules | None = None  # the version before the slot (chosen)
        self.value: RoutingRules | None = None  # the value of phase 2 (ours or adopted)
        self.promises: dict[NodeId, tuple[Ballot, RoutingRules | None]] = {}
        self.accepts: set[NodeId] = set()
        self.refusals: dict[NodeId, tuple[str, ...]] = {}  # this ballot's, by acceptor
        # version -> a ballot a majority refused: nothing was chosen at it or below
        self.unchosen_up_to: dict[int, Ballot] = {}
        self.chosen: dict[int, RoutingRules] = {}  # every version learned, for the invariant

    @property
    def version(self) -> int:
        assert self.want is not None
        return self.want.version

    def _step(self, event: Event) -> None:
        nxt = TRANSITIONS.get((self.phase, event))
        assert nxt is not None, f"no transition from {self.phase} on {event}"
        self.phase = nxt

    def propose(self, want: RoutingRules, base: RoutingRules) -> Proposal:
        """Start phase 1 for `want.version`, the version after `base` (the last chosen)."""
        assert want.version == base.version + 1, (want.version, base.version)
        self._step(Event.PROPOSE)
        self.want, self.base = want, base
        return self._prepare()

    def _prepare(self) -> Proposal:
        assert self.phase is Phase.PREPARING
        self.round += 1
        self.ballot = (self.round, self.me)
        self.promises, self.accepts, self.refusals, self.value = {}, set(), {}, None
        msg = RulesPrepare(self.version, self.ballot)
        return Proposal([(a, msg) for a in self.acceptors])

    def on_promise(self, msg: RulesPromise) -> Proposal:
        if self.phase is not Phase.PREPARING or msg.ballot != self.ballot:
            return Proposal([])  # late: from an earlier round
        self.promises[msg.node] = (msg.accepted_ballot, msg.accepted)
        if len(self.promises) < self.majority:
            return Proposal([])
        self._step(Event.PROMISED)
        # The highest-ballot value accepted may be chosen: propose it, unless a
        # majority's refusal showed that nothing was chosen at its ballot.
        floor = self.unchosen_up_to.get(self.version, NO_BALLOT)
        held = [(b, v) for b, v in self.promises.values() if v is not None and b > floor]
        self.value = max(held, key=lambda p: p[0])[1] if held else self.want
        assert self.value is not None and self.base is not None
        assert self.value.version == self.version
        fails = tuple(sorted(set(self.value.moved) - set(self.base.moved)))
        msg_accept = RulesAccept(self.version, self.ballot, self.value, fails)
        return Proposal([(a, msg_accept) for a in self.acceptors])

    def on_accepted(self, msg: RulesAccepted) -> Proposal:
        if self.phase is not Phase.ACCEPTING or msg.ballot != self.ballot:
            return Proposal([])
        self.accepts.add(msg.node)
        if len(self.accepts) < self.majority:
            return Proposal([])
        self._step(Event.ACCEPTED)
        value = self.value
        assert value is not None
        # The invariant this module exists for: one version, one rule set.
        assert self.chosen.setdefault(value.version, value) == value, (value, self.chosen)
        self.want = None
        return Proposal([], chosen=value)

    def on_nack(self, msg: RulesNack) -> Proposal:
        """A higher ballot was promised: start over above it (after the caller's pause)."""
        if self.phase is Phase.IDLE or msg.version != self.version or msg.promised <= self.ballot:
            return Proposal([])  # nothing in flight, or a nack from an earlier round
        self.round = max(self.round, msg.promised[0])
        self._step(Event.REJECTED)
        return Proposal([])  # the caller retries on its timer: two proposers do not duel

    def on_refused(self, msg: RulesRefused) -> Proposal:
        """A witness's veto. Once a majority refused this ballot's value it cannot be
        chosen here, nor was it (or anything) chosen before: the next round ignores the
        values accepted up to this ballot. The caller hears which cells the refusers
        still hear (it stops suspecting them) and starts that round (`on_timeout`)."""
        if self.phase is not Phase.ACCEPTING or msg.ballot != self.ballot:
            return Proposal([])
        self.refusals[msg.node] = msg.alive
        if len(self.acceptors) - len(self.refusals) >= self.majority:
            return Proposal([])  # a majority may still accept
        self._step(Event.WITNESSED)
        self.unchosen_up_to[self.version] = self.ballot
        alive = sorted({c for cells in self.refusals.values() for c in cells})
        return Proposal([], vetoed=True, refused=tuple(alive))

    def on_timeout(self, want: RoutingRules | None) -> Proposal:
        """The retry timer fired: run phase 1 again with a higher ballot, for what the
        caller wants now (a value of our own may change between rounds: phase 2 still
        takes an accepted value over it), or give up if it wants nothing."""
        if self.phase is Phase.IDLE:
            return Proposal([])
        if want is None:
            self._step(Event.ABANDON)
            self.want = None
            return Proposal([])
        assert self.want is not None and want.version == self.want.version, (want, self.want)
        self._step(Event.TIMEOUT)
        self.want = want
        return self._prepare()
