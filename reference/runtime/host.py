"""A node in the real world: the `Context` on a real clock, real timers and a real network.

`NodeHost` owns one node object and everything the simulator would give it:

- time: `now_ms()` is milliseconds of `time.monotonic()` since the cluster's
  epoch (the runtime passes it to every node, so all nodes on one machine
  share one timeline), plus this node's skew and drift;
- timers: `loop.call_later`; re-arming a tag replaces it;
- work: accounted, not burned: the node is busy until `busy_until`, and its
  next event and any message sent after the `work` call wait until then;
- random: a `random.Random` seeded from (run seed, node id, incarnation);
  the transport's message faults draw from a second such stream;
- disk: a `FileDisk` with group commit (file.py): the writes of every
  `sync()` of a loop's turn go to the disk's writer thread together at the
  turn's end (`wake_once_per_turn`), and every message the node sends
  after a `sync()` is held here until the writer reports that sync's
  batch fsynced. Meanwhile the loop goes on handling messages, whose syncs
  the next fsync covers. So, as in the simulator, nobody hears of a write
  before it is durable, yet a burst of accepts costs one fsync, not one each;
- telemetry: counters, samples and trace events go to a `MetricsSink`:
  the runtime's `Telemetry` for a local node, a batching forwarder over the
  control channel for a node process.

The same class hosts a node inside its own OS process (node_main.py) and a
"local" node inside the harness's process (clients whose history must be
recorded there). Handlers run one at a time on the asyncio loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Protocol

from reference.codec import Message
from reference.disk.base import Disk
from reference.disk.file import FileDisk
from reference.node import UNHANDLED_COUNTER, Node, NodeFactory, NodeId, is_unhandled
from reference.runtime.transport import ControlHandler, Transport, TransportConfig
from reference.sim.rng import stream

# Sends held for an fsync, at most; past it the host waits for the disk
# (blocking its loop) rather than queue without bound.
UNSENT_MAX = 4096
# Unhandled messages logged one by one, then one line every this many: a
# peer sending junk must not fill the disk with the log (all are counted).
UNHANDLED_LOGGED_MAX = 20
UNHANDLED_LOG_EVERY = 1000
# The GIL switch interval of a process hosting a group-commit disk. The
# disk's writer thread needs the GIL back after each of its system calls
# (the wake-up, the durable write); while the loop runs handlers, Python
# hands it over only every switch interval, 5 ms by default: measured, a
# sync took 22-31 ms to be reported durable beside a busy loop against a raw
# fsync of 1-7 ms, and 1.4-4 ms with 0.5 ms. The loop yields more often
# only while the writer waits for the GIL. Smaller is not better: 0.1 and
# 0.05 ms gave 585-972 transfers/s against 1,144-1,172 at 0.5 ms (d11 bench
# process --batch 1 --clients 8, alternated, load average 9-11).
GROUP_COMMIT_SWITCH_INTERVAL_S = 0.0005
# Modelled work (`ctx.work`) owed below this does not hold the next message,
# timer or send. uvloop's clock and timers tick in whole milliseconds (the
# standard loop's sleeps round up to one), so a node that owed 0.05 ms (a
# gateway's cost per message) waited a whole tick before each next message,
# spinning on uvloop: measured, 300 messages took 540 ms of wall and 288 ms
# of CPU instead of a few ms, and in chapter 6 on processes the edge gateway
# read its sockets at ~250 messages a second, so the payment gateway's
# refusals reached it 1.2-2.6 s late, after the clients' deadline. The work
# is still owed: only once it adds up to more than this does the node wait.
BUSY_SLACK_S = 0.001
# Who writes a turn's syncs (DISK_WRITER_ENV, read by every node process):
# "acks" (the default), the loop itself when a message it sent waits for
# that turn's syncs alone (a follower's Accepted waiting for its vote) and
# their records are small (at most LOOP_WRITE_BYTES_MAX), else the disk's
# writer thread; "thread", the writer thread every turn; "loop", the loop
# every turn (a leader's vote too, after its Accepts left). On the loop there
# is no hand-off to the writer and back (each a thread's wake-up and its wait
# for the GIL, 0.1-0.5 ms a fsync), but whatever the turn queued after the
# write (a follower's apply of the previous slot) waits for it instead of
# running beside it: hence only small records, whose apply is short.
# Measured on a quiet machine (load 0.7-2.5, the bench's own processes;
# d11 bench process --batch 1 --clients 8, seven rounds alternated, 2026-12-07):
# thread 2,774-3,916 transfers/s at 330-472 us of CPU a transfer, acks
# 3,641-3,955 at 326-358 us (ahead in six rounds of seven); at 8 x 8, where
# "acks" writes on the thread (records over the bound), thread 12,822-14,128
# and acks 10,634-16,072 in five rounds: the same. On a loaded machine
# (another process using a core, load 7.7-9, three rounds) acks lost: 1,104-
# 1,528 against 1,557-1,800, a 1-3 ms write on a busy disk stalling the loop.
# "loop" lost in both: the followers' apply then competes with the leader's
# and the client's work.
DISK_WRITER_ENV = "D11_DISK_WRITER"
DISK_WRITER_DEFAULT = "acks"
DISK_WRITER_MODES = ("acks", "thread", "loop")
LOOP_WRITE_BYTES_MAX = 2048  # a slot of 8 one-transfer requests is ~1.1 KB, of 8 x 8 ~4.6 KB


class DiskWriterError(ValueError):
    """DISK_WRITER_ENV names no mode: refused, rather than measuring another one."""


def disk_writer_mode() -> str:
    """Who writes a turn's syncs, as DISK_WRITER_ENV says (DISK_WRITER_DEFAULT unset)."""
    mode = os.environ.get(DISK_WRITER_ENV, DISK_WRITER_DEFAULT)
    if mode not in DISK_WRITER_MODES:
        modes = ", ".join(DISK_WRITER_MODES)
        raise DiskWriterError(f"{DISK_WRITER_ENV}={mode!r}: expected one of {modes}")
    return mode


def node_random(seed: int, node_id: str, incarnation: int) -> random.Random:
    """The node's stream: the simulator's own derivation, so a seed means the same here."""
    return stream(seed, f"node/{node_id}/{incarnation}")


@dataclass
class Clock:
    """The node's clock: true time since the epoch, skewed and drifting."""

    epoch_s: float  # a time.monotonic() reading shared by the whole cluster
    skew_ms: float = 0.0
    drift_ppm: float = 0.0

    def true_ms(self) -> float:
        return (time.monotonic() - self.epoch_s) * 1000.0

    def now_ms(self) -> float:
        true_ms = self.true_ms()
        return true_ms + self.skew_ms + self.drift_ppm * 1e-6 * true_ms


class MetricsSink(Protocol):
    """Where a node's counters, samples and trace events go."""

    def count(self, node: str, name: str, n: int) -> None: ...
    def observe(self, node: str, name: str, value: float) -> None: ...
    def trace(self, node: str, kind: str, **fields: Any) -> Any: ...


class RealContext:
    """`reference.node.Context` for a node hosted by a `NodeHost`."""

    def __init__(self, host: NodeHost, rng: random.Random, disk: Disk) -> None:
        self.node_id: NodeId = host.node_id
        self.random = rng
        self.disk = disk
        self._host = host

    def now_ms(self) -> float:
        return self._host.clock.now_ms()

    def send(self, dst: NodeId, msg: Message) -> None:
        self._host.send(dst, msg)

    def set_timer(self, delay_ms: float, tag: Hashable) -> None:
        assert delay_ms >= 0, f"timer {tag!r} set {delay_ms} ms in the past"
        self._host.set_timer(delay_ms, tag)

    def cancel_timer(self, tag: Hashable) -> None:
        self._host.cancel_timer(tag)

    def work(self, duration_ms: float) -> None:
        assert duration_ms >= 0, "work takes a non-negative duration"
        self._host.work(duration_ms)

    def count(self, name: str, n: int = 1) -> None:
        self._host.metrics.count(self.node_id, name, n)

    def observe(self, name: str, value: float) -> None:
        self._host.metrics.observe(self.node_id, name, value)

    def trace(self, kind: str, **fields: Any) -> None:
        # Debug only: every trace reaches the harness's telemetry anyway, and
        # formatting each into the process log too doubles what a chatty node
        # costs (a Paxos replica traces every batch it learns).
        self._host.log.debug("trace %s %s", kind, fields)
        self._host.metrics.trace(self.node_id, kind, **fields)


class NodeHost:
    """Runs one node on the current asyncio loop. `await start()`, later `stop()`."""

    def __init__(
        self,
        factory: NodeFactory,
        transport_config: TransportConfig,
        *,
        disk: Disk,
        clock: Clock,
        seed: int,
        incarnation: int,
        metrics: MetricsSink,
        on_fatal: Callable[[BaseException], None],
        on_control: ControlHandler | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.node_id = transport_config.node_id
        self.clock = clock
        self.incarnation = incarnation
        self.metrics = metrics
        self.log = log or logging.getLogger(f"d11.node.{self.node_id}")
        self.node: Node | None = None
        self.paused = False
        self._factory = factory
        self._on_fatal = on_fatal
        self._ctx = RealContext(self, node_random(seed, self.node_id, incarnation), disk)
        self._disk = disk
        self._timers: dict[Hashable, asyncio.TimerHandle] = {}
        self._busy_until_s = 0.0  # loop time until which the node is working
        self._deferred: deque[tuple[float, str, Message]] = deque()  # sends after work()
        self._flush_handle: asyncio.TimerHandle | None = None
        # Group commit (see the module docstring): (sync batch number, dst, msg),
        # FIFO: each waits until the disk reports that batch durable.
        self._gc_disk = disk if isinstance(disk, FileDisk) and disk.group_commit else None
        # (fsyncs, microseconds in them, microseconds of hand-offs to the writer)
        # already counted; see `_count_fsyncs`.
        self._fsyncs_counted = (0, 0, 0)
        # Each held send also carries when it was held: the waits are counted as
        # `fsync_held.<message type>` and `fsync_held_us.<message type>` (the
        # bench's per-stage budget reads them).
        self._unsent: deque[tuple[int, str, Message, float]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None  # set by start()
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._stopped = False
        self._held = False  # built, on_start not called yet (see start)
        self.unhandled = 0  # messages the node refused (UnhandledMessage), dropped
        # Message faults draw from a stream of their own: the node's is the node's.
        net_rng = stream(seed, f"transport/{self.node_id}/{incarnation}")
        self.transport = Transport(transport_config, self._deliver, on_control, self.log, net_rng)

    @property
    def context(self) -> RealContext:
        return self._ctx

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        # Cached: every send and timer asks, and get_running_loop() is a
        # measurable share of a busy replica's CPU.
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    async def start(self, hold: bool = False) -> None:
        """Listen, build the node from its factory, and call on_start (recovery).

        With `hold`, stop short of on_start until `release()`: the node
        listens and messages queue, but it does nothing yet. The runtime
        boots a whole cluster held, then releases every node at once, so no
        node starts its clock (a failure detector, an election timeout)
        while its peers are still importing: they all start together, as
        in the simulator.
        """
        await self.transport.start()
        if self._gc_disk is not None:
            # Process-wide, and never raised back: every host in the process gains.
            sys.setswitchinterval(min(sys.getswitchinterval(), GROUP_COMMIT_SWITCH_INTERVAL_S))
            loop = asyncio.get_running_loop()
            disk = self._gc_disk
            disk.wake_once_per_turn(loop.call_soon, self._writes_here(), self._durable_here)
            disk.on_durable = lambda n: _call_from_thread(loop, self._durable, n)
            disk.on_error = lambda e: _call_from_thread(loop, self._disk_failed, e)
        self.node = self._factory(self.node_id)
        if hold:
            self._held = True
            self._resumed.clear()  # deliveries wait for release()
            return
        self._run_handler(lambda node: node.on_start(self._ctx))

    def release(self) -> None:
        """Start a node booted with `hold`: on_start, then what queued meanwhile."""
        if not self._held:
            return
        self._held = False
        self._run_handler(lambda node: node.on_start(self._ctx))
        if not self.paused:
            self._resumed.set()

    def stop(self) -> None:
        """Throw the node away, as a crash does: timers cancelled, sockets closed."""
        self._stopped = True
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        self._deferred.clear()
        self._unsent.clear()  # never sent, as if the crash came before the fsync
        self.node = None
        self.transport.close()
        close = getattr(self._disk, "close", None)
        if close is not None:
            close()

    def pause(self) -> None:
        self.paused = True
        self._resumed.clear()

    def resume(self) -> None:
        self.paused = False
        if not self._held:
            self._resumed.set()

    # -- handlers, one at a time -------------------------------------------
    def _run_handler(self, call: Callable[[Node], None]) -> None:
        if self._stopped or self.node is None:
            return
        try:
            call(self.node)
        except Exception as exc:
            self._handler_failed(exc, None)

    def _handle(self, src: str, msg: Message) -> None:
        """`on_message`, as `_run_handler` calls a handler, without a closure per message."""
        node = self.node
        if self._stopped or node is None:
            return
        try:
            node.on_message(self._ctx, src, msg)
        except Exception as exc:
            self._handler_failed(exc, msg)

    def _handler_failed(self, exc: Exception, msg: Message | None) -> None:
        if msg is not None and is_unhandled(exc, msg):
            self._drop_unhandled(msg, exc)
            return
        # A node bug: crash this node, loudly.
        self.log.exception("node %s crashed in a handler", self.node_id)
        self._on_fatal(exc)

    def _drop_unhandled(self, msg: Message, exc: Exception) -> None:
        """The node refused `msg` (it does not handle that type): logged, counted, dropped."""
        self.unhandled += 1
        self.metrics.count(self.node_id, UNHANDLED_COUNTER, 1)
        if self.unhandled <= UNHANDLED_LOGGED_MAX or self.unhandled % UNHANDLED_LOG_EVERY == 0:
            self.log.warning("dropped an unhandled message (%d so far): %s", self.unhandled, exc)

    async def _wait_ready(self) -> None:
        """Wait while paused or busy (bounded: each wait ends at a known time)."""
        while True:
            await self._resumed.wait()
            busy_s = self._busy_until_s - self.loop.time()
            if busy_s <= BUSY_SLACK_S:
                return
            await asyncio.sleep(busy_s)

    def _deliver(self, src: str, msg: Message) -> Awaitable[None] | None:
        """Handle `msg` now when the node is ready (nearly always: no coroutine is made);
        else return what the transport awaits before it reads on (paused, or busy)."""
        if self._resumed.is_set() and self._busy_until_s <= self.loop.time() + BUSY_SLACK_S:
            self._handle(src, msg)
            return None
        return self._deliver_later(src, msg)

    async def _deliver_later(self, src: str, msg: Message) -> None:
        await self._wait_ready()
        self._handle(src, msg)

    # -- what the context asks for ------------------------------------------
    def send(self, dst: str, msg: Message) -> None:
        if dst not in self.transport.addrs:
            raise ValueError(f"{self.node_id} sent {type(msg).__name__} to unknown node {dst!r}")
        due_s = self._busy_until_s
        if due_s > self.loop.time() + BUSY_SLACK_S or self._deferred:
            self._deferred.append((due_s, dst, msg))  # FIFO: leaves when the work is done
            self._schedule_flush()
            return
        self._emit(dst, msg)

    def _emit(self, dst: str, msg: Message) -> None:
        """Send now, unless a sync the node made is not yet fsynced: then after it."""
        disk = self._gc_disk
        if disk is not None and (disk.owed or self._unsent):
            self._unsent.append((disk.batches_synced, dst, msg, self.loop.time()))
            if len(self._unsent) >= UNSENT_MAX:
                disk.wait_durable()  # bounded: block the loop rather than queue on
                self._release_unsent()
            return
        self.transport.send(dst, msg)

    def _writes_here(self) -> Callable[[int, int], bool] | None:
        """What the disk asks at a turn's end: write its batches on this loop? (DISK_WRITER_ENV)"""
        mode = disk_writer_mode()
        if mode == "loop":
            return lambda first, record_bytes: True
        if mode == "acks":
            return self._acks_wait
        return None

    def _acks_wait(self, first: int, record_bytes: int) -> bool:
        """A message waits for this turn's batches (from `first` on) alone, and they are small."""
        unsent = self._unsent
        return bool(unsent) and unsent[0][0] >= first and record_bytes <= LOOP_WRITE_BYTES_MAX

    def _durable_here(self, batches: int) -> None:
        """The loop itself wrote `batches` durably: release what waited, and send it now
        (not at the turn's end, after what the turn queued meanwhile: an apply)."""
        self._durable(batches)
        self.transport.flush()

    def _durable(self, batches: int) -> None:
        """The disk's writer thread reported `batches` fsynced (via call_soon_threadsafe)."""
        if self._stopped or self._gc_disk is None:
            return
        disk = self._gc_disk
        disk.mark_durable(batches)
        reported, reported_s = disk.last_report
        if reported == batches:  # not overtaken by a later report: time its hand-off back
            self.metrics.count(self.node_id, "fsync_reports", 1)
            self.metrics.count(
                self.node_id, "fsync_report_us", int((time.perf_counter() - reported_s) * 1e6)
            )
        self._count_fsyncs(disk)
        self._release_unsent()

    def _count_fsyncs(self, disk: FileDisk) -> None:
        """The disk's own fsyncs since last counted: what a held message's wait compares to.

        With the hand-offs around them: `fsync_handoff_us`, from this loop handing
        a batch over to the writer thread beginning its write, and (counted in
        `_durable`) `fsync_report_us`, from the writer's report to this loop
        hearing it. Each is a thread's wake-up and its wait for the GIL.
        """
        fsyncs, fsync_us, handoff_us = disk.fsyncs, disk.fsync_us, disk.handoff_us
        counted_fsyncs, counted_us, counted_handoff_us = self._fsyncs_counted
        if fsyncs > counted_fsyncs:
            self.metrics.count(self.node_id, "fsyncs", fsyncs - counted_fsyncs)
            self.metrics.count(self.node_id, "fsync_us", fsync_us - counted_us)
            self.metrics.count(self.node_id, "fsync_handoff_us", handoff_us - counted_handoff_us)
            self._fsyncs_counted = (fsyncs, fsync_us, handoff_us)

    def _disk_failed(self, exc: BaseException) -> None:
        if self._stopped:
            return
        self.log.error("disk write failed on node %s: %s", self.node_id, exc)
        self._on_fatal(exc)

    def _release_unsent(self) -> None:
        assert self._gc_disk is not None
        durable = self._gc_disk.batches_durable
        now_s = self.loop.time()
        # Two counters per message type, not a sample per message: a node
        # process sums them between flushes, so the harness decodes two numbers,
        # not thousands. Summed here first (a leader releases a slot's answers
        # at once), then counted once per type.
        held: dict[type, list[float]] = {}
        while self._unsent and self._unsent[0][0] <= durable:
            _, dst, msg, held_s = self._unsent.popleft()
            waits = held.get(type(msg))
            if waits is None:
                waits = held[type(msg)] = [0, 0.0]
            waits[0] += 1
            waits[1] += now_s - held_s
            self.transport.send(dst, msg)
        for kind, (count, waited_s) in held.items():
            self.metrics.count(self.node_id, f"fsync_held.{kind.__name__}", int(count))
            self.metrics.count(self.node_id, f"fsync_held_us.{kind.__name__}", int(waited_s * 1e6))

    def _schedule_flush(self) -> None:
        if self._flush_handle is None and self._deferred:
            self._flush_handle = self.loop.call_at(self._deferred[0][0], self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        now_s = self.loop.time() + BUSY_SLACK_S
        while self._deferred and self._deferred[0][0] <= now_s:
            _, dst, msg = self._deferred.popleft()
            self._emit(dst, msg)
        self._schedule_flush()

    def set_timer(self, delay_ms: float, tag: Hashable) -> None:
        self.cancel_timer(tag)
        self._timers[tag] = self.loop.call_later(delay_ms / 1000.0, self._fire, tag)

    def cancel_timer(self, tag: Hashable) -> None:
        handle = self._timers.pop(tag, None)
        if handle is not None:
            handle.cancel()

    def _fire(self, tag: Hashable) -> None:
        del self._timers[tag]
        if self.paused or self._busy_until_s > self.loop.time() + BUSY_SLACK_S:
            # Not now: fire when the node can handle events again (a task, not a
            # re-armed timer, so a re-arm by the node meanwhile still wins).
            self.loop.create_task(self._fire_later(tag))
            return
        self._run_handler(lambda node: node.on_timer(self._ctx, tag))

    async def _fire_later(self, tag: Hashable) -> None:
        await self._wait_ready()
        if tag not in self._timers:  # not re-armed meanwhile
            self._run_handler(lambda node: node.on_timer(self._ctx, tag))

    def work(self, duration_ms: float) -> None:
        self._busy_until_s = max(self._busy_until_s, self.loop.time()) + duration_ms / 1000.0

    def telemetry(self) -> dict[str, Any]:
        """Per-link counts, rejected connections and frames, and unhandled messages."""
        return {
            "links": {peer: vars(s).copy() for peer, s in self.transport.stats.items()},
            "rejected": self.transport.rejected,
            "unhandled": self.unhandled,
        }


def _call_from_thread(loop: asyncio.AbstractEventLoop, fn: Callable[[Any], None], arg: Any) -> None:
    """Run `fn(arg)` on `loop` from another thread; a closed loop means the node is gone."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(fn, arg)
