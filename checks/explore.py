"""Exhaustive small-scope exploration of the Paxos group, in the style of DSLabs.

The explorer drives the real `Replica` and `Arbiter` classes through its own
`Context`, and walks breadth-first through every order in which the world
can let things happen:

- deliver any message in flight (the network is asynchronous: a message may
  wait while any number of other events happen),
- drop one, or deliver a copy and keep the original (bounded budgets),
- fire the timer due earliest (time jumps to it: timers are exact, every
  node's clock is true time plus its own fixed skew), while the node that
  owns it has timer firings left in its budget,
- crash a node and restart it at once from what it had synced (bounded).

States are deduplicated on a hash of every node's state, every disk (live
and durable), the multiset of messages in flight, the timers, the clock and
the budgets. In every reachable state it checks:

- agreement: no slot ever has two values chosen, where "chosen" means
  accepted by a phase-2 quorum of the group at one ballot, and no two
  replicas ever learn different values for one slot;
- validity: only batches of commands that clients proposed (or the no-op)
  are ever learned;
- lease reads: a read a leader answers reflects every slot any replica has
  learned as committed (no stale read).

Breadth-first search finds a shortest violating schedule, printed as the
counterexample trace. Ghost state (what was ever chosen or learned, the
highest commit index ever seen, the answers to reads) is part of the state
hash, so two schedules that reach the same nodes by different histories are
not merged when a check could tell them apart.

A `Scenario` bounds the world: which client requests are in flight at the
start, how many timer firings each node gets, how many crashes (and of
whom), drops and duplicates, each node's clock skew, and optionally a
partition that holds from the start (`cut`), which keeps a hunt inside the
interesting part of the space. `SMALL_SCOPE` (about 17,000 states) is the
default exhaustive run; the zoo (checks/zoo.py) holds one scenario per
planted bug. `Driver` runs a world by hand from a script: the golden traces
in tests/paxos/golden/ are made with it.
"""

from __future__ import annotations

import copy
import random
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from reference.codec import Message
from reference.disk.base import Disk, DiskError
from reference.node import Node, NodeId
from reference.paxos import messages as m
from reference.paxos.arbiter import Arbiter
from reference.paxos.config import PaxosConfig
from reference.paxos.kvstore import KVStore
from reference.paxos.replica import Replica

CLIENT = "client"


class ExploreDisk:
    """A Disk with crash semantics that is cheap to copy and to hash."""

    def __init__(self) -> None:
        self.live: dict[str, Any] = {}
        self.durable: dict[str, Any] = {}
        self.live_logs: dict[str, tuple[int, list[Any]]] = {}
        self.durable_logs: dict[str, tuple[int, list[Any]]] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.live.get(key, default)

    def put(self, key: str, value: Any) -> None:
        self.live[key] = value

    def delete(self, key: str) -> None:
        self.live.pop(key, None)

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(k for k in self.live if k.startswith(prefix))

    def append(self, log: str, record: Any) -> int:
        first, records = self.live_logs.setdefault(log, (0, []))
        records.append(record)
        return first + len(records) - 1

    def read_log(self, log: str, start: int | None = None) -> list[tuple[int, Any]]:
        first, records = self.live_logs.get(log, (0, []))
        begin = first if start is None else max(start, first)
        return [(i, records[i - first]) for i in range(begin, first + len(records))]

    def log_bounds(self, log: str) -> tuple[int, int]:
        first, records = self.live_logs.get(log, (0, []))
        return first, first + len(records)

    def truncate_prefix(self, log: str, before: int) -> None:
        first, records = self.live_logs.get(log, (0, []))
        drop = max(0, min(before - first, len(records)))
        self.live_logs[log] = (first + drop, records[drop:])

    def truncate_suffix(self, log: str, from_index: int) -> None:
        first, records = self.live_logs.get(log, (0, []))
        if from_index < first:
            raise DiskError(f"truncate_suffix({log!r}, {from_index}): compacted before {first}")
        self.live_logs[log] = (first, records[: from_index - first])

    def sync(self) -> None:
        self.durable = dict(self.live)
        self.durable_logs = {k: (f, list(r)) for k, (f, r) in self.live_logs.items()}

    def crash(self) -> None:
        self.live = dict(self.durable)
        self.live_logs = {k: (f, list(r)) for k, (f, r) in self.durable_logs.items()}

    def clone(self) -> ExploreDisk:
        other = ExploreDisk.__new__(ExploreDisk)
        other.live, other.durable = dict(self.live), self.durable  # durable: copy on write
        other.live_logs = {k: (f, list(r)) for k, (f, r) in self.live_logs.items()}
        other.durable_logs = self.durable_logs
        return other

    def key(self) -> tuple[object, ...]:
        live = tuple(sorted(self.live.items()))
        durable = tuple(sorted(self.durable.items()))
        logs = tuple(sorted((k, f, tuple(r)) for k, (f, r) in self.live_logs.items()))
        return (live, durable if durable != live else None, logs)


class _Ctx:
    """The explorer's Context for one node during one step."""

    def __init__(self, world: World, node_id: NodeId) -> None:
        self.world = world
        self.node_id = node_id
        self.disk: Disk = world.disks[node_id]

    @property
    def random(self) -> random.Random:
        # Explored nodes must be deterministic functions of their state, so
        # the scenario's config disables jitter; a draw here is a bug.
        raise AssertionError(f"{self.node_id} drew from ctx.random during exploration")

    @random.setter
    def random(self, value: random.Random) -> None:
        raise AssertionError(f"{self.node_id} replaced ctx.random during exploration")

    def now_ms(self) -> float:
        return self.world.time_ms + self.world.scenario.skew_ms.get(self.node_id, 0.0)

    def send(self, dst: NodeId, msg: Message) -> None:
        if dst == CLIENT:
            self.world.replies.append((self.node_id, msg))
        elif self.world.is_cut(self.node_id, dst):
            self.world.sent.append((self.node_id, dst, msg, False))  # the partition eats it
        else:
            assert dst in self.world.nodes, f"{self.node_id} sent to unknown node {dst}"
            self.world.enqueue(self.node_id, dst, msg)

    def set_timer(self, delay_ms: float, tag: Hashable) -> None:
        assert delay_ms >= 0, (tag, delay_ms)
        self.world.timers[(self.node_id, tag)] = self.world.time_ms + delay_ms

    def cancel_timer(self, tag: Hashable) -> None:
        self.world.timers.pop((self.node_id, tag), None)

    def work(self, duration_ms: float) -> None:
        assert duration_ms >= 0

    # Counters and histograms are no part of a state the explorer compares,
    # so they are dropped; traces are kept, for the counterexample's story.
    def count(self, name: str, n: int = 1) -> None:
        return None

    def observe(self, name: str, value: float) -> None:
        return None

    def trace(self, kind: str, **fields: Any) -> None:
        self.world.traces.append((self.node_id, kind, fields))


@dataclass(frozen=True)
class Scenario:
    """One small configuration to explore."""

    name: str
    membership: m.Membership
    requests: tuple[tuple[NodeId, Message], ...]  # client messages in flight at time 0
    timer_budget: dict[NodeId, int]  # timer firings per node
    crashes: int = 0
    crashable: tuple[NodeId, ...] | None = None  # who may crash (None: anyone)
    cut: tuple[tuple[NodeId, NodeId], ...] = ()  # partitioned pairs: both ways, all along
    drops: int = 0
    duplicates: int = 0
    skew_ms: dict[NodeId, float] = field(default_factory=dict)
    mutations: frozenset[str] = frozenset()
    config: dict[str, Any] = field(default_factory=dict)  # PaxosConfig overrides
    max_states: int = 200_000

    def paxos_config(self) -> PaxosConfig:
        return PaxosConfig(membership=self.membership, mutations=self.mutations, **self.config)

    def with_mutations(self, mutations: frozenset[str]) -> Scenario:
        return Scenario(**{**self.__dict__, "mutations": mutations})


class Violation(Exception):
    """A safety property failed in some reachable state."""


class World:
    """One global state: nodes, disks, messages in flight, timers, clock, budgets."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.cfg = scenario.paxos_config()
        self.nodes: dict[NodeId, Replica | Arbiter] = {}
        self.disks: dict[NodeId, ExploreDisk] = {}
        self.node_keys: dict[NodeId, int] = {}  # cached hash of each untouched node
        # The multiset of messages in flight: any may be delivered next.
        self.inflight: dict[tuple[NodeId, NodeId, Message], int] = {}
        self.timers: dict[tuple[NodeId, Hashable], float] = {}
        self.time_ms = 0.0
        self.timer_budget = dict(scenario.timer_budget)
        self.crashes, self.drops, self.duplicates = (
            scenario.crashes,
            scenario.drops,
            scenario.duplicates,
        )
        # Ghost state: what the checks remember across steps.
        self.chosen: dict[int, m.Batch] = {}
        self.learned: dict[int, m.Batch] = {}
        self.max_commit = 0
        self.reads: tuple[tuple[str, bool, int], ...] = ()  # answered lease reads
        # Output of the current step.
        self.replies: list[tuple[NodeId, Message]] = []
        self.traces: list[tuple[NodeId, str, dict[str, Any]]] = []
        self.sent: list[tuple[NodeId, NodeId, Message, bool]] = []
        self.cut = frozenset(scenario.cut)
        self.proposed = {
            (msg.request_id, msg.command)
            for _, msg in scenario.requests
            if isinstance(msg, m.Propose)
        }
        for voter in self.cfg.membership.voters():
            self.disks[voter] = ExploreDisk()
            self.nodes[voter] = self._make(voter)
        for voter in self.cfg.membership.voters():
            self.nodes[voter].on_start(_Ctx(self, voter))
        for dst, msg in scenario.requests:
            self.enqueue(CLIENT, dst, msg)
        self.check()

    def _make(self, node_id: NodeId) -> Replica | Arbiter:
        if node_id == self.cfg.membership.arbiter:
            return Arbiter(node_id, self.cfg)
        return Replica(node_id, self.cfg, KVStore)

    def clone(self) -> World:
        """A copy that shares every node and disk until `_touch` copies one."""
        other = copy.copy(self)
        other.nodes, other.disks = dict(self.nodes), dict(self.disks)
        other.node_keys = dict(self.node_keys)
        other.inflight = dict(self.inflight)
        other.timers = dict(self.timers)
        other.timer_budget = dict(self.timer_budget)
        other.chosen, other.learned = dict(self.chosen), dict(self.learned)
        other.replies, other.traces, other.sent = [], [], []
        return other

    def _touch(self, node_id: NodeId) -> None:
        """Copy the node and disk an action is about to change (copy on write)."""
        memo: dict[int, object] = {id(self.cfg): self.cfg, id(self.scenario): self.scenario}
        self.nodes[node_id] = _clone_node(self.nodes[node_id], memo)
        self.disks[node_id] = self.disks[node_id].clone()
        self.node_keys.pop(node_id, None)

    def key(self) -> int:
        for node_id, node in self.nodes.items():
            if node_id not in self.node_keys:
                state = node.state_key()
                self.node_keys[node_id] = hash((state, self.disks[node_id].key()))
        return hash(
            (
                tuple(self.node_keys[n] for n in self.nodes),  # fixed order
                frozenset(self.inflight.items()),
                frozenset(self.timers.items()),
                self.time_ms,
                tuple(sorted(self.timer_budget.items())),
                self.crashes,
                self.drops,
                self.duplicates,
                tuple(sorted(self.chosen.items())),
                tuple(sorted(self.learned.items())),
                self.max_commit,
                self.cut,
                self.reads,  # a read's answer is an event: two paths differ by it
            )
        )

    # -- actions -------------------------------------------------------------

    def is_cut(self, src: NodeId, dst: NodeId) -> bool:
        return (src, dst) in self.cut or (dst, src) in self.cut

    def enqueue(self, src: NodeId, dst: NodeId, msg: Message) -> None:
        self.sent.append((src, dst, msg, True))
        item = (src, dst, msg)
        self.inflight[item] = self.inflight.get(item, 0) + 1

    def actions(self) -> Iterator[tuple[str, Any]]:
        items = sorted(self.inflight, key=_order)
        for item in items:
            yield ("deliver", item)
        for kind, budget in (("duplicate", self.duplicates), ("drop", self.drops)):
            if budget:
                for item in items:
                    yield (kind, item)
        live = [
            (due, str(t[0]), t)
            for t, due in self.timers.items()
            if self.timer_budget.get(t[0], 0) > 0
        ]
        if live:
            first = min(due for due, _, _ in live)
            for due, _, timer in sorted(live):
                if due == first:
                    yield ("fire", (*timer, due))
        if self.crashes:
            for node_id in self.scenario.crashable or tuple(self.nodes):
                yield ("crash", node_id)

    def apply(self, action: tuple[str, Any]) -> None:
        kind, arg = action
        if kind in ("deliver", "duplicate", "drop"):
            src, dst, msg = arg
            if kind != "duplicate":
                self.inflight[arg] -= 1
                if not self.inflight[arg]:
                    del self.inflight[arg]
            if kind == "duplicate":
                self.duplicates -= 1
            if kind == "drop":
                self.drops -= 1
                return
            self._touch(dst)
            self.nodes[dst].on_message(_Ctx(self, dst), src, msg)
        elif kind == "fire":
            node_id, tag, _ = arg
            self.time_ms = max(self.time_ms, self.timers.pop((node_id, tag)))
            self.timer_budget[node_id] -= 1
            self._touch(node_id)
            self.nodes[node_id].on_timer(_Ctx(self, node_id), tag)
        elif kind == "crash":
            self.crashes -= 1
            self._touch(arg)
            self.disks[arg].crash()
            for timer in [t for t in self.timers if t[0] == arg]:
                del self.timers[timer]
            self.nodes[arg] = self._make(arg)
            self.traces.append((arg, "crash", {}))
            self.nodes[arg].on_start(_Ctx(self, arg))
        else:  # pragma: no cover - actions are this module's own
            raise AssertionError(kind)

    # -- checks ----------------------------------------------------------------

    def check(self) -> None:
        """Raise Violation if this state breaks agreement, validity or a lease read."""
        max_commit_before = self.max_commit
        for node_id, kind, fields in self.traces:
            if kind != "paxos.learn":
                continue
            slot, batch = fields["slot"], fields["batch"]
            if slot in self.learned and self.learned[slot] != batch:
                raise Violation(
                    f"agreement: {node_id} learned {_fmt_batch(batch)} at slot {slot}, "
                    f"another replica learned {_fmt_batch(self.learned[slot])}"
                )
            self.learned[slot] = batch
            if any(cmd not in self.proposed for cmd in batch):
                raise Violation(f"validity: {node_id} learned {_fmt_batch(batch)}, never proposed")
        for node in self.nodes.values():
            if isinstance(node, Replica):
                self.max_commit = max(self.max_commit, node.commit_index)
        self._check_chosen()
        for node_id, reply in self.replies:
            if (
                isinstance(reply, m.ReadResult)
                and reply.ok
                and reply.applied_index < max_commit_before
            ):
                raise Violation(
                    f"stale read: {node_id} answered {reply.request_id} as of slot "
                    f"{reply.applied_index}, but slot {max_commit_before} was already committed"
                )

    def _check_chosen(self) -> None:
        membership = self.cfg.membership
        votes: dict[tuple[int, m.Ballot, m.Batch], int] = {}
        for node_id, node in self.nodes.items():
            if isinstance(node, Replica) and node_id in membership.data:
                for slot, (ballot, batch) in node.accepted.items():
                    votes[(slot, ballot, batch)] = votes.get((slot, ballot, batch), 0) + 1
        for (slot, ballot, batch), count in votes.items():
            if count < membership.q2_size():
                continue
            if slot in self.chosen and self.chosen[slot] != batch:
                raise Violation(
                    f"agreement: slot {slot} chose {_fmt_batch(batch)} at ballot {ballot} "
                    f"after {_fmt_batch(self.chosen[slot])} was chosen"
                )
            self.chosen[slot] = batch


def _order(item: tuple[NodeId, NodeId, Message]) -> tuple[str, str, str]:
    return (item[0], item[1], repr(item[2]))


_N = TypeVar("_N", bound=Node)


def _clone_node(node: _N, memo: dict[int, object]) -> _N:
    clone = getattr(node, "clone", None)
    return clone() if clone is not None else copy.deepcopy(node, memo)


def _fmt_batch(batch: m.Batch) -> str:
    if not batch:
        return "noop"
    return "[" + ", ".join(f"{rid}:{cmd!r}" for rid, cmd in batch) + "]"


def describe(action: tuple[str, Any]) -> str:
    """One line of a counterexample trace."""
    kind, arg = action
    if kind in ("deliver", "duplicate", "drop"):
        src, dst, msg = arg
        return f"{kind:9} {src}->{dst} {format_message(msg)}"
    if kind == "fire":
        return f"fire      {arg[0]} timer {arg[1]!r} at t={arg[2]:g} ms"
    return f"crash     {arg} (and restart from its disk)"


def format_message(msg: Message) -> str:
    """A short, readable form of a protocol message."""
    if isinstance(msg, m.Prepare):
        return f"Prepare b={msg.ballot} commit={msg.commit_index}"
    if isinstance(msg, m.Promise):
        if not msg.ok:
            return f"Promise REFUSED b={msg.ballot} promised={msg.promised}"
        acc = " ".join(f"{s}:{b}={_fmt_batch(v)}" for s, b, v in msg.accepted)
        return f"Promise b={msg.ballot} accepted=[{acc}]" + (" +snapshot" if msg.snapshot else "")
    if isinstance(msg, m.Accept):
        batch = _fmt_batch(msg.batch)
        return f"Accept b={msg.ballot} slot={msg.slot} {batch} commit={msg.commit_index}"
    if isinstance(msg, m.Accepted):
        ok = "ok" if msg.ok else f"REFUSED promised={msg.promised}"
        return f"Accepted b={msg.ballot} slot={msg.slot} {ok}"
    if isinstance(msg, m.Heartbeat):
        lease = f"lease_until={msg.lease_until_ms:g}"
        return f"Heartbeat b={msg.ballot} round={msg.round} commit={msg.commit_index} {lease}"
    if isinstance(msg, m.HeartbeatAck):
        return f"HeartbeatAck b={msg.ballot} round={msg.round} {'ok' if msg.ok else 'REFUSED'}"
    if isinstance(msg, m.Propose):
        return f"Propose {msg.request_id} {msg.command!r}"
    if isinstance(msg, m.Read):
        return f"Read {msg.request_id} {msg.query!r}"
    return repr(msg)


@dataclass
class Result:
    """What one exploration found."""

    scenario: str
    states: int
    transitions: int
    seconds: float
    complete: bool  # the whole reachable space was explored
    violation: str | None = None
    trace: list[str] = field(default_factory=list)

    def summary(self) -> str:
        verdict = f"VIOLATION ({self.violation})" if self.violation else "no violation"
        scope = "exhaustive" if self.complete else "state cap reached"
        return (
            f"{self.scenario}: {verdict}; {self.states} states, {self.transitions} transitions, "
            f"{self.seconds:.1f} s ({scope})"
        )


def explore(scenario: Scenario, progress: Callable[[int], None] | None = None) -> Result:
    """Breadth-first search over every schedule of `scenario` (see the module docstring)."""
    started = time.perf_counter()
    root = World(scenario)
    root_key = root.key()
    parents: dict[int, tuple[int, tuple[str, Any]] | None] = {root_key: None}
    frontier: deque[tuple[int, World]] = deque([(root_key, root)])
    transitions = 0
    while frontier:
        key, world = frontier.popleft()
        for action in list(world.actions()):
            child = world.clone()
            transitions += 1
            child.apply(action)
            try:
                child.check()  # before hashing: the checks update the ghost state
            except Violation as exc:
                return Result(
                    scenario.name,
                    len(parents),
                    transitions,
                    time.perf_counter() - started,
                    complete=False,
                    violation=str(exc),
                    trace=[*_trace(parents, key), describe(action)],
                )
            child_key = child.key()
            if child_key in parents:
                continue
            parents[child_key] = (key, action)
            if len(parents) >= scenario.max_states:
                return Result(
                    scenario.name, len(parents), transitions, time.perf_counter() - started, False
                )
            frontier.append((child_key, child))
            if progress is not None and len(parents) % 10_000 == 0:
                progress(len(parents))
    return Result(scenario.name, len(parents), transitions, time.perf_counter() - started, True)


def _trace(parents: dict[int, tuple[int, tuple[str, Any]] | None], key: int) -> list[str]:
    steps: list[str] = []
    link = parents[key]
    while link is not None:
        parent, action = link
        steps.append(describe(action))
        link = parents[parent]
    return steps[::-1]


class Driver:
    """Runs a World by hand, for golden traces and scripted tests.

    Script commands, one per line (`#` starts a comment):

        fire NODE                  fire NODE's earliest timer (time jumps to it)
        deliver SRC DST [TYPE]     deliver the oldest matching message
        deliver-all                deliver until nothing is in flight
        settle MS                  deliver everything, firing timers, for MS ms
        propose NODE RID KEY INT   a client asks NODE to put KEY=INT
        read NODE RID KEY          a client asks NODE for a lease read of KEY
        crash NODE                 crash NODE and restart it from its disk
        cut A B | heal             partition A from B (both ways) | heal all
        state                      one line per node: role, ballot, log
    """

    def __init__(self, scenario: Scenario, max_steps: int = 10_000) -> None:
        budget = {n: max_steps for n in scenario.membership.voters()}
        self.world = World(Scenario(**{**scenario.__dict__, "timer_budget": budget}))
        self.max_steps = max_steps
        self.replies: list[tuple[NodeId, Message]] = []
        self.world.traces, self.world.sent = [], []

    def run_script(self, script: str) -> str:
        """Run each command; return the output, each block led by `> command`."""
        out: list[str] = []
        for raw in script.splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            out.append(f"> {line}")
            out.extend(self.command(line))
        return "\n".join(out) + "\n"

    def command(self, line: str) -> list[str]:
        words = line.split()
        op, args = words[0], words[1:]
        w = self.world
        if op == "fire":
            timers = [(due, t) for t, due in w.timers.items() if t[0] == args[0]]
            if not timers:
                return [f"error: {args[0]} has no timer armed"]
            due, (node_id, tag) = min(timers, key=lambda x: (x[0], str(x[1])))
            return self._step(("fire", (node_id, tag, due)))
        if op == "deliver":
            for item in w.inflight:
                src, dst, msg = item
                if (src, dst) == (args[0], args[1]) and (
                    len(args) < 3 or type(msg).__name__ == args[2]
                ):
                    return self._step(("deliver", item))
            return [f"error: nothing in flight from {args[0]} to {args[1]}"]
        if op == "deliver-all":
            lines: list[str] = []
            for _ in range(self.max_steps):
                if not w.inflight:
                    return lines
                lines.extend(self._step(("deliver", next(iter(w.inflight)))))
            return [*lines, "error: still not quiet"]
        if op == "settle":
            return self.settle(float(args[0]))
        if op == "propose":
            return self._client(args[0], m.Propose(args[1], ("put", args[2], int(args[3]))))
        if op == "read":
            return self._client(args[0], m.Read(args[1], args[2]))
        if op == "crash":
            return self._step(("crash", args[0]))
        if op == "cut":
            w.cut = w.cut | {(args[0], args[1])}
            return []
        if op == "heal":
            w.cut = frozenset()
            return []
        if op == "state":
            return [self._node_state(n) for n in w.nodes]
        return [f"error: unknown command {op!r}"]

    def settle(self, duration_ms: float, quiet: bool = True) -> list[str]:
        """Deliver every message and fire due timers until `duration_ms` later."""
        w = self.world
        until_ms = w.time_ms + duration_ms
        lines: list[str] = []
        for _ in range(self.max_steps):
            if w.inflight:
                lines.extend(self._step(("deliver", next(iter(w.inflight)))))
                continue
            due = [(d, str(t), t) for t, d in w.timers.items() if d <= until_ms]
            if not due:
                break
            d, _, (node_id, tag) = min(due)
            lines.extend(self._step(("fire", (node_id, tag, d))))
        w.time_ms = max(w.time_ms, until_ms)
        return [] if quiet else lines

    def _client(self, node_id: NodeId, msg: Message) -> list[str]:
        if isinstance(msg, m.Propose):
            self.world.proposed = self.world.proposed | {(msg.request_id, msg.command)}
        self.world.enqueue(CLIENT, node_id, msg)
        self.world.sent.clear()
        return []

    def _step(self, action: tuple[str, Any]) -> list[str]:
        w = self.world
        w.apply(action)
        w.check()
        lines = [describe(action)]
        for src, dst, msg, delivered in w.sent:
            lost = "" if delivered else "  (cut)"
            lines.append(f"    {src}->{dst} {format_message(msg)}{lost}")
        for node_id, kind, fields in w.traces:
            if kind in ("paxos.learn", "paxos.recovered"):
                continue
            detail = " ".join(f"{k}={v}" for k, v in fields.items())
            lines.append(f"    {node_id}: {kind} {detail}".rstrip())
        for node_id, reply in w.replies:
            lines.append(f"    {node_id}->client {reply!r}")
        self.replies.extend(w.replies)
        w.sent, w.traces, w.replies = [], [], []
        return lines

    def _node_state(self, node_id: NodeId) -> str:
        node = self.world.nodes[node_id]
        if not isinstance(node, Replica):
            return f"{node_id}: arbiter promised={node.promised}"
        log = " ".join(f"{s}={_fmt_batch(b)}" for s, b in sorted(node.chosen.items()))
        return (
            f"{node_id}: {node.role} ballot={node.ballot} promised={node.promised} "
            f"commit={node.commit_index} epoch={node.membership.epoch} log: {log}".rstrip()
        )


_THREE = m.Membership(1, ("n1", "n2", "n3"))

SMALL_SCOPE = Scenario(
    "3 acceptors, 2 proposers, 1 value",
    _THREE,
    requests=(("n1", m.Propose("r1", ("put", "x", 1))),),
    timer_budget={"n1": 1, "n2": 1, "n3": 0},  # n1 campaigns, then n2 competes
)
"""The default exhaustive run: every schedule of two competing proposers."""

SMALL_SCOPE_WITH_LOSS = Scenario(
    "3 acceptors, 2 proposers, 1 value, 1 message lost",
    _THREE,
    requests=(("n1", m.Propose("r1", ("put", "x", 1))),),
    timer_budget={"n1": 1, "n2": 1, "n3": 0},
    drops=1,
)
"""The bigger run (the slow tests): the same, and any one message may be lost."""

ARBITER_DEGRADE = Scenario(
    "2 replicas + arbiter, partitioned: degrade and commit alone",
    m.Membership(1, ("n1", "n2"), "a"),
    requests=(("n1", m.Propose("r1", ("put", "x", 1))), ("n2", m.Propose("r2", ("put", "x", 2)))),
    timer_budget={"n1": 4, "n2": 1, "a": 0},  # n1: election and three heartbeat rounds
    cut=(("n1", "n2"),),  # the replicas cannot see each other; both see the arbiter
    config={"arbitration_timeout_ms": 40.0},
)
"""Every schedule in which n1 degrades the group to itself (with the arbiter's
vote) and commits alone, while n2 campaigns through the arbiter."""
