"""The real network of one node: a TCP listener, one outgoing link per peer, and cuts.

(On one machine, peers also listen on and dial Unix sockets: see
`TransportConfig.unix_dir`. Everything below holds for both.)

Each node dials one connection per destination and only ever *writes* on
it; it accepts connections from its peers and only *reads* from those. So a
message from a to b always travels on a's link to b, in order, and a reply
travels on b's link to a.

Partitions are enforced here, on both ends of a cut link: the sender drops
what it would send to a peer it is cut from (`blocked_out`), the receiver
drops what arrives from a peer it is cut from (`blocked_in`), which also
catches frames that were already in flight when the cut began. The harness
sets both sets through the control channel (see control.py).

Message faults (the `loss`, `duplicate` and `reorder` nemeses) are injected
here too, at the sender, per message, as the simulator injects them in its
network: a message is lost with probability `loss`, sent twice with
probability `duplicate`, and each copy is held back with probability
`reorder` for a few milliseconds, so what the node sends to the same peer
meanwhile overtakes it. The draws come from a seeded stream of the node's
own, but time is real: which message is hit depends on when it is sent, so
a run is not replayable to the message. With no faults set, the send path
pays one attribute test.

Everything is bounded: the queue of a link that is not connected, the bytes
buffered towards a slow or stopped peer, and the size of a frame. What does
not fit is dropped and counted, as a real network would drop it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import math
import os
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

from reference.codec import CodecError, Message, decode, encode
from reference.runtime import frames
from reference.runtime.frames import FrameError, Hello, Session
from reference.sim.rng import stream

Address = tuple[str, int]
# Handles a message now and returns None, or returns what to await before the
# next message on the link (the node is paused or busy: see NodeHost._deliver).
MessageHandler = Callable[[str, Message], Awaitable[None] | None]
ControlHandler = Callable[
    [Hello, asyncio.StreamReader, asyncio.StreamWriter, Session], Awaitable[None]
]

LINK_QUEUE_FRAMES_MAX = 10_000  # frames waiting for a connection, per peer
LINK_BUFFER_BYTES_MAX = 8 << 20  # bytes buffered towards one peer (a stopped one, say)
READ_CHUNK_BYTES = 256 << 10  # what a reader takes from its socket at once
# First and largest pause between failed dials. The largest bounds how long
# after a restarted peer answers its first message can reach it.
DIAL_BACKOFF_MS = (20.0, 250.0)
# How long a reordered message is held back before it is sent: uniform in this
# range. A hop on loopback or a Docker bridge takes tens of microseconds, so
# even the low end lets several later messages to the same peer overtake it;
# the high end stays well under the protocols' timeouts (a Paxos leader's
# lease, a client's retry), as the simulator's reorders do (one to three
# link latencies, see SimNet.send_general).
REORDER_DELAY_MS = (2.0, 40.0)
HELD_FRAMES_MAX = 10_000  # reordered messages waiting to be sent, per node
# A Unix socket's path lives in sun_path: 108 bytes, the last one a NUL.
UNIX_PATH_BYTES_MAX = 107


def unix_path(unix_dir: str, node_id: str) -> str | None:
    """Where `node_id` listens for its peers in `unix_dir`; None if the path is too long."""
    path = os.path.join(unix_dir, f"{node_id}.sock")
    return path if len(os.fsencode(path)) <= UNIX_PATH_BYTES_MAX else None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class LinkStats:
    sent: int = 0
    dropped_cut: int = 0  # cut by a partition
    dropped_full: int = 0  # queue or buffer bound reached
    dropped_down: int = 0  # queued while the peer did not answer a dial (down, cut off)
    received: int = 0
    dropped_in: int = 0  # arrived from a peer we are cut from
    # Message faults (named as in the simulator's LinkStats where it has them):
    dropped_loss: int = 0  # lost to the `loss` setting (never sent)
    duplicated: int = 0  # extra copies made by the `duplicate` setting
    reordered: int = 0  # copies held back by the `reorder` setting


PROBABILITY_NAMES = ("loss", "duplicate", "reorder")


@dataclass(frozen=True)
class MessageFaults:
    """The message-fault setting of a node: three probabilities, each in [0, 1]."""

    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0

    def __post_init__(self) -> None:
        for name in PROBABILITY_NAMES:
            p = getattr(self, name)
            # bool is an int: True is no probability anyone meant.
            if isinstance(p, bool) or not isinstance(p, int | float):
                raise TypeError(f"message fault {name} must be a number, got {p!r}")
            if not (math.isfinite(p) and 0.0 <= p <= 1.0):
                raise ValueError(f"message fault {name} is a probability in [0, 1], got {p!r}")
            object.__setattr__(self, name, float(p))

    @classmethod
    def from_json(cls, data: dict[str, object]) -> MessageFaults:
        """From a control command; TypeError or ValueError if a field is missing or bad."""
        missing = [name for name in PROBABILITY_NAMES if name not in data]
        if missing:
            raise ValueError(f"message faults lack {missing}")
        return cls(*(data[name] for name in PROBABILITY_NAMES))  # type: ignore[arg-type]

    def to_json(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in PROBABILITY_NAMES}

    @property
    def any(self) -> bool:
        return bool(self.loss or self.duplicate or self.reorder)


NO_MESSAGE_FAULTS = MessageFaults()


@dataclass
class TransportConfig:
    node_id: str
    host: str
    port: int
    cluster: str
    secret: bytes | None
    max_frame_bytes: int = frames.MAX_FRAME_BYTES_DEFAULT
    addrs: dict[str, Address] = field(default_factory=dict)
    # A directory every node of the run on this machine shares (the process
    # runtime's data directory). Each node then also listens on a Unix socket
    # there (`unix_path`), and dials a peer's socket instead of its loopback
    # TCP port when it finds one: the same frames and handshake, without the
    # TCP stack in every send. Measured on `d11 bench process --batch 1`,
    # three pairs alternated: 280-290 us of CPU a transfer against 297-314.
    # None (containers, other hosts): TCP only.
    unix_dir: str | None = None

    def __post_init__(self) -> None:
        if self.secret is None and not is_loopback(self.host):
            raise ValueError(
                f"node {self.node_id} listens on {self.host}, beyond loopback: "
                "a cluster secret is required"
            )


class Transport:
    """One node's TCP endpoint. Create, `await start()`, then `send` from anywhere."""

    def __init__(
        self,
        config: TransportConfig,
        on_message: MessageHandler,
        on_control: ControlHandler | None,
        log: logging.Logger,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.addrs = dict(config.addrs)
        self.blocked_out: frozenset[str] = frozenset()
        self.blocked_in: frozenset[str] = frozenset()
        self.stats: dict[str, LinkStats] = {}
        self.rejected = 0  # connections refused: bad frame, bad tag, wrong cluster
        self._on_message = on_message
        self._on_control = on_control
        self._log = log
        self._links: dict[str, _Link] = {}
        self._server: asyncio.Server | None = None
        self._unix_server: asyncio.Server | None = None  # see TransportConfig.unix_dir
        self._readers: set[asyncio.Task[None]] = set()
        # The last message encoded and its bytes: a leader sends the very same
        # Accept (one frozen object) to every follower, so it is encoded once.
        self._last_msg: Message | None = None
        self._last_payload = b""
        # Message faults: None when off, so the send path tests one attribute.
        self._faults: MessageFaults | None = None
        self._rng = rng if rng is not None else stream(0, f"transport/{config.node_id}")
        self._held: dict[int, asyncio.TimerHandle] = {}  # reordered copies, by number
        self._held_next = 0
        # The loop it runs on, once started: asyncio.get_running_loop() makes a
        # getpid() system call on every call, and a link asks once a turn.
        self.loop: asyncio.AbstractEventLoop | None = None

    def set_control_handler(self, on_control: ControlHandler) -> None:
        self._on_control = on_control

    @property
    def port(self) -> int:
        assert self._server is not None, "transport not started"
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(
            self._accept, self.config.host, self.config.port, reuse_address=True
        )
        path = self._unix_path(self.config.node_id)
        if path is not None:
            # A previous incarnation's socket file: nobody listens on it any more.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            self._unix_server = await asyncio.start_unix_server(self._accept, path)

    def _unix_path(self, node_id: str) -> str | None:
        if self.config.unix_dir is None:
            return None
        return unix_path(self.config.unix_dir, node_id)

    def dial_path(self, dst: str) -> str | None:
        """The Unix socket to dial `dst` on, if it listens on one here; else None (TCP).

        Only for a peer whose address is on loopback: a socket file in a
        shared directory says nothing about a node on another host. The file
        of a node that is down refuses the dial, as its TCP port would.
        """
        path = self._unix_path(dst)
        if path is None or not is_loopback(self.addrs[dst][0]) or not os.path.exists(path):
            return None
        return path

    def close(self) -> None:
        """Stop listening and drop every connection (in-flight frames are lost)."""
        for handle in self._held.values():
            handle.cancel()
        self._held.clear()
        for link in self._links.values():
            link.close()
        self._links.clear()
        # Socket files stay: a restarted incarnation may have bound the same path.
        for server in (self._server, self._unix_server):
            if server is not None:
                server.close()
        for task in list(self._readers):
            task.cancel()
        self._readers.clear()

    def _stats(self, peer: str) -> LinkStats:
        stats = self.stats.get(peer)
        if stats is None:
            stats = self.stats[peer] = LinkStats()
        return stats

    # -- sending ------------------------------------------------------------
    def send(self, dst: str, msg: Message) -> None:
        if dst not in self.addrs:
            raise ValueError(
                f"{self.config.node_id} sent {type(msg).__name__} to unknown node {dst!r}"
            )
        if dst in self.blocked_out:
            self._stats(dst).dropped_cut += 1
            return
        link = self._links.get(dst)
        if link is None:
            link = self._links[dst] = _Link(self, dst)
        if msg is not self._last_msg:
            self._last_msg, self._last_payload = msg, encode(msg)
        if self._faults is not None:
            self._send_faulty(dst, link, self._last_payload)
            return
        link.send(self._last_payload)

    def flush(self) -> None:
        """Write what this turn sent so far now, not at the turn's end (`_Link._uncork`)."""
        for link in self._links.values():
            if link._corked:
                link._uncork()

    @property
    def message_faults(self) -> MessageFaults:
        return self._faults if self._faults is not None else NO_MESSAGE_FAULTS

    def set_message_faults(self, faults: MessageFaults) -> None:
        """The whole setting (zero everywhere turns faults off); applies to the next send."""
        self._faults = faults if faults.any else None

    def _send_faulty(self, dst: str, link: _Link, payload: bytes) -> None:
        """The simulator's draws, in its order: lost? duplicated? each copy held back?"""
        faults, rand, stats = self.message_faults, self._rng.random, self._stats(dst)
        if faults.loss and rand() < faults.loss:
            stats.dropped_loss += 1
            return
        copies = 1
        if faults.duplicate and rand() < faults.duplicate:
            copies = 2
            stats.duplicated += 1
        for _ in range(copies):
            if faults.reorder and rand() < faults.reorder:
                low_ms, high_ms = REORDER_DELAY_MS
                self._hold(dst, payload, low_ms + (high_ms - low_ms) * rand())
            else:
                link.send(payload)

    def _hold(self, dst: str, payload: bytes, delay_ms: float) -> None:
        stats = self._stats(dst)
        if len(self._held) >= HELD_FRAMES_MAX:
            stats.dropped_full += 1
            return
        stats.reordered += 1
        key, self._held_next = self._held_next, self._held_next + 1
        loop = asyncio.get_running_loop()
        self._held[key] = loop.call_later(delay_ms / 1000.0, self._release_held, key, dst, payload)

    def _release_held(self, key: int, dst: str, payload: bytes) -> None:
        """A held copy is due: sent now, unless a cut began meanwhile."""
        del self._held[key]
        if dst in self.blocked_out:
            self._stats(dst).dropped_cut += 1
            return
        link = self._links.get(dst)
        if link is None:  # the peer moved meanwhile (set_addrs): dial afresh
            link = self._links[dst] = _Link(self, dst)
        link.send(payload)

    def set_blocks(self, blocked_out: frozenset[str], blocked_in: frozenset[str]) -> None:
        self.blocked_out, self.blocked_in = blocked_out, blocked_in
        for dst in blocked_out:
            link = self._links.get(dst)
            if link is not None:
                self._stats(dst).dropped_cut += link.drop_queued()

    def set_addrs(self, addrs: dict[str, Address]) -> None:
        for node, addr in addrs.items():
            if self.addrs.get(node) != addr and node in self._links:
                self._links.pop(node).close()  # it moved: dial afresh
        self.addrs = dict(addrs)

    # -- receiving ----------------------------------------------------------
    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._readers.add(task)
        peer = writer.get_extra_info("peername")
        try:
            hello, session = await frames.accept(
                reader, writer, self.config.secret, self.config.max_frame_bytes
            )
            if hello.cluster != self.config.cluster:
                raise FrameError(
                    f"hello from cluster {hello.cluster!r}, this is {self.config.cluster!r}"
                )
            if hello.kind == "control":
                if self._on_control is None:
                    raise FrameError("control connection to a node that takes no control")
                await self._on_control(hello, reader, writer, session)
            else:
                await self._read_peer(hello.src, reader, writer, session)
        except FrameError as exc:
            self.rejected += 1
            self._log.warning("rejected connection from %s: %s", peer, exc)
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass  # the peer went away (crash, kill, close): nothing to report
        except asyncio.CancelledError:
            # Our own close(). End normally: asyncio 3.11's connection callback
            # calls task.exception(), which raises on a cancelled task.
            pass
        finally:
            self._readers.discard(task)
            writer.close()

    async def _read_peer(
        self,
        src: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        session: Session,
    ) -> None:
        """Every message `src` sends on this connection, handled in order, until it ends.

        The handshake read through `reader`; from here a `_PeerReader` takes
        the socket's bytes as they arrive, starting with what `reader` had
        buffered beyond the hello.
        """
        # Read and written both (typed as the writer's half only; uvloop's
        # transports are no asyncio.Transport subclasses, so no isinstance).
        sock = cast(asyncio.Transport, writer.transport)
        peer = _PeerReader(self, src, session, sock)
        sock.set_protocol(peer)
        sock.resume_reading()  # the stream may have paused it, its buffer full
        leftover: bytearray = vars(reader)["_buffer"]  # the stream's own buffer (no public way)
        if leftover:
            peer.data_received(bytes(leftover))
            leftover.clear()
        if reader.at_eof():  # the peer closed before the protocol took over
            peer.connection_lost(None)
        await peer.done


class _PeerReader(asyncio.Protocol):
    """Reads one peer's frames as the socket delivers them, and hands each message on.

    A protocol, not a task reading a stream: a read is one call from the
    loop, not a waiter's future set, a task woken and its coroutine resumed
    (that wake-up path was about a tenth of the load generator's samples in
    a CPU profile at one transfer a request). A message whose handler
    returns something to await (the node is paused or busy:
    NodeHost._deliver) pauses reading; what came with it waits in
    `_pending`, and is handled, in order, once that is done.
    """

    def __init__(
        self, transport: Transport, src: str, session: Session, sock: asyncio.Transport
    ) -> None:
        self._transport = transport
        self._src = src
        self._session = session
        self._sock = sock
        self._stats = transport._stats(src)
        self._buffer = bytearray()
        self._pending: list[bytes] = []  # payloads behind a message the node made us wait on
        self._waiting = False
        # Ends with the connection: a result when it closed, FrameError when it
        # must be dropped (Transport._accept counts and logs that).
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return
        self._buffer += data
        if not self._waiting:
            self._read_on()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)  # the peer went away: nothing to report

    def _read_on(self) -> None:
        """Handle what was received, in order, until a message makes the node wait."""
        transport, src, stats = self._transport, self._src, self._stats
        try:
            payloads = _payloads(src, self._session.take("dialer", self._buffer))
            if self._pending:
                payloads, self._pending = self._pending + payloads, []
            for i, payload in enumerate(payloads):
                try:
                    msg = decode(payload)
                except CodecError as exc:
                    raise FrameError(f"malformed frame from {src}: {exc}") from None
                if src in transport.blocked_in:
                    stats.dropped_in += 1
                    continue
                stats.received += 1
                waiting = transport._on_message(src, msg)
                if waiting is not None:
                    self._pending = payloads[i + 1 :]
                    self._wait(waiting)
                    return
        except Exception as exc:  # FrameError, or a bug: Transport._accept says which
            if not self.done.done():
                self.done.set_exception(exc)

    def _wait(self, waiting: Awaitable[None]) -> None:
        self._waiting = True
        self._sock.pause_reading()

        async def then_read_on() -> None:
            await waiting
            self._waiting = False
            if self.done.done():
                return
            if not self._sock.is_closing():
                self._sock.resume_reading()
            self._read_on()

        task = asyncio.get_running_loop().create_task(then_read_on())
        self._transport._readers.add(task)  # cancelled by close(), as the readers are
        task.add_done_callback(self._transport._readers.discard)


def _payloads(src: str, bundles: list[bytes]) -> list[bytes]:
    """The messages of the bundles `src` sent, in order (see frames.bundle)."""
    try:
        if len(bundles) == 1:
            return frames.unbundle(bundles[0])
        return [payload for body in bundles for payload in frames.unbundle(body)]
    except FrameError as exc:
        raise FrameError(f"malformed frame from {src}: {exc}") from None


class _Link:
    """The outgoing connection to one peer, dialed lazily, redialed with backoff."""

    def __init__(self, transport: Transport, dst: str) -> None:
        self._transport = transport
        self._dst = dst
        self._queue: deque[bytes] = deque()
        # Messages sent during this turn of the loop, sealed together at its
        # end: one frame (one tag: frames.bundle) in one write (one system
        # call, one wake-up of the peer) for all that a handler sent this
        # peer, not one each.
        self._corked: list[bytes] = []
        self._corked_session: Session | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._session: Session | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def send(self, payload: bytes) -> None:
        stats = self._transport._stats(self._dst)
        config = self._transport.config
        if len(payload) > config.max_frame_bytes - frames.MAC_BYTES - frames.BUNDLE_ITEM_BYTES:
            # Sim has no such bound, so this is not the node's fault: drop it, loudly.
            stats.dropped_full += 1
            self._transport._log.error(
                "dropped a %d-byte message to %s: over the %d-byte frame limit",
                len(payload),
                self._dst,
                config.max_frame_bytes,
            )
            return
        if self._writer is not None and self._session is not None and not self._writer.is_closing():
            if self._writer.transport.get_write_buffer_size() > LINK_BUFFER_BYTES_MAX:
                stats.dropped_full += 1
                return
            if not self._corked:
                self._corked_session = self._session
                (self._transport.loop or asyncio.get_running_loop()).call_soon(self._uncork)
            self._corked.append(payload)
            stats.sent += 1
            return
        if len(self._queue) >= LINK_QUEUE_FRAMES_MAX:
            stats.dropped_full += 1
            return
        self._queue.append(payload)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._connect())

    def _uncork(self) -> None:
        corked, self._corked = self._corked, []
        writer = self._writer
        # Sent on this session only: after a redial they are lost, as
        # frames written into a dropped connection are.
        if (
            corked
            and writer is not None
            and not writer.is_closing()
            and self._session is self._corked_session
        ):
            writer.write(self._seal(corked))

    def _seal(self, payloads: list[bytes]) -> bytes:
        """The frames carrying `payloads`, bundled (send() checked each one's size)."""
        session = self._session
        assert session is not None
        max_bundle_bytes = session.max_frame_bytes - frames.MAC_BYTES
        return b"".join(
            session.seal("dialer", bundled) for bundled in frames.bundle(payloads, max_bundle_bytes)
        )

    def _flush_queue(self, writer: asyncio.StreamWriter) -> None:
        """What waited for the connection, in one write, or dropped if it is lost already.

        One write, not one per frame: a write into a connection that is lost
        (the peer was killed after the handshake) is refused by the loop, and
        from the fifth refused write on the loop logs "socket.send() raised
        exception." for each, so a backlog written frame by frame into a dead
        peer filled stderr with such lines. Frames written into a connection
        lost during the write are lost, as in `_uncork`.
        """
        stats = self._transport._stats(self._dst)
        if writer.is_closing():  # lost between the handshake and now
            stats.dropped_down += self.drop_queued()
            return
        queued = list(self._queue)
        self._queue.clear()
        writer.write(self._seal(queued))
        stats.sent += len(queued)

    def drop_queued(self) -> int:
        dropped = len(self._queue)
        self._queue.clear()
        return dropped

    def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
        self._uncork()  # sent before the close, as each write used to be
        if self._writer is not None:
            self._writer.close()

    async def _connect(self) -> None:
        config = self._transport.config
        backoff_ms = DIAL_BACKOFF_MS[0]
        while self._queue and not self._closed:
            host, port = self._transport.addrs[self._dst]
            hello = Hello(kind="peer", src=config.node_id, cluster=config.cluster)
            try:
                reader, writer, session = await frames.dial(
                    host,
                    port,
                    hello,
                    config.secret,
                    config.max_frame_bytes,
                    unix_path=self._transport.dial_path(self._dst),
                )
            except (OSError, FrameError, asyncio.IncompleteReadError, TimeoutError):
                # The peer is down (or cut off at the IP level): what was waiting
                # for it is lost, as the simulator loses messages to a crashed
                # node. Holding it would hand the peer, once back, a backlog of
                # requests whose senders gave up long ago, to serve before any
                # live one. Only what is sent from now on waits for the next dial.
                self._transport._stats(self._dst).dropped_down += self.drop_queued()
                await asyncio.sleep(backoff_ms / 1000)
                backoff_ms = min(backoff_ms * 2, DIAL_BACKOFF_MS[1])
                continue
            self._writer, self._session = writer, session
            self._flush_queue(writer)
            # The acceptor never writes on a peer link: a read returns only at its end.
            with contextlib.suppress(ConnectionError, OSError):
                await reader.read(1)
            self._writer = self._session = None
            writer.close()
            backoff_ms = DIAL_BACKOFF_MS[0]
