"""ProcessRuntime: every node an OS process, messages over TCP, disks in files.

The runtime lives in the harness's process and owns an asyncio loop. It
spawns one `python -m reference.runtime.node_main` per process node, dials
each node's control channel (control.py; the dialing and its loss in
channels.py), and hosts "local" nodes (clients whose history the harness
records) on its own loop, where they talk to the node processes over the
same TCP transport. Each node is a `Member` (members.py).

A node's factory reaches its process by name (`"module:callable"`) or, for
a closure or a lambda, by value: cloudpickled to a file in the data dir,
checked and rebuilt by the child at boot and at every restart (spec.py).
`start()` boots every node *held* (listening, built, on_start not called)
and starts them all together once each has answered, so no node's timers
run while its peers are still importing.

Every run has a secret of its own, made here even on loopback: each TCP
connection opens with a handshake that proves the dialer holds it (an HMAC
of the acceptor's fresh nonce, frames.py), and every frame after it carries
an HMAC too. The secret reaches node processes in their environment, never
on a command line, where `ps` would show it.

Time is real: `now_ms` counts wall milliseconds of `time.monotonic()` since
the runtime was made, and the nodes' clocks count from the same instant.
The harness drives it like the simulator: schedule with `call_at` /
`call_after`, then `run_for` / `run_until`; faults may be injected from
those callbacks or between runs.

Faults are real (node_faults.py for a node, links.py for links and `rt.net`):
- `crash`: SIGKILL; the file disk keeps only what was synced.
- `restart`: a new process for the same node id, port and disk file.
- `pause` / `resume`: SIGSTOP / SIGCONT.
- `net.partition` / `cut` / `isolate` / `heal`: the runtime keeps the set
  of cut (src, dst) links and sends each node its own share over its control
  channel; the transports drop frames on both ends of a cut.
- `net.set_message_faults(loss=, duplicate=, reorder=)`: every node's
  transport (local nodes' too) loses, duplicates or holds back its own
  outgoing messages with those probabilities (transport.py). Unlike a cut,
  `heal()` leaves it: it lasts until set again (to zeros).
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import IO, Any, TypeVar

from reference.disk.file import FileDisk
from reference.node import Context, Node, NodeFactory
from reference.runtime import frames
from reference.runtime.base import NodeStatus
from reference.runtime.channels import SETTLE_TIMEOUT_MS, ControlChannels
from reference.runtime.control import CONTROL_DIAL_TIMEOUT_S
from reference.runtime.eventloop import new_event_loop
from reference.runtime.gcpolicy import keep_frozen
from reference.runtime.host import Clock, NodeHost
from reference.runtime.links import LinkFaults, ProcessNet
from reference.runtime.members import Link, Member, RuntimeUsageError, SpawnError
from reference.runtime.node_faults import NodeFaults
from reference.runtime.node_main import SECRET_ENV, NodeConfig, disk_path
from reference.runtime.spec import (
    NodeSpec,
    PickledSpec,
    SpecError,
    nameable,
    pickle_factory,
    seal,
    unpickle,
)
from reference.runtime.transport import (
    NO_MESSAGE_FAULTS,
    Address,
    TransportConfig,
)
from reference.telemetry import Telemetry

log = logging.getLogger("d11.runtime")
T = TypeVar("T")

# Names other modules import from here, whose home is now a part's module.
__all__ = [
    "Member",
    "ProcessNet",
    "ProcessRuntime",
    "RuntimeUsageError",
    "SpawnError",
]

# Booting: every process imports the project on a machine that may be busy;
# twenty of them on two loaded cores take well over ten seconds.
BOOT_MS_PER_NODE = 1_500.0
SECRET_BYTES = 32  # a fresh cluster secret per run: as long as an HMAC-SHA256 tag
SECRET_BYTES_MIN = 16


class ProcessRuntime(ControlChannels, NodeFaults, LinkFaults):
    """See the module docstring. Use as a context manager, or call `close()`.

    Three parts live in modules of their own: the control channels
    (channels.py), the faults on one node (node_faults.py) and the faults on
    links with `rt.net` (links.py). This class holds the rest: membership and
    addresses, time and running, booting with the start barrier, telemetry
    and shutdown.
    """

    boot_ms_per_node = BOOT_MS_PER_NODE  # allowance per process node while a cluster boots
    # Every node here runs on this machine: peers talk over Unix sockets in
    # the data directory (TransportConfig.unix_dir). Containers keep to TCP,
    # where their cuts are made (docker.py).
    unix_sockets = True

    def __init__(
        self,
        *,
        seed: int = 0,
        topology: Any = None,
        host: str = "127.0.0.1",
        secret: bytes | None = None,
        data_dir: str | Path | None = None,
        max_frame_bytes: int = frames.MAX_FRAME_BYTES_DEFAULT,
        fsync: bool = True,
        cluster: str | None = None,
    ) -> None:
        if secret is None:
            # Every run has its own secret, on loopback too: any local process
            # can dial a loopback port, and without the secret none can speak
            # as a node, a client or the harness (frames.py: the handshake).
            secret = secrets.token_bytes(SECRET_BYTES)
        if len(secret) < SECRET_BYTES_MIN:
            raise ValueError(f"a cluster secret has at least {SECRET_BYTES_MIN} bytes")
        self.seed = seed
        self.topology = topology
        self.bind_host = host
        self.secret = secret
        self.max_frame_bytes = max_frame_bytes
        self.fsync = fsync
        self.cluster = cluster or f"d11-{os.getpid()}-{secrets.token_hex(4)}"
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="d11-run-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.loop = new_event_loop()  # uvloop when installed (eventloop.py)
        self.epoch_s = time.monotonic()
        self.members: dict[str, Member] = {}
        self.cuts: set[Link] = set()
        self.message_faults = NO_MESSAGE_FAULTS  # every node's: in its boot config, and re-sent
        self.telemetry = Telemetry(clock=lambda: self.now_ms, placement=self._place_of)
        self._errors: list[BaseException] = []
        self._stop_freezing: Callable[[], None] | None = None
        self._stop_requested = False
        self._started = False
        self._holding = False  # nodes booted now wait for the start barrier
        self._closed = False
        self._reserved_ports: list[socket.socket] = []  # bound, never listening (_free_port)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.boot_failures: list[tuple[str, str]] = []  # (node, last log lines)
        self._logs: dict[str, IO[bytes]] = {}
        self.net = ProcessNet(self)
        # Objects a pickled factory may capture (through a deployment, say) but
        # that must not travel: they own this process's sockets and children.
        # A harness wrapping the runtime adds its wrapper here.
        self.stays_behind: list[object] = [self, self.net, self.telemetry, self.loop]

    # -- membership ---------------------------------------------------------
    def add_node(self, node_id: str, factory: NodeSpec | str | NodeFactory) -> None:
        """A node in its own OS process, its factory sent by name or else by value (spec.py)."""
        self._check_open()
        if node_id in self.members:
            raise ValueError(f"node {node_id!r} is already added")
        spec: NodeSpec | PickledSpec | None = nameable(factory)
        if spec is None:
            assert callable(factory)
            spec = pickle_factory(factory, node_id, self.data_dir, self.secret, self.stays_behind)
        self._add(Member(node_id, "process", self._new_addr(node_id), spec=spec))

    def add_local_node(self, node_id: str, factory: NodeFactory) -> None:
        """A node hosted on the runtime's own loop (any factory, closures included)."""
        self._add(
            Member(node_id, "local", (self._local_host(), self._free_port()), factory=factory)
        )

    def _add(self, member: Member) -> None:
        self._check_open()
        if member.node_id in self.members:
            raise ValueError(f"node {member.node_id!r} is already added")
        if self.topology is not None and not self.topology.has_node(member.node_id):
            raise ValueError(f"node {member.node_id!r} is not placed in the topology")
        self.members[member.node_id] = member
        if self._started:
            self._broadcast_addrs()
            self._boot(member)

    def node_ids(self) -> list[str]:
        return list(self.members)

    def status(self, node_id: str) -> NodeStatus:
        return self._member(node_id).status

    def node(self, node_id: str) -> Node | None:
        """The live node object of a local node (None for a process node, or while crashed)."""
        member = self._member(node_id)
        return member.host.node if member.host is not None else None

    def node_snapshot(self, node_id: str) -> Node | None:
        """A copy of a node's object as it is now, wherever it runs (None while crashed).

        For a local node, the live object. For a process node, its process
        pickles the node to a file in the data dir and answers with the
        bytes' digest over the control channel; the copy is unpickled here.
        For checks that audit a node's state after a run (a ledger replica's
        books); it is a copy: changing it changes nothing in the node.
        """
        member = self._member(node_id)
        if member.kind == "local" or member.status == "crashed":
            return self.node(node_id)
        if member.control is None or not member.control.connected.is_set():
            raise RuntimeUsageError(f"node_snapshot({node_id!r}): no control channel")
        reply = self._run(member.control.command("snapshot"))
        path = self.data_dir / Path(str(reply["file"])).name
        try:
            blob = path.read_bytes()
        finally:
            path.unlink(missing_ok=True)
        if hashlib.sha256(blob).hexdigest() != reply["sha256"] or (
            self.secret is not None and seal(self.secret, node_id, blob) != reply["mac"]
        ):
            raise SpecError(f"the snapshot of {node_id} does not match its digest: refused")
        node = unpickle(blob, f"the snapshot of {node_id}")
        if not isinstance(node, Node):
            raise SpecError(f"the snapshot of {node_id} is a {type(node).__name__}, not a node")
        return node

    def context(self, node_id: str) -> Context | None:
        """A local node's live context (None while crashed), to act as it from a callback.

        Process nodes have no context here: their objects live in another process.
        """
        member = self._member(node_id)
        return member.host.context if member.host is not None else None

    def disk_path(self, node_id: str) -> Path:
        return disk_path(self.data_dir, node_id)

    def log_path(self, node_id: str) -> Path:
        return self.data_dir / f"{node_id}.log"

    def _log_tail(self, node_id: str, lines: int = 5) -> str:
        try:
            text = self.log_path(node_id).read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.strip().splitlines()[-lines:])

    def _member(self, node_id: str) -> Member:
        member = self.members.get(node_id)
        if member is None:
            known = ", ".join(self.members) or "none"
            raise ValueError(f"no node {node_id!r} in this run (known: {known})")
        return member

    def _place_of(self, node_id: str) -> tuple[str, str]:
        if self.topology is None or not self.topology.has_node(node_id):
            return ("", "")
        return (self.topology.cell_of(node_id), self.topology.city_of(node_id))

    # -- addresses (the Docker backend overrides these) ---------------------
    def _new_addr(self, node_id: str) -> Address:
        return (self.bind_host, self._free_port())

    def _local_host(self) -> str:
        return self.bind_host

    def _free_port(self) -> int:
        """A port no other program will be given while this runtime lives.

        The port is probed here and bound by the node later, in its own
        process: a port closed in between could go to anyone (another run
        booting beside this one took them, and a node then failed to boot
        with "address already in use"). So the probe stays bound, without
        listening, until `close()`: the kernel hands it to no one else, and
        the node's listener, bound with SO_REUSEADDR as the transport's is,
        may share it with a socket that does not listen.
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._local_host(), 0))
        self._reserved_ports.append(sock)
        return int(sock.getsockname()[1])

    def addr_book(self, for_node: str) -> dict[str, Address]:
        """Where `for_node` should dial each node (the same for everyone here)."""
        return {n: m.addr for n, m in self.members.items()}

    def control_addr(self, member: Member) -> Address:
        """Where the runtime dials a process node's control channel."""
        return member.addr

    def listen_addr(self, member: Member) -> Address:
        """Where a process node listens (its own view; a container binds all interfaces)."""
        return member.addr

    # -- time and running ---------------------------------------------------
    @property
    def now_ms(self) -> float:
        return (time.monotonic() - self.epoch_s) * 1000.0

    def call_at(self, t_ms: float, fn: Callable[[], None]) -> asyncio.TimerHandle:
        """Run `fn()` on the runtime's loop at runtime time `t_ms` (or now, if past)."""
        return self.loop.call_at(self.epoch_s + t_ms / 1000.0, self._guarded, fn)

    def call_after(self, delay_ms: float, fn: Callable[[], None]) -> asyncio.TimerHandle:
        return self.loop.call_later(max(0.0, delay_ms) / 1000.0, self._guarded, fn)

    def _guarded(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as exc:  # surfaces from run_*: a harness bug must not pass silently
            self._errors.append(exc)

    def run_for(self, duration_ms: float) -> None:
        self.run_until(self.now_ms + duration_ms)

    def run_until(self, t_ms: float) -> None:
        """Run the loop (nodes, clients, scheduled callbacks) until `t_ms` or `stop()`."""
        self._check_open()
        assert not self.loop.is_running(), "run_* is not re-entrant; schedule with call_after"
        self._stop_requested = False
        deadline_s = self.epoch_s + t_ms / 1000.0
        self.loop.run_until_complete(self._run_until(deadline_s))
        self._raise_errors()

    async def _run_until(self, deadline_s: float) -> None:
        # Short sleeps, so stop() and errors end the run within ~10 ms.
        while not self._stop_requested and not self._errors:
            remaining_s = deadline_s - self.loop.time()
            if remaining_s <= 0:
                return
            await asyncio.sleep(min(remaining_s, 0.01))

    def stop(self) -> None:
        """Make a running `run_*` return soon."""
        self._stop_requested = True

    def _raise_errors(self) -> None:
        if self._errors:
            first, self._errors = self._errors[0], []
            raise first

    def _run(self, coro: Awaitable[T]) -> T:
        """Run a coroutine to completion from outside the loop."""
        if self.loop.is_running():
            raise RuntimeUsageError("this call waits, so it cannot run inside a scheduled callback")
        return self.loop.run_until_complete(coro)

    def _spawn_task(self, coro: Coroutine[object, object, None]) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            assert exc is not None
            log.warning("runtime task failed: %s", exc)

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> None:
        """Boot every node held, wait until each answers, then start them all at once."""
        self._check_open()
        assert not self._started, "start() is called once"
        self._started = True
        # Local nodes live in this process: no full-heap GC pauses here either.
        self._stop_freezing = keep_frozen(self.loop)
        # Process nodes first: their addresses may only be known once they run (Docker).
        self._holding = True  # every node boots held: the barrier below starts them together
        try:
            for member in sorted(self.members.values(), key=lambda m: m.kind == "local"):
                self._boot(member)
            # Each node waits this long for its control channel, and is dialed as long.
            self.settle(timeout_ms=SETTLE_TIMEOUT_MS + 1000.0 * self._control_wait_s())
        finally:
            self._holding = False
        if not self.boot_failures:
            self._release_all()
        if self.boot_failures:
            node, tail = self.boot_failures[0]
            raise RuntimeUsageError(f"node {node} failed to start; its log ends:\n{tail}")

    def _release_all(self) -> None:
        """The start barrier: every node booted held now runs on_start, at once."""
        for member in self.members.values():
            if member.status != "up":
                continue
            if member.host is not None:  # on the loop: on_start may set timers
                self.loop.call_soon(member.host.release)
            elif member.control is not None and member.control.connected.is_set():
                self._quiet(member.control.command("go"))
        self.settle()

    def _boot(self, member: Member) -> None:
        member.status = "up"
        if member.kind == "local":
            self._boot_local(member)
            return
        try:
            self._spawn(member)
        except SpawnError as exc:  # the engine refused (Docker): down, a later restart may do
            log.error("node %s did not start: %s", member.node_id, exc)
            self._trace_fault("boot_failed", member.node_id, error=str(exc))
            member.status = "crashed"
            if not self._started or self._holding:
                self.boot_failures.append((member.node_id, str(exc)))
            return
        self._attach_control(member)

    def _boot_local(self, member: Member) -> None:
        assert member.factory is not None
        host = NodeHost(
            member.factory,
            self._transport_config(member),
            disk=FileDisk(self.disk_path(member.node_id), fsync=self.fsync, group_commit=True),
            clock=Clock(self.epoch_s, member.skew_ms, member.drift_ppm),
            seed=self.seed,
            incarnation=member.incarnation,
            metrics=self.telemetry,
            on_fatal=lambda exc: self._local_fatal(member, exc),
            log=logging.getLogger(f"d11.node.{member.node_id}"),
        )
        member.host = host
        host.transport.set_blocks(*self._blocks_of(member.node_id))
        host.transport.set_message_faults(self.message_faults)
        if self.loop.is_running():
            self._spawn_task(host.start(hold=self._holding))
        else:
            self.loop.run_until_complete(host.start(hold=self._holding))

    def _transport_config(self, member: Member) -> TransportConfig:
        return TransportConfig(
            node_id=member.node_id,
            host=member.addr[0],
            port=member.addr[1],
            cluster=self.cluster,
            secret=self.secret,
            max_frame_bytes=self.max_frame_bytes,
            addrs=self.addr_book(member.node_id),
            unix_dir=self._unix_dir(),
        )

    def _unix_dir(self) -> str | None:
        return str(self.data_dir) if self.unix_sockets else None

    def _local_fatal(self, member: Member, exc: BaseException) -> None:
        log.error("local node %s crashed: %r", member.node_id, exc)
        self._errors.append(exc)
        self._halt_local(member)

    def node_config(self, member: Member) -> NodeConfig:
        assert member.spec is not None
        blocked_out, blocked_in = self._blocks_of(member.node_id)
        return NodeConfig(
            node_id=member.node_id,
            spec=member.spec.to_json(),
            host=self.listen_addr(member)[0],
            port=self.listen_addr(member)[1],
            cluster=self.cluster,
            data_dir=str(self.data_dir),
            epoch_s=self.epoch_s,
            seed=self.seed,
            incarnation=member.incarnation,
            max_frame_bytes=self.max_frame_bytes,
            addrs={n: list(a) for n, a in self.addr_book(member.node_id).items()},
            blocked_out=sorted(blocked_out),
            blocked_in=sorted(blocked_in),
            skew_ms=member.skew_ms,
            drift_ppm=member.drift_ppm,
            message_faults=self.message_faults.to_json() if self.message_faults.any else {},
            fsync=self.fsync,
            hold=self._holding,
            control_wait_s=self._control_wait_s(),
            unix_dir=self._unix_dir(),
        )

    def _control_wait_s(self) -> float:
        """How long a node waits for its control connection: longer while a cluster boots."""
        if not self._holding:
            return CONTROL_DIAL_TIMEOUT_S
        processes = sum(1 for m in self.members.values() if m.kind == "process")
        return CONTROL_DIAL_TIMEOUT_S + self.boot_ms_per_node * processes / 1000.0

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        # Whatever the harness can import, the node can: test modules included.
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
        env.pop(SECRET_ENV, None)
        if self.secret is not None:
            env[SECRET_ENV] = self.secret.hex()
        return env

    def _spawn(self, member: Member) -> None:
        logfile = self._logs.get(member.node_id)
        if logfile is None:
            logfile = self._logs[member.node_id] = open(self.log_path(member.node_id), "ab")  # noqa: SIM115
        command = [
            sys.executable,
            "-m",
            "reference.runtime.node_main",
            self.node_config(member).to_json(),
        ]
        member.proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=logfile, stderr=logfile, env=self._child_env()
        )

    # -- telemetry ----------------------------------------------------------
    def _trace_fault(self, kind: str, node: str, **fields: Any) -> None:
        self.telemetry.trace(node, kind, **fields)

    def stats(self, node_id: str) -> dict[str, Any]:
        """Counters, histogram summaries and per-link counts of one up node."""
        member = self._member(node_id)
        if member.host is not None:
            return member.host.telemetry()
        if member.control is None or not member.control.connected.is_set():
            raise RuntimeUsageError(
                f"stats({node_id!r}): node is {member.status}, no control channel"
            )
        return dict(self._run(member.control.command("stats")))

    # -- shutdown -----------------------------------------------------------
    def close(self) -> None:
        """Kill every process, close every socket, delete the temporary data dir."""
        if self._closed:
            return
        for member in self.members.values():
            if member.kind == "local":
                self._halt_local(member)
            elif member.status != "crashed":
                if member.status == "paused":
                    self._signal_cont(member)
                self._kill(member)
                self._reap(member)
        self._cleanup()
        if self._stop_freezing is not None:
            self._stop_freezing()
            gc.unfreeze()  # this process goes on: its objects are collectable again
        # Every task on the loop (links, readers, control) ends with its sockets.
        tasks = asyncio.all_tasks(self.loop)
        for task in tasks:
            task.cancel()
        if tasks:
            self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self.loop.run_until_complete(asyncio.sleep(0))  # let closed transports finish
        self.loop.close()
        for logfile in self._logs.values():
            logfile.close()
        for sock in self._reserved_ports:
            sock.close()
        self._closed = True
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _cleanup(self) -> None:
        """Backend-specific teardown after every node is down (Docker removes containers)."""

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeUsageError("the runtime is closed")

    def __enter__(self) -> ProcessRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
