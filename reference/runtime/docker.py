"""DockerRuntime: the same node processes, one container each, on private networks.

Everything above the process is ProcessRuntime's: the control channel,
local (harness-side) nodes, the fault API. What changes is what a node *is*:

- a container from the image built by `docker_image.ensure_image` (no
  registry: the image is assembled from this machine's files), with the
  Python install and the project bind-mounted read-only and the run's data
  directory read-write (the file disks, the config, the logs);
- one private bridge network per run, where nodes talk to each other (by
  container name, through Docker's DNS) and to the harness (at the
  network's gateway address: the control channel and the local nodes). The
  cuts below drop container addresses only, never the gateway's, so cutting
  links between nodes never cuts the harness off from them. (A second,
  control-only network was tried first: Docker's DNS then answered a
  container's name with its address on either network, and cut links
  leaked through the other one.)
- crash is `docker kill` (SIGKILL to the node, PID 1), restart is `docker
  start` of the same container (it re-reads its config file: incarnation,
  cuts), pause and resume are `docker pause` / `unpause` (cgroup freezer);
- a cut between two containers is real: an iptables DROP rule on the
  receiver's INPUT chain for the sender's data address, so packets vanish
  in the kernel and TCP sees a dead link (retransmits, then recovery on
  heal). Cuts between a container and a local node are enforced by the
  transports, as in ProcessRuntime (a rule on the gateway address would cut
  every local node at once).

Faults meet containers in any state. A cut is *desired state*: each
container's rule set is recomputed from the cut set whenever it changes,
and written with `docker exec` by worker threads (`_CutWorkers`) while the
harness's loop goes on. Each container gets its rule sets in the order the
schedule asked for them (the latest one wins; one superseded before its
turn is skipped). A container that is killed, paused or restarting when
its turn comes gets its rules when it runs again (`docker start` gives it a
fresh network namespace, `unpause` re-applies what it missed). Killing or
removing a paused container unpauses it first (with the cgroup v1 freezer
the engine would wait for ever for a frozen process to die); pausing or
resuming one that has just died is a no-op, and its death is noticed
through its control channel. An engine that times out fails no fault: it
is logged. `settle()` waits for the rules.

Caveat of real cuts: a one-way iptables cut of a TCP link also starves the
opposite direction's connection of its ACKs, so a one-way cut between two
containers behaves like a two-way cut after a while (Jepsen has the same).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import re
import secrets
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import reference
from reference.runtime import frames
from reference.runtime.docker_image import ensure_image, python_prefix
from reference.runtime.node_main import LOG_ENV, SECRET_ENV
from reference.runtime.process import Member, ProcessRuntime, SpawnError
from reference.runtime.transport import Address

log = logging.getLogger("d11.runtime.docker")

CONTAINER_PORT = 7000  # every container has its own address, so one port for all
DOCKER_STOP_WAIT_S = 10
CUT_QUEUE_MAX = 10_000  # rule sets waiting for the worker (a cut is a few per container)
CUT_RETRY_MS = 100.0  # re-apply a node's rules after a container that was not running
CUT_RETRIES_MAX = 100  # then give up: its control channel says it is dead by then
CUT_WORKER_STOP_S = 10.0
CUT_THREADS = 4  # containers written at once (each write is a `docker exec`)
# A node whose control channel ends exits (node_main), but the engine may
# report the container's exit seconds later under load: look this many times,
# 50 ms apart (ProcessRuntime looks 20 times), then kill what still runs.
CONTROL_LOST_CHECKS = 100
# `settle` waits for restarted containers too: `docker start` and a Python
# boot took over 10 s (ProcessRuntime's wait) under a load of 35 on 2 cores.
SETTLE_TIMEOUT_MS = 60_000.0


# The CPU weight of a run's containers. Docker puts every container under one
# cgroup (/docker), whose weight is one process's: on a machine loaded by other
# work (a load of 40 on 2 cores), 27 containers shared 1/41 of the CPU where the
# same 27 nodes as plain processes get 27/67, and chapter 4 on Docker
# acknowledged no payment in 30 s. So a run's containers go under a cgroup of
# their own weighing as many processes as it holds containers, as the process
# backend's nodes would. Only with cgroup v1 and the cgroupfs driver, where the
# harness may create that cgroup; elsewhere containers keep Docker's default.
CGROUP_CPU = Path("/sys/fs/cgroup/cpu")
CGROUP_ROOT = Path("/sys/fs/cgroup")
CPU_SHARES_PER_CONTAINER = 1024  # a process's weight at nice 0


def _own_cgroup(client: Any, cluster: str) -> str | None:
    """The cgroup parent for a run's containers (created here), or None if not possible."""
    try:
        info = client.info()
        if info.get("CgroupDriver") != "cgroupfs" or str(info.get("CgroupVersion")) != "1":
            return None
        (CGROUP_CPU / cluster).mkdir()
    except Exception as exc:  # not root, read-only cgroupfs, an engine error: Docker's default
        log.info("containers keep docker's cgroup: %s", exc)
        return None
    return f"/{cluster}"


def _set_cpu_weight(cluster: str, containers: int) -> None:
    with contextlib.suppress(OSError):
        weight = CPU_SHARES_PER_CONTAINER * max(1, containers)
        (CGROUP_CPU / cluster / "cpu.shares").write_text(str(weight))


def _remove_cgroups(cluster: str) -> None:
    """Remove a run's (empty) cgroups in every hierarchy the engine made them in."""
    for hierarchy in CGROUP_ROOT.iterdir() if CGROUP_ROOT.is_dir() else ():
        with contextlib.suppress(OSError):
            (hierarchy / cluster).rmdir()


def engine_unreachable_reason() -> str | None:
    """None if a Docker engine answers here; otherwise why not (for skips and errors)."""
    try:
        import docker

        docker.from_env(timeout=5).ping()
    except Exception as exc:
        return f"no Docker engine reachable: {exc}"
    return None


def remove_stale(client: Any) -> int:
    """Remove containers and networks of runs whose harness process is gone.

    A run's cluster name holds its harness's pid (`d11-<pid>-<hex>`); a
    harness killed before `close()` leaves its containers behind, and the
    next run sweeps them. Returns how many objects were removed.
    """
    import docker.errors

    def orphaned(labels: dict[str, str]) -> bool:
        match = re.fullmatch(r"d11-(\d+)-[0-9a-f]+", labels.get("d11.cluster", ""))
        if match is None:
            return False
        try:
            os.kill(int(match.group(1)), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    removed = 0
    for container in client.containers.list(all=True, filters={"label": "d11.cluster"}):
        if orphaned(container.labels) and _remove_container(container):
            removed += 1
    for network in client.networks.list(filters={"label": "d11.cluster"}):
        if orphaned(network.attrs.get("Labels") or {}):
            with contextlib.suppress(docker.errors.APIError):
                network.remove()
                removed += 1
    for cgroup in CGROUP_CPU.glob("d11-*") if CGROUP_CPU.is_dir() else ():
        if orphaned({"d11.cluster": cgroup.name}):
            _remove_cgroups(cgroup.name)
    return removed


def _remove_container(container: Any) -> bool:
    """Remove a container whatever its state; False (logged) if the engine would not.

    A paused one is thawed first: with the cgroup v1 freezer, the SIGKILL of
    `rm -f` is never delivered to frozen processes, and the engine waits for
    their exit for ever (seen here: every later call to the engine hung).
    """
    if _engine_call(container.reload, f"look at {container.name}") and (
        container.status == "paused"
    ):
        _engine_call(container.unpause, f"unpause {container.name} to remove it")
    return _engine_call(lambda: container.remove(force=True), f"remove {container.name}")


def _container_name(cluster: str, node_id: str) -> str:
    return f"{cluster}-{re.sub(r'[^a-zA-Z0-9_.-]', '_', node_id)}"


class _CutWorkers:
    """Threads that write iptables rule sets into containers, off the harness's loop.

    `submit(node, container_id, sources)` hands over the whole INPUT chain a
    container must have now. A few threads share the work, each with a
    Docker client of its own (docker-py's is not shared across threads), but
    one container is only ever written by one thread at a time, and always
    with the latest rule set asked for it: sets for the same container are
    applied in the order asked, and one that was superseded before its turn
    is skipped (under load, `docker exec` takes a few hundred ms, and a
    backlog of stale rules would put the network ever further behind the
    schedule). Each outcome reaches `report(node, sources, outcome, covered)`
    on the harness's loop: "applied", or "not running" (killed, paused,
    restarting, gone: re-applied when it runs again), or "retry" (the engine
    timed out or hung up: written again), or the error, which
    the runtime raises from its next run (a cut that cannot be made must
    not pass for one that was); `covered` is how many submissions it answers.
    """

    def __init__(
        self,
        make_client: Callable[[], Any],
        loop: Any,
        report: Callable[[str, tuple[str, ...], str, int], None],
        threads: int = CUT_THREADS,
    ) -> None:
        assert threads >= 1
        self._make_client = make_client
        self._loop = loop
        self._report = report
        self._lock = threading.Lock()
        # node -> (container id, rule set, submissions it answers): the latest only.
        self._wanted: dict[str, tuple[str, tuple[str, ...], int]] = {}
        self._busy: set[str] = set()  # containers a thread is writing now
        # One lock per container, held while a thread writes its rules and while
        # the harness pauses, resumes or kills it: a `docker exec` that meets a
        # container frozen under it hangs in the frozen cgroup, and the engine's
        # unpause then waits for it (seen: every later call to the engine hung).
        self._container_locks: dict[str, threading.Lock] = {}
        self._ready: queue.Queue[str | None] = queue.Queue()  # nodes with work, FIFO
        self._threads = [
            threading.Thread(target=self._run, name=f"d11-cuts-{i}", daemon=True)
            for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, node_id: str, container_id: str, sources: tuple[str, ...]) -> None:
        with self._lock:
            superseded = self._wanted.get(node_id)
            covered = 1 + (superseded[2] if superseded is not None else 0)
            self._wanted[node_id] = (container_id, sources, covered)
            if superseded is None and node_id not in self._busy:
                self._ready.put(node_id)

    def lock(self, node_id: str) -> threading.Lock:
        """The lock of one container (see __init__); hold it around pause, resume, kill."""
        with self._lock:
            return self._container_locks.setdefault(node_id, threading.Lock())

    def stop(self) -> None:
        for _ in self._threads:
            self._ready.put(None)
        for thread in self._threads:
            thread.join(CUT_WORKER_STOP_S)

    def _run(self) -> None:
        client, reason = None, ""
        try:
            client = self._make_client()
        except Exception as exc:  # no engine: every job fails, loudly, and the run ends
            reason = f"no Docker client for the cut workers: {exc}"
        while True:
            node_id = self._ready.get()
            if node_id is None:
                return
            with self._lock:
                container_id, sources, covered = self._wanted.pop(node_id)
                self._busy.add(node_id)
            if client is None:
                outcome = reason
            else:
                with self.lock(node_id):
                    outcome = _write_rules(client, container_id, sources)
            with contextlib.suppress(RuntimeError):  # the loop is closed: the run is over
                self._loop.call_soon_threadsafe(self._report, node_id, sources, outcome, covered)
            with self._lock:
                self._busy.discard(node_id)
                if node_id in self._wanted:  # asked again meanwhile: its turn comes again
                    self._ready.put(node_id)


def _write_rules(client: Any, container_id: str, sources: tuple[str, ...]) -> str:
    """Replace a container's INPUT chain by DROP rules for `sources`; the outcome."""
    import docker.errors

    script = " && ".join(
        ["iptables -F INPUT", *(f"iptables -A INPUT -s {ip} -j DROP" for ip in sources)]
    )
    try:
        exec_id = client.api.exec_create(container_id, ["/bin/sh", "-c", script])["Id"]
        output = client.api.exec_start(exec_id)
        code = client.api.exec_inspect(exec_id)["ExitCode"]
    except docker.errors.NotFound:
        return "not running"  # removed: the run is closing
    except docker.errors.APIError as exc:
        if exc.status_code == 409:  # not running, or paused (frozen: cannot exec)
            return "not running"
        return f"docker exec failed: {exc.explanation or exc}"
    except Exception as exc:  # the engine's timeout, a dropped connection: try again
        log.warning("iptables in %s: %s: %s", container_id[:12], type(exc).__name__, exc)
        return "retry"
    if code != 0:
        # A container killed while the shell ran reports 137, or no code at all;
        # one that stopped between exec_create and exec_start, 126 from runc.
        stopped = code in (None, 137) or (code == 126 and b"stopped container" in output)
        if stopped:
            return "not running"
        if code == 126 and b"OCI runtime exec failed" in output:
            # runc could not start the exec (seen: "read init-p: connection reset by
            # peer" as the container was killed): write it again, in whatever state.
            return "retry"
        return f"iptables exit {code}: {output[:200]!r}"
    return "applied"


class DockerRuntime(ProcessRuntime):
    """See the module docstring. Use as a context manager, or call `close()`."""

    # TCP only: a cut is made in the network between containers (_CutWorkers),
    # and a Unix socket in the shared data directory would go around it.
    unix_sockets = False

    # Creating and starting a container costs the engine seconds on a busy
    # machine (up to ~7 s each seen under a load of 25 on 2 cores), and the
    # harness starts them one by one before it dials any: the first one
    # started must wait for its control channel until the last one is.
    boot_ms_per_node = 10_000.0

    def __init__(
        self,
        *,
        seed: int = 0,
        topology: Any = None,
        data_dir: str | Path | None = None,
        max_frame_bytes: int = frames.MAX_FRAME_BYTES_DEFAULT,
        fsync: bool = True,
        client: Any = None,
    ) -> None:
        import docker

        self.docker = client or docker.from_env()
        self.docker.ping()
        remove_stale(self.docker)
        self.image = ensure_image(self.docker)
        cluster = f"d11-{os.getpid()}-{secrets.token_hex(4)}"
        labels = {"d11.cluster": cluster}
        self.cgroup_parent = _own_cgroup(self.docker, cluster)
        self.data_net = self.docker.networks.create(
            f"{cluster}-data", driver="bridge", labels=labels
        )
        self.containers: dict[str, Any] = {}
        # Each container's rule set (the sources its INPUT chain drops): the last
        # one handed to the worker, and the last one it reported applied.
        self._rules_wanted: dict[str, tuple[str, ...]] = {}
        self._rules: dict[str, tuple[str, ...]] = {}
        self._cuts_in_flight = 0  # rule sets submitted, not yet reported
        self._cut_retries: dict[str, int] = {}
        self.data_net.reload()
        gateway = self.data_net.attrs["IPAM"]["Config"][0]["Gateway"]
        # The harness's local nodes listen on the data network's gateway:
        # beyond loopback, so the cluster secret is mandatory (and made here).
        super().__init__(
            seed=seed,
            topology=topology,
            host=gateway,
            secret=secrets.token_bytes(32),
            data_dir=data_dir,
            max_frame_bytes=max_frame_bytes,
            fsync=fsync,
            cluster=cluster,
        )
        os.chmod(self.data_dir, 0o755)
        self._cuts = _CutWorkers(lambda: docker.from_env(timeout=30), self.loop, self._rules_done)

    # -- addresses ------------------------------------------------------------
    def _new_addr(self, node_id: str) -> Address:
        return ("", CONTAINER_PORT)  # known once the container runs

    def listen_addr(self, member: Member) -> Address:
        return ("0.0.0.0", CONTAINER_PORT)

    def addr_book(self, for_node: str) -> dict[str, Address]:
        in_container = self.members[for_node].kind == "process"
        book: dict[str, Address] = {}
        for node_id, member in self.members.items():
            if member.kind == "process" and in_container:
                book[node_id] = (_container_name(self.cluster, node_id), CONTAINER_PORT)
            else:
                book[node_id] = member.addr
        return book

    # -- containers -------------------------------------------------------------
    def _mounts(self) -> dict[str, dict[str, str]]:
        repo = Path(reference.__file__).resolve().parent.parent
        read_only = {str(python_prefix()), str(repo), str(Path(sys.prefix).resolve())}
        mounts = {path: {"bind": path, "mode": "ro"} for path in sorted(read_only)}
        mounts[str(self.data_dir)] = {"bind": str(self.data_dir), "mode": "rw"}
        return mounts

    def _config_path(self, member: Member) -> Path:
        return self.data_dir / f"{member.node_id}.json"

    def _spawn(self, member: Member) -> None:
        import docker.errors

        self._config_path(member).write_text(self.node_config(member).to_json())
        try:
            container = self.containers.get(member.node_id)
            fresh = container is None
            if container is None:
                container = self._create(member)
            container.start()  # a restart is `docker start` of the same container
            container.reload()
            networks = container.attrs["NetworkSettings"]["Networks"]
            data_ip = networks[self.data_net.name]["IPAddress"]
        except (docker.errors.DockerException, KeyError, _requests_error()) as exc:
            raise SpawnError(f"container of {member.node_id}: {exc}") from None
        if not data_ip:
            raise SpawnError(f"container of {member.node_id} has no address (it exited at once)")
        moved = member.addr[0] != data_ip
        member.addr = (data_ip, CONTAINER_PORT)
        # A new network namespace: no rules. But a rule set for its last run may
        # still be on its way to the same container: unless it is brand new, its
        # chain is unknown, and the rules that hold now are written after that one.
        self._cut_retries.pop(member.node_id, None)
        if moved:
            self._rules_wanted.clear()  # every chain unknown: all written again
            if self._started:
                self._broadcast_addrs()
        if fresh:
            self._rules_wanted[member.node_id] = self._rules[member.node_id] = ()
        else:
            self._rules_wanted.pop(member.node_id, None)
        self._apply_iptables()

    def _create(self, member: Member) -> Any:
        mounted = self._mounts()
        python_path = [
            p for p in sys.path if p and any(p.startswith(m) for m in mounted) and os.path.isdir(p)
        ]
        assert self.secret is not None
        container = self.docker.containers.create(
            self.image,
            [sys.executable, "-m", "reference.runtime.node_main", f"@{self._config_path(member)}"],
            name=_container_name(self.cluster, member.node_id),
            hostname=member.node_id[:63],
            environment={
                SECRET_ENV: self.secret.hex(),
                LOG_ENV: str(self.log_path(member.node_id)),
                "PYTHONPATH": os.pathsep.join(python_path),
            },
            volumes=mounted,
            working_dir=str(self.data_dir),
            network=self.data_net.name,
            cap_add=["NET_ADMIN"],  # for the iptables rules that cut links
            labels={"d11.cluster": self.cluster, "d11.node": member.node_id},
            **({"cgroup_parent": self.cgroup_parent} if self.cgroup_parent else {}),
        )
        self.containers[member.node_id] = container
        if self.cgroup_parent:
            _set_cpu_weight(self.cluster, len(self.containers))
        return container

    # Every call to the engine below may fail: an API error (the container is
    # not in the state the call needs) or, on a loaded machine, a timeout. A
    # fault is then logged and the run goes on: what the container really did
    # shows through its control channel (a node that dies is reaped).
    def _kill(self, member: Member) -> None:
        with self._cuts.lock(member.node_id):  # no `docker exec` in it meanwhile
            self._kill_container(member)

    def _kill_container(self, member: Member) -> None:
        container = self.containers.get(member.node_id)
        if container is None:
            return
        frozen = member.status == "paused" or (
            _engine_call(container.reload, f"look at {member.node_id}")
            and container.status == "paused"  # paused late, by a slow engine
        )
        if frozen:
            # Thaw it first: with the cgroup v1 freezer a SIGKILL never reaches a
            # frozen process, and the engine hangs waiting for it to exit (it
            # runs for the moment between the two calls, as a SIGCONT would let it).
            _engine_call(container.unpause, f"unpause {member.node_id} to kill it")
        _engine_call(container.kill, f"kill {member.node_id}", conflict_ok=True)  # SIGKILL

    def settle(self, timeout_ms: float = SETTLE_TIMEOUT_MS) -> None:
        super().settle(timeout_ms)

    def _control_lost(
        self, member: Member, incarnation: int, checks_left: int = CONTROL_LOST_CHECKS
    ) -> None:
        """As ProcessRuntime's, but a container that still runs at the end is killed.

        Seen under a load of 35 on 2 cores: six replicas hung up during boot
        while the engine still said they ran; they stayed "up" without a
        control channel, and the boot waited for them until it failed (240 s).
        A node without its harness is on its way out: now it is reaped, down
        like a crashed node (the final phase restarts it), and the run goes on.
        """
        current = member.incarnation == incarnation and member.status != "crashed"
        if checks_left <= 0 and current and self._poll_exit(member) is None:
            log.warning("node %s hung up its control channel, yet runs: killed", member.node_id)
            self._trace_fault("hung_up", member.node_id)
            self._reap(member)
            return
        super()._control_lost(member, incarnation, checks_left)

    def _poll_exit(self, member: Member) -> int | None:
        container = self.containers.get(member.node_id)
        if container is None:
            return None
        if not _engine_call(container.reload, f"look at {member.node_id}"):
            return None  # not known to have ended
        state = container.attrs["State"]
        return None if state["Running"] else _exit_status(state["ExitCode"])

    def _wait_exit(self, member: Member) -> int | None:
        container = self.containers.get(member.node_id)
        if container is None:
            return None
        try:
            result = container.wait(timeout=DOCKER_STOP_WAIT_S)
        except Exception as exc:  # the engine's timeout or error, whatever its class
            log.warning("container of %s did not report its exit: %s", member.node_id, exc)
            return None
        return _exit_status(int(result["StatusCode"]))

    def _signal_stop(self, member: Member) -> None:
        with self._cuts.lock(member.node_id):  # never frozen under a `docker exec`
            _engine_call(self.containers[member.node_id].pause, f"pause {member.node_id}")

    def _signal_cont(self, member: Member) -> None:
        with self._cuts.lock(member.node_id):
            _engine_call(self.containers[member.node_id].unpause, f"resume {member.node_id}")
        self._apply_iptables()  # what it could not take while frozen

    # -- real cuts ----------------------------------------------------------------
    def _blocks_of(self, node_id: str) -> tuple[frozenset[str], frozenset[str]]:
        """Transport-level blocks only for links with a local node at one end."""
        out, into = super()._blocks_of(node_id)
        if self.members[node_id].kind == "local":
            return out, into
        local = {n for n, m in self.members.items() if m.kind == "local"}
        return out & local, into & local

    def _apply_cuts(self) -> None:
        super()._apply_cuts()
        self._apply_iptables()

    def _apply_iptables(self) -> None:
        """Hand the worker each running container's rule set that changed (no waiting).

        A paused container cannot exec: it is skipped here and gets its rules
        on resume. A crashed one gets them when it starts again.
        """
        for node_id, member in self.members.items():
            if member.kind != "process" or member.status != "up":
                continue
            sources = tuple(
                sorted(
                    self.members[src].addr[0]
                    for src, dst in self.cuts
                    if dst == node_id
                    and self.members[src].kind == "process"
                    and self.members[src].addr[0]
                )
            )
            if node_id in self._rules_wanted and self._rules_wanted[node_id] == sources:
                continue  # written, or on its way (absent: unknown, write it)
            container = self.containers.get(node_id)
            if container is None:
                continue
            self._rules_wanted[node_id] = sources
            self._cuts_in_flight += 1
            self._cuts.submit(node_id, container.id, sources)

    def _rules_done(
        self, node_id: str, sources: tuple[str, ...], outcome: str, covered: int
    ) -> None:
        """A worker's report, on the loop: record it, or arrange to try again."""
        self._cuts_in_flight -= covered
        assert self._cuts_in_flight >= 0, "more rule sets reported than submitted"
        if outcome == "applied":
            self._rules[node_id] = sources
            self._cut_retries.pop(node_id, None)
            self._trace_fault("iptables", node_id, drop_from=list(sources))
            return
        if self._rules_wanted.get(node_id) == sources:
            # Its chain is unknown now (even "no rules" must be written again).
            del self._rules_wanted[node_id]
        if outcome not in ("not running", "retry"):
            self._errors.append(RuntimeError(f"iptables in {node_id}: {outcome}"))
            return
        member = self.members.get(node_id)
        retries = self._cut_retries.get(node_id, 0)
        if member is not None and member.status == "up" and retries < CUT_RETRIES_MAX:
            # Up as far as we know, yet not written: the engine was slow, or the
            # container just restarted, or is dying (then its control channel
            # reports it, and a restart writes its rules).
            self._cut_retries[node_id] = retries + 1
            self.call_after(CUT_RETRY_MS, self._apply_iptables)

    def _settling(self) -> list[str]:
        return ["iptables"] if self._cuts_in_flight else []

    def iptables_rules(self, node_id: str) -> str:
        """The INPUT chain of a node's container, as `iptables -S` prints it (tests, reports)."""
        code, output = self.containers[node_id].exec_run(["iptables", "-S", "INPUT"])
        assert code == 0, output
        return str(output.decode())

    def _cleanup(self) -> None:
        self._cuts.stop()
        for container in self.containers.values():
            _remove_container(container)
        _engine_call(self.data_net.remove, f"remove network {self.data_net.name}")
        if self.cgroup_parent:
            _remove_cgroups(self.cluster)
        info = {"cluster": self.cluster, "containers": [c.name for c in self.containers.values()]}
        log.info("docker run cleaned up: %s", json.dumps(info))


def _requests_error() -> type[Exception]:
    """The base class of the HTTP errors docker-py lets through (timeouts, resets)."""
    import requests

    return requests.exceptions.RequestException


def _engine_call(call: Callable[[], Any], what: str, conflict_ok: bool = False) -> bool:
    """Make one call to the engine; False, logged, if the engine refused or timed out.

    `conflict_ok`: a 409 (the container is already in that state: a kill of
    one that stopped) is no news, and not logged.
    """
    import docker.errors

    try:
        call()
    except (docker.errors.DockerException, _requests_error()) as exc:
        if conflict_ok and getattr(exc, "status_code", None) == 409:
            return False
        explanation = getattr(exc, "explanation", None) or exc
        log.warning("%s: %s", what, str(explanation)[:200])
        return False
    return True


def _exit_status(code: int) -> int:
    """Docker reports a death by signal N as 128 + N; say -N, as subprocess does."""
    return -(code - 128) if code > 128 else code
