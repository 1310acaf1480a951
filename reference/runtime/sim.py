"""SimRuntime: run sans-IO nodes in virtual time, deterministically, from a seed.

The API every other area codes against (see also /work/notes/SIM_API.md):

    topo = Topology.build({"hangzhou": {"hz-1": ["a", "b"]}, "shanghai": {"sh-1": ["c"]}})
    rt = SimRuntime(topology=topo, seed=7, net=NetConfig(), disk=DiskConfig(), strict=False)
    rt.add_node("a", factory)          # factory(node_id) -> Node, at boot and every restart
    rt.start()                         # on_start for every node added so far
    rt.now_ms                          # true simulated time (float ms)
    rt.step() -> bool; rt.run_until(t_ms); rt.run_for(duration_ms)
    rt.run_until_quiet(max_ms) -> bool # True when no event is left (max_ms is a duration)
    rt.run_paced(speed, until_ms, should_stop=None); rt.stop()
    rt.call_at(t_ms, fn); rt.call_after(delay_ms, fn)  # fn() in virtual time, outside nodes
    rt.crash(n); rt.restart(n); rt.pause(n); rt.resume(n)
    rt.set_clock(n, skew_ms=0.0, drift_ppm=0.0)  # node clock = t + skew + drift_ppm*1e-6*t
    rt.status(n) -> "up" | "crashed" | "paused"; rt.node(n); rt.disk(n); rt.node_ids()
    rt.queue_len(n)                    # events waiting at a busy or paused node
    rt.net                             # SimNet: partition/cut/isolate/heal/link_stats/config
    rt.telemetry                       # reference.telemetry.Telemetry
    rt.trace_digest() -> str           # 16 hex digits over every processed event
    rt.record_events(); rt.event_log() # keep every (time_ms, fingerprint), to diff two runs
    rt.context(n)                      # the live SimContext (a harness can send "as" n)
    rt.node_now_ms(n); rt.events_processed; rt.pending_events()

What a node sees is `SimContext` (the `reference.node.Context` protocol):
`now_ms()` (its own, possibly skewed clock), `send`, `set_timer` (re-arming
a tag replaces it), `cancel_timer`, `random` (its own seeded stream, new at
each restart), `disk`, `work(duration_ms)`, `count`, `observe`, `trace`.

Semantics in one place:
- Same seed and configuration: same run, event for event, same digest.
- `send` to an unknown node id raises ValueError; a non-message raises
  TypeError. With `strict=True` (or env D11_SIM_STRICT=1) every message is
  round-tripped through the codec as it is sent, as the real runtime would.
- `work(d)`: the node is busy for d ms; its later sends leave when the work
  ends, and events that arrive meanwhile wait in its inbox, in arrival order.
- Crash: the node object, its timers and inbox are gone; messages in flight
  to it are dropped; its disk loses unsynced writes. Restart builds a fresh
  node with the factory and calls `on_start`, which recovers from the disk.
- Crash in the middle of `work()`: what the node sent "after" the work
  never leaves.
- Pause: the node handles nothing (so it sends nothing); messages and timers
  that come due wait in its inbox and are handled on resume, in order.
- Clock: a node's `now_ms()` is `t + skew_ms + drift_ppm * 1e-6 * t`; its
  timers run on its own clock (a fast clock fires early in true time).
"""

from __future__ import annotations

import os
import random
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from reference.codec import CodecError, Message, decode, encode
from reference.disk.sim import SimDisk
from reference.net.sim import NetConfig, Port, SimNet
from reference.net.topology import Topology
from reference.node import UNHANDLED_COUNTER, Node, NodeFactory, NodeId, UnhandledMessage
from reference.sim.kernel import Kernel
from reference.sim.rng import stream
from reference.telemetry import Telemetry

__all__ = ["DiskConfig", "NetConfig", "SimContext", "SimRuntime", "first_divergence"]

_INF = float("inf")
_MSG = 0  # inbox entry kinds
_TIMER = 1
_INBOX_LIMIT = 100_000  # events a busy/paused node may hold before arrivals drop


@dataclass
class DiskConfig:
    sync_latency_ms: float = 0.5  # charged to the node like ctx.work
    tear_on_crash: bool = False  # a crash may leave a TornRecord at a log's end


class _Slot:
    """Everything the runtime keeps about one node id (survives its crashes)."""

    __slots__ = (
        "busy_until_ms",
        "ctx",
        "departing",
        "disk",
        "drift",
        "epoch",
        "factory",
        "gate_ms",
        "inbox",
        "incarnation",
        "index",
        "node",
        "node_id",
        "on_message",
        "on_timer",
        "paused",
        "rate",
        "skew_ms",
        "timers",
        "wake_pending",
    )

    def __init__(self, node_id: NodeId, index: int, factory: NodeFactory, disk: SimDisk) -> None:
        self.node_id = node_id
        self.index = index
        self.factory = factory
        self.disk = disk
        self.node: Node | None = None  # None while crashed (or not started)
        self.ctx: SimContext | None = None
        self.on_message: Callable[..., None] | None = None
        self.on_timer: Callable[..., None] | None = None
        self.epoch = 0  # bumped by each crash
        self.incarnation = 0  # bumped by each start: names the node's random stream
        self.busy_until_ms = 0.0  # end of the work the node has taken on
        # Events arriving at or before gate_ms wait in the inbox: it is
        # busy_until_ms, or inf while paused or crashed. Invariant: while the
        # inbox holds anything, gate_ms >= now (so nothing jumps the line).
        self.gate_ms = 0.0
        self.paused = False
        self.inbox: deque[tuple[int, Any, Any]] = deque()
        self.departing: list[tuple[float, Any]] = []  # (departure, event) of sends after work
        self.wake_pending = False
        self.timers: dict[Hashable, int] = {}  # tag -> token of the armed timer event
        self.skew_ms = 0.0
        self.drift = 0.0  # drift_ppm * 1e-6
        self.rate = 1.0  # 1 + drift: how fast the node's clock runs


class SimContext(Port):
    """The `Context` one incarnation of one node sees. Built by the runtime.

    `send` comes from `Port` (reference.net.sim): it is the network's side.
    """

    __slots__ = ("_fire", "_rt", "_slot", "disk", "random")

    def __init__(self, rt: SimRuntime, slot: _Slot, rng: random.Random) -> None:
        super().__init__(rt.net, slot.node_id, slot)
        self.random = rng
        self.disk = slot.disk
        self._rt = rt
        self._slot = slot
        self._fire = rt._fire

    # --8<-- [start:clock-skew]
    def now_ms(self) -> float:
        """This node's clock: true time (plus work in progress), skewed and drifting."""
        slot = self._slot
        t = self._kernel.now_ms
        if slot.busy_until_ms > t:
            t = slot.busy_until_ms  # inside work(): the node's "now" is when it ends
        return t + slot.skew_ms + slot.drift * t

    # --8<-- [end:clock-skew]

    # --8<-- [start:ctx-timer]
    def set_timer(self, delay_ms: float, tag: Hashable) -> None:
        assert delay_ms >= 0, f"{self.node_id}: timer {tag!r} set {delay_ms} ms in the past"
        slot = self._slot
        kernel = self._kernel
        start_ms = kernel.now_ms
        if slot.busy_until_ms > start_ms:
            start_ms = slot.busy_until_ms
        # The delay is measured on the node's own clock, which runs at `rate`:
        # a clock 10% fast fires a 100 ms timer after 91 ms of true time.
        due_ms = start_ms + delay_ms / slot.rate
        token = kernel.new_token()
        slot.timers[tag] = token  # re-arming replaces: the older event finds a stale token
        kernel.push(due_ms, (self._fire, slot, tag, token))

    def cancel_timer(self, tag: Hashable) -> None:
        self._slot.timers.pop(tag, None)  # the queued event will find no token

    # --8<-- [end:ctx-timer]

    # --8<-- [start:ctx-work]
    def work(self, duration_ms: float) -> None:
        assert duration_ms >= 0, f"{self.node_id}: work({duration_ms})"
        slot = self._slot
        now_ms = self._kernel.now_ms
        start_ms = slot.busy_until_ms if slot.busy_until_ms > now_ms else now_ms
        slot.busy_until_ms = start_ms + duration_ms
        if not slot.paused:
            slot.gate_ms = slot.busy_until_ms  # arrivals before this wait in the inbox

    # --8<-- [end:ctx-work]

    def count(self, name: str, n: int = 1) -> None:
        self._rt.telemetry.count(self.node_id, name, n)

    def observe(self, name: str, value: float) -> None:
        self._rt.telemetry.observe(self.node_id, name, value)

    def trace(self, kind: str, **fields: Any) -> None:
        self._rt.telemetry.trace(self.node_id, kind, **fields)


class StrictSimContext(SimContext):
    """A context that round-trips every message through the codec as it is
    sent (strict mode), as the process runtime would: a message the codec
    cannot carry fails here, at the send, naming both nodes."""

    __slots__ = ()

    def send(self, dst: NodeId, msg: Message) -> None:
        if isinstance(msg, Message):
            try:
                back = decode(encode(msg))
            except CodecError as exc:
                raise TypeError(
                    f"{self.node_id!r} -> {dst!r}: {msg!r:.120} fails the codec: {exc}"
                ) from None
            if back != msg:
                raise TypeError(f"{self.node_id!r} -> {dst!r}: {msg!r:.120} does not round-trip")
        super().send(dst, msg)


class SimRuntime:
    """Runs nodes on a simulated network in virtual time. See the module docstring."""

    def __init__(
        self,
        topology: Topology,
        seed: int = 0,
        net: NetConfig | None = None,
        disk: DiskConfig | None = None,
        strict: bool | None = None,
    ) -> None:
        self.topology = topology
        self.seed = seed
        self.disk_config = disk or DiskConfig()
        self.strict = os.environ.get("D11_SIM_STRICT") == "1" if strict is None else strict
        self._kernel = Kernel()
        self._kernel.arrival_blocked = self._arrival_blocked
        self._kernel.unhandled = self._unhandled
        self._slots: dict[NodeId, _Slot] = {}
        self._started = False
        self._placement: dict[str, tuple[str, str]] = {}
        self.telemetry = Telemetry(clock=self._clock, placement=self._place_of)
        self.net = SimNet(
            topology,
            self._kernel,
            net or NetConfig(),
            stream(seed, "net"),
            self._trace_runtime,
        )

    # -- building -------------------------------------------------------------
    def add_node(self, node_id: NodeId, factory: NodeFactory) -> None:
        """Add a node placed in the topology; started now if the run has started."""
        if not self.topology.has_node(node_id):
            raise ValueError(f"add_node({node_id!r}): place it in the topology first")
        if node_id in self._slots:
            raise ValueError(f"add_node({node_id!r}): already added")
        if not callable(factory):
            raise TypeError(f"add_node({node_id!r}): factory must be callable")
        disk = SimDisk(self.disk_config.sync_latency_ms, self.disk_config.tear_on_crash)
        slot = _Slot(node_id, len(self._slots), factory, disk)
        slot.index = self.net.attach(node_id, slot)
        self._slots[node_id] = slot
        self._placement[node_id] = (self.topology.cell_of(node_id), self.topology.city_of(node_id))
        if self._started:
            self._boot(slot)

    def start(self) -> None:
        """Call on_start on every node added so far (in the order added)."""
        if self._started:
            raise RuntimeError("SimRuntime.start() called twice")
        self._started = True
        for slot in list(self._slots.values()):
            self._boot(slot)

    def _boot(self, slot: _Slot) -> None:
        node = slot.factory(slot.node_id)
        if not isinstance(node, Node):
            raise TypeError(
                f"factory for {slot.node_id!r} returned {type(node).__name__}, not a Node"
            )
        rng = stream(self.seed, f"node/{slot.node_id}/{slot.incarnation}")
        slot.incarnation += 1
        ctx = (StrictSimContext if self.strict else SimContext)(self, slot, rng)
        slot.disk.bind(ctx.work)
        slot.busy_until_ms = slot.gate_ms = 0.0
        slot.node, slot.ctx = node, ctx
        slot.on_message, slot.on_timer = node.on_message, node.on_timer
        node.on_start(ctx)

    # -- time -----------------------------------------------------------------
    @property
    def now_ms(self) -> float:
        return self._kernel.now_ms

    def _clock(self) -> float:
        return self._kernel.now_ms

    def step(self) -> bool:
        return self._kernel.step()

    def run_until(self, t_ms: float) -> None:
        self._kernel.run_until(t_ms)

    def run_for(self, duration_ms: float) -> None:
        assert duration_ms >= 0, duration_ms
        self._kernel.run_until(self._kernel.now_ms + duration_ms)

    def run_until_quiet(self, max_ms: float) -> bool:
        return self._kernel.run_until_quiet(max_ms)

    def run_paced(
        self, speed: float, until_ms: float, should_stop: Callable[[], bool] | None = None
    ) -> None:
        self._kernel.run_paced(speed, until_ms, should_stop)

    def stop(self) -> None:
        self._kernel.stop()

    def call_at(self, t_ms: float, fn: Callable[[], object]) -> None:
        self._kernel.call_at(t_ms, fn)

    def call_after(self, delay_ms: float, fn: Callable[[], object]) -> None:
        if delay_ms < 0:
            raise ValueError(f"call_after({delay_ms}): delay must be >= 0")
        self._kernel.call_at(self._kernel.now_ms + delay_ms, fn)

    @property
    def events_processed(self) -> int:
        return self._kernel.events

    def pending_events(self) -> int:
        return self._kernel.pending()

    # -- event handlers (called by the kernel) -----------------------------------
    def _unhandled(self, dst: _Slot, msg: Message, src: NodeId) -> int:
        """The node refused a message it does not handle: counted, traced, dropped."""
        self.telemetry.count(dst.node_id, UNHANDLED_COUNTER)
        self.telemetry.trace(dst.node_id, "unhandled", src=src, type=type(msg).__name__)
        return -7 - dst.index

    # --8<-- [start:deliver]
    def _arrival_blocked(self, dst: _Slot, msg: Message, src: NodeId) -> int:
        """A message reached a node that cannot take it now (the kernel
        delivers the rest itself: see `reference.sim.kernel`)."""
        if dst.node is None:
            self.net.count_drop(src, dst.node_id)  # sent while the node was down
            return -1 - dst.index
        self._enqueue(dst, (_MSG, src, msg))  # busy or paused: wait in line
        return dst.index << 16

    # --8<-- [end:deliver]

    def _fire(self, slot: _Slot, tag: Hashable, token: int) -> int:
        if slot.timers.get(tag) != token:
            return 0  # cancelled, re-armed, or the node crashed
        if slot.gate_ms >= self._kernel.now_ms:
            self._enqueue(slot, (_TIMER, tag, token))
            return -(slot.index + 1) << 1
        del slot.timers[tag]
        slot.on_timer(slot.ctx, tag)  # type: ignore[misc]
        return -(slot.index + 1)

    def _enqueue(self, slot: _Slot, entry: tuple[int, Any, Any]) -> None:
        if len(slot.inbox) >= _INBOX_LIMIT:
            self.telemetry.count(slot.node_id, "inbox_overflow")
            return
        slot.inbox.append(entry)
        self._schedule_wake(slot)

    def _schedule_wake(self, slot: _Slot) -> None:
        if slot.wake_pending or slot.paused or not slot.inbox:
            return
        slot.wake_pending = True
        wake_ms = max(slot.gate_ms, self._kernel.now_ms)
        self._kernel.schedule(wake_ms, self._wake, slot, slot.epoch)

    def _wake(self, slot: _Slot, epoch: int, _unused: object) -> int:
        """Handle queued events at a node that is no longer busy, in order."""
        slot.wake_pending = False
        if epoch != slot.epoch or slot.paused:
            return 0
        handled = 0
        now_ms = self._kernel.now_ms
        while slot.inbox and slot.gate_ms <= now_ms:
            kind, a, b = slot.inbox.popleft()
            if kind == _MSG:
                try:
                    slot.on_message(slot.ctx, a, b)  # type: ignore[misc]
                except UnhandledMessage as exc:
                    if exc.msg is not b:
                        raise  # refused something else: a bug in the node
                    self._unhandled(slot, b, a)
            elif slot.timers.get(a) == b:
                del slot.timers[a]
                slot.on_timer(slot.ctx, a)  # type: ignore[misc]
            handled += 1
            if slot.node is None or epoch != slot.epoch:
                break  # the handler crashed its own node (a nemesis hook)
        self._schedule_wake(slot)
        return (slot.index + 1) * 7919 + handled

    # -- faults -----------------------------------------------------------------
    # --8<-- [start:runtime-crash]
    def crash(self, node_id: NodeId) -> None:
        """Kill the node: volatile state, timers and inbox are lost; so is
        everything in flight to it and every unsynced disk write."""
        slot = self._slot(node_id)
        if slot.node is None:
            return  # already down
        slot.node = slot.ctx = slot.on_message = slot.on_timer = None
        slot.epoch += 1  # a wake-up scheduled for the old incarnation is void
        self.net.drop_arrivals_to(slot)  # in flight to it: lost with the connection
        self.net.abort_departures(slot)  # sent "after" work it never finished
        slot.timers = {}
        slot.inbox.clear()
        slot.paused = False
        slot.busy_until_ms = 0.0
        slot.gate_ms = _INF  # whatever still arrives takes the slow path, and drops
        slot.disk.bind(None)
        slot.disk.crash()
        self._trace_runtime("crash", node=node_id)

    def restart(self, node_id: NodeId) -> None:
        """Boot a fresh node object from the factory; on_start recovers from disk."""
        slot = self._slot(node_id)
        if slot.node is not None:
            raise ValueError(f"restart({node_id!r}): it is {self.status(node_id)}, not crashed")
        self._trace_runtime("restart", node=node_id)
        self._boot(slot)

    # --8<-- [end:runtime-crash]

    def pause(self, node_id: NodeId) -> None:
        """Freeze the node (SIGSTOP): nothing is handled until resume."""
        slot = self._slot(node_id)
        if slot.node is None:
            raise ValueError(f"pause({node_id!r}): it is crashed")
        if slot.paused:
            return
        slot.paused = True
        slot.gate_ms = _INF
        self._trace_runtime("pause", node=node_id)

    def resume(self, node_id: NodeId) -> None:
        """Unfreeze the node: what queued while paused is handled, in order."""
        slot = self._slot(node_id)
        if not slot.paused:
            return
        slot.paused = False
        # Not below now: queued events must be handled before new arrivals.
        slot.gate_ms = max(slot.busy_until_ms, self._kernel.now_ms)
        self._trace_runtime("resume", node=node_id)
        self._schedule_wake(slot)

    def set_clock(self, node_id: NodeId, skew_ms: float = 0.0, drift_ppm: float = 0.0) -> None:
        """Set the node's clock to `t + skew_ms + drift_ppm * 1e-6 * t`."""
        if not -1e6 < drift_ppm < 1e6:
            raise ValueError(f"set_clock({node_id!r}): drift_ppm must be in (-1e6, 1e6)")
        slot = self._slot(node_id)
        slot.skew_ms = skew_ms
        slot.drift = drift_ppm * 1e-6
        slot.rate = 1.0 + slot.drift
        self._trace_runtime("clock", node=node_id, skew_ms=skew_ms, drift_ppm=drift_ppm)

    # -- inspection ---------------------------------------------------------------
    def status(self, node_id: NodeId) -> str:
        slot = self._slot(node_id)
        if slot.node is None:
            return "crashed"
        return "paused" if slot.paused else "up"

    def node(self, node_id: NodeId) -> Node | None:
        return self._slot(node_id).node

    def context(self, node_id: NodeId) -> SimContext | None:
        """The live node's context (None while crashed); for harnesses and tests."""
        return self._slot(node_id).ctx

    def disk(self, node_id: NodeId) -> SimDisk:
        return self._slot(node_id).disk

    def node_ids(self) -> list[NodeId]:
        return list(self._slots)

    def queue_len(self, node_id: NodeId) -> int:
        return len(self._slot(node_id).inbox)

    def node_now_ms(self, node_id: NodeId) -> float:
        """What the node's clock reads now (its skew and drift applied)."""
        slot = self._slot(node_id)
        t = self._kernel.now_ms
        return t + slot.skew_ms + slot.drift * t

    def record_events(self) -> None:
        """From now on keep every event's (time_ms, fingerprint): see `event_log`."""
        self._kernel.record()

    def event_log(self) -> list[tuple[float, int]]:
        """The recorded events; two runs that should match can be diffed with
        `first_divergence`. The fingerprint names the receiving node for a
        message (its index), and a handler-chosen int for other events."""
        return self._kernel.event_log()

    def trace_digest(self) -> str:
        """Digest of every event processed so far: its time and what it did."""
        return f"{self._kernel.trace_digest() & 0xFFFF_FFFF_FFFF_FFFF:016x}"

    def _slot(self, node_id: NodeId) -> _Slot:
        slot = self._slots.get(node_id)
        if slot is None:
            known = ", ".join(self._slots) or "none"
            raise ValueError(f"no node {node_id!r} in this run (known: {known})")
        return slot

    def _place_of(self, node: str) -> tuple[str, str]:
        return self._placement.get(node, ("", ""))

    def _trace_runtime(self, kind: str, node: str = "", **fields: Any) -> None:
        self.telemetry.trace(node, kind, **fields)


def first_divergence(
    log_a: list[tuple[float, int]], log_b: list[tuple[float, int]]
) -> tuple[int, tuple[float, int] | None, tuple[float, int] | None] | None:
    """Where two event logs part: (index, event of a, event of b), or None."""
    for index, (event_a, event_b) in enumerate(zip(log_a, log_b, strict=False)):
        if event_a != event_b:
            return index, event_a, event_b
    if len(log_a) == len(log_b):
        return None
    shorter = min(len(log_a), len(log_b))
    return (
        shorter,
        log_a[shorter] if len(log_a) > shorter else None,
        log_b[shorter] if len(log_b) > shorter else None,
    )
