"""The control channel: how the harness steers a node process it cannot call.

The runtime dials each node (hello kind "control") and sends commands as
sealed frames; the node applies each one and acknowledges it:

    {"op": "blocks", "seq": 7, "out": [...], "in": [...]}   who to cut, both ways
    {"op": "peers", "seq": 8, "addrs": {id: [host, port]}}  the address book
    {"op": "clock", "seq": 9, "skew_ms": 5.0, "drift_ppm": 0.0}
    {"op": "stats", "seq": 10}                             counters, histograms, links
    {"op": "go", "seq": 11}                start a node booted held (the start barrier)
    {"op": "snapshot", "seq": 12}          a copy of the node object, pickled to a file
    {"op": "net", "seq": 13, "loss": 0.2, "duplicate": 0.0, "reorder": 0.0}
                          message faults on what this node sends (probabilities)
    -> {"ack": 7, "result": ...}

and the node pushes its metrics every 100 ms:
`{"event": "metrics", "counts": {...}, "samples": {...}, "traces": [...]}`.

Commands carry the node's whole state for that aspect ("these are all your
cuts"), never a delta, so a command can be re-sent to a restarted node
without thinking about what it missed.

A node treats the end of its control connection as the end of its harness
and exits, so no node outlives the run that started it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reference.codec import encode_value
from reference.runtime import frames
from reference.runtime.frames import FrameError, Hello, Session
from reference.runtime.host import NodeHost
from reference.runtime.spec import FORWARD_TRACE, pickle_value, seal
from reference.runtime.transport import MessageFaults

TRACE_BACKLOG_MAX = 10_000  # trace events kept between flushes
# Trace fields cross the control channel only when small: a plain value, or a
# tuple or list of at most this many plain values. Anything else (a Paxos
# replica traces every batch it learns) crosses as a one-line summary: shipping
# each batch whole to the harness, encoded here and decoded there, cost the
# replicas and the harness more CPU than replicating it did. The simulator's
# traces keep the values themselves (the explorer checks agreement on them).
TRACE_FIELD_ITEMS_MAX = 8
SAMPLES_PER_FLUSH_MAX = 10_000  # histogram samples per name per flush
METRICS_FLUSH_MS = 100.0
CONTROL_DIAL_TIMEOUT_S = 30.0


_PLAIN = (str, int, float, bool, type(None))


def _jsonable(value: Any) -> Any:
    """A trace field as it crosses the control channel (see TRACE_FIELD_ITEMS_MAX)."""
    if isinstance(value, _PLAIN):
        return value
    if (
        isinstance(value, tuple | list)
        and len(value) <= TRACE_FIELD_ITEMS_MAX
        and all(isinstance(item, _PLAIN) for item in value)
    ):
        return value
    if isinstance(value, tuple | list | dict | set | frozenset):
        return f"<{type(value).__name__} of {len(value)} items>"
    return f"<{type(value).__name__}>"


class ForwardingMetrics:
    """A node process's MetricsSink: batches counts, samples and traces for the harness.

    Sending each `ctx.count` as a frame would cost more than the work it
    counts, so the node accumulates and flushes every `METRICS_FLUSH_MS`
    (bounded: past the caps, samples and traces are dropped and counted).
    """

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.samples: dict[str, list[float]] = {}
        self.traces: deque[dict[str, Any]] = deque(maxlen=TRACE_BACKLOG_MAX)
        self.dropped_samples = 0

    def count(self, node: str, name: str, n: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    def observe(self, node: str, name: str, value: float) -> None:
        batch = self.samples.setdefault(name, [])
        if len(batch) < SAMPLES_PER_FLUSH_MAX:
            batch.append(value)
        else:
            self.dropped_samples += 1

    def trace(self, node: str, kind: str, **fields: Any) -> None:
        self.traces.append({"kind": kind, "fields": {k: _jsonable(v) for k, v in fields.items()}})

    def forward(self, channel: str, args: tuple[Any, ...]) -> None:
        """A `ForwardedCall` (reference.runtime.spec): its arguments go up as a trace."""
        encoded = json.dumps(args, default=repr)
        self.traces.append({"kind": FORWARD_TRACE, "fields": {"channel": channel, "args": encoded}})

    def take(self) -> dict[str, Any] | None:
        """The batch since the last take, as a control event (None if empty)."""
        if not (self.counts or self.samples or self.traces):
            return None
        batch = {
            "event": "metrics",
            "counts": self.counts,
            "samples": self.samples,
            "traces": list(self.traces),
        }
        self.counts, self.samples = {}, {}
        self.traces.clear()
        return batch


class NodeControl:
    """The node's end: apply commands to a NodeHost, forward its metrics."""

    def __init__(
        self,
        host: NodeHost,
        metrics: ForwardingMetrics,
        on_closed: Callable[[], None],
        snapshot_dir: str | Path | None = None,
        secret: bytes | None = None,
    ) -> None:
        self.host = host
        self.metrics = metrics
        self._on_closed = on_closed
        self._snapshot_dir = Path(snapshot_dir) if snapshot_dir is not None else None
        self._secret = secret
        self._snapshots = 0
        self._writer: asyncio.StreamWriter | None = None
        self._session: Session | None = None
        self.attached = asyncio.Event()  # set once a harness has connected

    def _write(self, data: dict[str, Any]) -> None:
        assert self._writer is not None and self._session is not None
        if self._writer.is_closing():  # the harness hung up: nobody to tell
            return
        self._writer.write(self._session.seal("acceptor", encode_value(data)))

    async def _flush_metrics(self) -> None:
        while self._writer is not None and not self._writer.is_closing():
            batch = self.metrics.take()
            if batch is not None:
                self._write(batch)
            await asyncio.sleep(METRICS_FLUSH_MS / 1000.0)

    async def serve(
        self,
        hello: Hello,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        session: Session,
    ) -> None:
        """Run one control connection to its end (the transport hands it over)."""
        if self._writer is not None and not self._writer.is_closing():
            raise FrameError(f"second control connection from {hello.src}; one harness at a time")
        # A dialer left over from an earlier incarnation of this node (it was
        # still retrying when the node was killed and restarted on the same
        # port) must not attach: its runtime drops it at once, and a node whose
        # control connection ends exits.
        _, _, wanted = hello.src.partition("/")
        if wanted and wanted != str(self.host.incarnation):
            raise FrameError(
                f"control connection for incarnation {wanted}; this is {self.host.incarnation}"
            )
        self._writer, self._session = writer, session
        self.attached.set()
        self.host.log.info("control connection from %s", hello.src)
        flusher = asyncio.get_running_loop().create_task(self._flush_metrics())
        try:
            while True:
                command = frames.decode_control(await session.read(reader, "dialer"))
                try:
                    self._write({"ack": command.get("seq"), "result": self.apply(command)})
                except (KeyError, TypeError, ValueError, FrameError) as exc:
                    self.host.log.warning("bad control command %r: %s", command.get("op"), exc)
                    self._write({"ack": command.get("seq"), "error": str(exc)})
        finally:
            flusher.cancel()
            self._writer = self._session = None
            self._on_closed()

    def apply(self, command: dict[str, Any]) -> Any:
        op = command.get("op")
        transport = self.host.transport
        if op == "blocks":
            transport.set_blocks(frozenset(command["out"]), frozenset(command["in"]))
        elif op == "peers":
            transport.set_addrs({n: (a[0], int(a[1])) for n, a in command["addrs"].items()})
        elif op == "net":
            transport.set_message_faults(MessageFaults.from_json(command))
        elif op == "clock":
            self.host.clock.skew_ms = float(command["skew_ms"])
            self.host.clock.drift_ppm = float(command["drift_ppm"])
        elif op == "stats":
            return self.host.telemetry()
        elif op == "ping":
            return {"incarnation": self.host.incarnation}
        elif op == "go":
            self.host.release()
            # What on_start reported reaches the harness before the ack does.
            batch = self.metrics.take()
            if batch is not None:
                self._write(batch)
        elif op == "snapshot":
            return self._snapshot()
        else:
            raise FrameError(f"unknown control op {op!r}")
        return None

    def _snapshot(self) -> dict[str, Any]:
        """Pickle the live node object to a file the harness reads (checks that audit state).

        A file, not a frame: a ledger replica's state outgrows any sane frame
        bound. The reply carries the bytes' SHA-256 (and an HMAC under the
        cluster secret, when there is one) over this authenticated channel,
        so the harness unpickles only what this node wrote.
        """
        if self._snapshot_dir is None:
            raise ValueError("this node has no directory for snapshots")
        node = self.host.node
        if node is None:
            raise ValueError(f"{self.host.node_id} has no live node to snapshot")
        blob = pickle_value(node)
        self._snapshots += 1
        name = f"{self.host.node_id}.snapshot-{self.host.incarnation}-{self._snapshots}.pkl"
        (self._snapshot_dir / name).write_bytes(blob)
        mac = seal(self._secret, self.host.node_id, blob) if self._secret is not None else ""
        return {"file": name, "sha256": hashlib.sha256(blob).hexdigest(), "mac": mac}


class ControlClient:
    """The runtime's end: one connection to one node, commands with acknowledgements."""

    def __init__(
        self,
        node_id: str,
        cluster: str,
        secret: bytes | None,
        max_frame_bytes: int,
        on_metrics: Callable[[dict[str, Any]], None],
        on_closed: Callable[[], None],
        log: logging.Logger,
        incarnation: int | None = None,
    ) -> None:
        self.node_id = node_id
        self.incarnation = incarnation  # the node process this client is for
        self._on_closed = on_closed
        self._cluster = cluster
        self._secret = secret
        self._max_frame_bytes = max_frame_bytes
        self._on_metrics = on_metrics
        self._log = log
        self._writer: asyncio.StreamWriter | None = None
        self._session: Session | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._next_seq = 0
        self._reader_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.connected = asyncio.Event()

    async def connect(
        self, addr: tuple[str, int], deadline_s: float, alive: Callable[[], bool]
    ) -> None:
        """Dial until the node answers; give up at `deadline_s` (loop time) or if it died."""
        loop = self._loop = asyncio.get_running_loop()
        src = "harness" if self.incarnation is None else f"harness/{self.incarnation}"
        hello = Hello(kind="control", src=src, cluster=self._cluster)
        pause_s = 0.01
        while True:
            try:
                reader, writer, session = await frames.dial(
                    addr[0], addr[1], hello, self._secret, self._max_frame_bytes
                )
                break
            except (OSError, asyncio.IncompleteReadError, FrameError, TimeoutError) as exc:
                if not alive():
                    raise ConnectionError(f"node {self.node_id} exited while booting") from None
                if loop.time() + pause_s > deadline_s:
                    raise TimeoutError(
                        f"node {self.node_id} at {addr} did not answer: {exc}"
                    ) from None
                await asyncio.sleep(pause_s)
                pause_s = min(pause_s * 2, 0.2)
        self._writer, self._session = writer, session
        self._reader_task = loop.create_task(self._read(reader, session))
        self.connected.set()

    def command(self, op: str, **fields: Any) -> asyncio.Future[Any]:
        """Send one command; the future resolves with the node's result."""
        assert self._loop is not None, "command() before connect()"
        future: asyncio.Future[Any] = self._loop.create_future()
        if self._writer is None or self._session is None or self._writer.is_closing():
            future.set_exception(ConnectionError(f"no control connection to {self.node_id}"))
            return future
        seq = self._next_seq
        self._next_seq += 1
        self._pending[seq] = future
        self._writer.write(
            self._session.seal("dialer", encode_value({"op": op, "seq": seq, **fields}))
        )
        return future

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def _read(self, reader: asyncio.StreamReader, session: Session) -> None:
        try:
            while True:
                data = frames.decode_control(await session.read(reader, "acceptor"))
                if "ack" in data:
                    future = self._pending.pop(data["ack"], None)
                    if future is None or future.done():
                        continue
                    if "error" in data:
                        future.set_exception(RuntimeError(f"{self.node_id}: {data['error']}"))
                    else:
                        future.set_result(data.get("result"))
                elif data.get("event") == "metrics":
                    self._on_metrics(data)
        except FrameError as exc:
            self._log.warning("control connection to %s: %s", self.node_id, exc)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.close()
            self._on_closed()

    def close(self) -> None:
        self.connected.clear()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError(f"control connection to {self.node_id} lost"))
        self._pending.clear()
        if self._writer is not None:
            self._writer.close()
            self._writer = self._session = None
        task, self._reader_task = self._reader_task, None
        if task is not None and task is not asyncio.current_task(task.get_loop()):
            task.cancel()
