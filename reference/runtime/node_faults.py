"""Node faults: crash, restart, pause and resume a node, and skew its clock.

`NodeFaults` is the part of ProcessRuntime (process.py) that acts on one
node's process: SIGKILL for a crash (the file disk keeps only what was
synced), a new process with the same id, address and disk for a restart,
SIGSTOP and SIGCONT for a pause. A local node is halted, paused or resumed
on the runtime's loop instead. The five calls on the process itself are the
seam the Docker backend (docker.py) overrides with container calls.
"""

from __future__ import annotations

import asyncio
import signal
from typing import TYPE_CHECKING

from reference.runtime.members import Member

KILL_WAIT_S = 5.0


class NodeFaults:
    """Faults on one node at a time; mixed into ProcessRuntime."""

    if TYPE_CHECKING:  # what this part uses of the rest of the runtime

        def _member(self, node_id: str) -> Member: ...
        def _trace_fault(self, kind: str, node: str, **fields: object) -> None: ...
        def _boot(self, member: Member) -> None: ...
        def _reap(self, member: Member) -> None: ...
        def _quiet(self, future: asyncio.Future[object]) -> None: ...

    def crash(self, node_id: str) -> None:
        """SIGKILL the node's process (or drop a local node): unsynced writes are lost."""
        member = self._member(node_id)
        if member.status == "crashed":
            return
        self._trace_fault("crash", node_id)
        if member.kind == "local":
            self._halt_local(member)
            return
        self._kill(member)
        self._reap(member)

    def restart(self, node_id: str) -> None:
        """Boot a crashed node again: same id, address and disk; a fresh object."""
        member = self._member(node_id)
        if member.status != "crashed":
            raise ValueError(f"restart({node_id!r}): it is {member.status}, not crashed")
        member.incarnation += 1
        self._trace_fault("restart", node_id)
        self._boot(member)

    def pause(self, node_id: str) -> None:
        """SIGSTOP: the process keeps its memory and sockets but runs nothing."""
        member = self._member(node_id)
        if member.status == "crashed":
            raise ValueError(f"pause({node_id!r}): it is crashed")
        if member.status == "paused":
            return
        self._trace_fault("pause", node_id)
        member.status = "paused"
        if member.kind == "local":
            assert member.host is not None
            member.host.pause()
        else:
            self._signal_stop(member)

    def resume(self, node_id: str) -> None:
        """SIGCONT: the process runs again and handles what queued meanwhile."""
        member = self._member(node_id)
        if member.status != "paused":
            return
        self._trace_fault("resume", node_id)
        member.status = "up"
        if member.kind == "local":
            assert member.host is not None
            member.host.resume()
        else:
            self._signal_cont(member)

    def set_clock(self, node_id: str, skew_ms: float = 0.0, drift_ppm: float = 0.0) -> None:
        member = self._member(node_id)
        member.skew_ms, member.drift_ppm = skew_ms, drift_ppm
        self._trace_fault("clock", node_id, skew_ms=skew_ms, drift_ppm=drift_ppm)
        if member.host is not None:
            member.host.clock.skew_ms, member.host.clock.drift_ppm = skew_ms, drift_ppm
        elif member.control is not None and member.control.connected.is_set():
            self._quiet(member.control.command("clock", skew_ms=skew_ms, drift_ppm=drift_ppm))

    def _halt_local(self, member: Member) -> None:
        member.status = "crashed"
        if member.host is not None:
            member.host.stop()
            member.host = None

    # The process itself: the Docker backend overrides these with container calls.
    def _kill(self, member: Member) -> None:
        if member.proc is not None and member.proc.poll() is None:
            member.proc.send_signal(signal.SIGKILL)

    def _poll_exit(self, member: Member) -> int | None:
        """The exit status if the node's process has ended, else None."""
        return member.proc.poll() if member.proc is not None else None

    def _wait_exit(self, member: Member) -> int | None:
        """Wait (bounded) for the process to end; its status, once (then forgotten)."""
        if member.proc is None:
            return None
        status = member.proc.wait(timeout=KILL_WAIT_S)
        member.proc = None
        return status

    def _signal_stop(self, member: Member) -> None:
        if member.proc is not None:
            member.proc.send_signal(signal.SIGSTOP)

    def _signal_cont(self, member: Member) -> None:
        if member.proc is not None:
            member.proc.send_signal(signal.SIGCONT)
