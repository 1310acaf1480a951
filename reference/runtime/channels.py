"""Control channels: dialing each process node's channel, settling, and its loss.

`ControlChannels` is the part of ProcessRuntime (process.py) that talks to
node processes. After a spawn it dials the node's control channel
(control.py) until the node answers or its process dies, then re-sends what
may have changed meanwhile (cuts, clock, message faults). `settle` waits
until every up node has its channel and has applied every command. When a
channel ends, the runtime looks whether the process died by itself and, if
so, reaps it as crashed. Metrics batches arrive over the same channel and
are recorded in the runtime's telemetry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from reference.runtime.control import ControlClient
from reference.runtime.members import Member
from reference.runtime.transport import Address, MessageFaults
from reference.telemetry import Telemetry

log = logging.getLogger("d11.runtime")

T = TypeVar("T")
SETTLE_TIMEOUT_MS = 10_000.0
EXIT_POLL_S = 0.25  # while dialing a booting node, look at most this often whether it died


class ControlChannels:
    """Each process node's control channel, from dial to loss; mixed into ProcessRuntime."""

    cluster: str
    secret: bytes
    max_frame_bytes: int
    loop: asyncio.AbstractEventLoop
    members: dict[str, Member]
    message_faults: MessageFaults
    telemetry: Telemetry
    boot_failures: list[tuple[str, str]]
    _closed: bool

    if TYPE_CHECKING:  # what this part uses of the rest of the runtime

        def control_addr(self, member: Member) -> Address: ...
        def log_path(self, node_id: str) -> Path: ...
        def _log_tail(self, node_id: str, lines: int = 5) -> str: ...
        def _control_wait_s(self) -> float: ...
        def _spawn_task(self, coro: Coroutine[object, object, None]) -> None: ...
        def _run(self, coro: Awaitable[T]) -> T: ...
        def _raise_errors(self) -> None: ...
        def _trace_fault(self, kind: str, node: str, **fields: object) -> None: ...
        def _blocks_json(self, node_id: str) -> dict[str, list[str]]: ...
        def _kill(self, member: Member) -> None: ...
        def _poll_exit(self, member: Member) -> int | None: ...
        def _wait_exit(self, member: Member) -> int | None: ...

    def _attach_control(self, member: Member) -> None:
        incarnation = member.incarnation
        client = ControlClient(
            member.node_id,
            self.cluster,
            self.secret,
            self.max_frame_bytes,
            on_metrics=lambda batch: self._on_metrics(member.node_id, batch),
            on_closed=lambda: self._control_lost(member, incarnation),
            log=log,
            incarnation=incarnation,
        )
        member.control = client
        self._spawn_task(self._connect(member, client, self._control_wait_s()))

    async def _connect(self, member: Member, client: ControlClient, wait_s: float) -> None:
        deadline_s = self.loop.time() + wait_s

        next_poll_s = 0.0

        def alive() -> bool:  # this client's process: not a later incarnation's
            nonlocal next_poll_s
            if member.control is not client:
                return False
            now_s = self.loop.time()
            if now_s < next_poll_s:
                return True
            # Asked after every failed dial; for a container each answer is a
            # call to the engine, made on this loop: at most a few a second.
            next_poll_s = now_s + EXIT_POLL_S
            return self._poll_exit(member) is None

        try:
            await client.connect(self.control_addr(member), deadline_s, alive)
        except (TimeoutError, ConnectionError) as exc:
            if member.control is client:
                log.error("%s (see %s)", exc, self.log_path(member.node_id))
                self._trace_fault("boot_failed", member.node_id, error=str(exc))
                self._reap(member)
                self.boot_failures.append((member.node_id, self._log_tail(member.node_id)))
            return
        if member.control is not client:  # crashed and restarted meanwhile
            client.close()
            return
        # Re-send what may have changed between the spawn and now.
        self._quiet(client.command("blocks", **self._blocks_json(member.node_id)))
        self._quiet(client.command("clock", skew_ms=member.skew_ms, drift_ppm=member.drift_ppm))
        self._quiet(client.command("net", **self.message_faults.to_json()))

    def _control_lost(self, member: Member, incarnation: int, checks_left: int = 20) -> None:
        """The control connection ended: if the process died by itself, it crashed.

        The socket closes a moment before the exit status is ready, so look
        again a few times (every 50 ms) before concluding anything; then, as a
        process that hung up may still be on its way out (a loaded machine
        takes seconds), once a second for as long as this incarnation lives,
        so a node that dies while booting is reaped, not waited for.
        """
        if self._closed or member.incarnation != incarnation or member.status == "crashed":
            return
        status = self._poll_exit(member)
        if status is None:
            if checks_left > 0:
                self.loop.call_later(0.05, self._control_lost, member, incarnation, checks_left - 1)
                return
            if checks_left == 0:
                log.warning("node %s hung up its control channel but runs on", member.node_id)
            self.loop.call_later(1.0, self._control_lost, member, incarnation, -1)
            return
        log.error(
            "node %s exited by itself with status %s (see %s)",
            member.node_id,
            status,
            self.log_path(member.node_id),
        )
        self._trace_fault("exit", member.node_id, status=status)
        self._reap(member)

    def _reap(self, member: Member) -> None:
        """Mark the node crashed, and make sure its process is gone (bounded wait)."""
        member.status = "crashed"
        if member.control is not None:
            member.control.close()
            member.control = None
        if self._poll_exit(member) is None:
            self._kill(member)
        status = self._wait_exit(member)
        if status is not None:
            member.exits.append(status)

    def _quiet(self, future: asyncio.Future[Any]) -> None:
        """Fire and forget a command: a lost connection is reported elsewhere."""
        future.add_done_callback(lambda f: f.cancelled() or f.exception())

    def settle(self, timeout_ms: float = SETTLE_TIMEOUT_MS) -> None:
        """Wait until every up node has its control channel and has applied all commands."""
        self._run(self._settle(timeout_ms))
        self._raise_errors()

    async def _settle(self, timeout_ms: float) -> None:
        deadline_s = self.loop.time() + timeout_ms / 1000.0
        while self.loop.time() < deadline_s:
            waiting = [
                m.node_id
                for m in self.members.values()
                if m.status == "up"
                and m.kind == "process"
                and (m.control is None or not m.control.connected.is_set() or m.control.pending)
            ]
            waiting += [
                m.node_id
                for m in self.members.values()
                if m.kind == "local"
                and m.status == "up"
                and (m.host is None or m.host.node is None)
            ]
            waiting += self._settling()
            if not waiting:
                return
            await asyncio.sleep(0.005)
        raise TimeoutError(f"nodes not settled after {timeout_ms:.0f} ms: {waiting}")

    def _settling(self) -> list[str]:
        """Backend work still in flight that `settle` waits for (Docker: iptables rules)."""
        return []

    def _on_metrics(self, node_id: str, batch: dict[str, Any]) -> None:
        """A node process's batch of metrics, stamped with arrival time (<= 100 ms late)."""
        for name, n in batch.get("counts", {}).items():
            self.telemetry.count(node_id, name, int(n))
        for name, values in batch.get("samples", {}).items():
            for value in values:
                self.telemetry.observe(node_id, name, float(value))
        for event in batch.get("traces", []):
            self.telemetry.trace(node_id, str(event["kind"]), **event["fields"])
