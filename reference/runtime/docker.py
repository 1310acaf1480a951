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

Caveat of real cuts: a one-way iptables cut of a TCP link also starves the
opposite direction's connection of its ACKs, so a one-way cut between two
containers behaves like a two-way cut after a while (Jepsen has the same).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import sys
from pathlib import Path
from typing import Any

import reference
from reference.runtime import frames
from reference.runtime.docker_image import ensure_image, python_prefix
from reference.runtime.node_main import LOG_ENV, SECRET_ENV
from reference.runtime.process import Member, ProcessRuntime
from reference.runtime.transport import Address

log = logging.getLogger("d11.runtime.docker")

CONTAINER_PORT = 7000  # every container has its own address, so one port for all
DOCKER_STOP_WAIT_S = 10


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
        if orphaned(container.labels):
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
                removed += 1
    for network in client.networks.list(filters={"label": "d11.cluster"}):
        if orphaned(network.attrs.get("Labels") or {}):
            with contextlib.suppress(docker.errors.APIError):
                network.remove()
                removed += 1
    return removed


def _container_name(cluster: str, node_id: str) -> str:
    return f"{cluster}-{re.sub(r'[^a-zA-Z0-9_.-]', '_', node_id)}"


class DockerRuntime(ProcessRuntime):
    """See the module docstring. Use as a context manager, or call `close()`."""

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
        self.data_net = self.docker.networks.create(
            f"{cluster}-data", driver="bridge", labels=labels
        )
        self.containers: dict[str, Any] = {}
        self._rules: dict[str, list[str]] = {}  # iptables sources dropped, as last applied
        self._rules_stale: set[str] = set()  # containers to re-apply once they run again
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
        self._config_path(member).write_text(self.node_config(member).to_json())
        container = self.containers.get(member.node_id)
        if container is None:
            container = self._create(member)
        container.start()  # a restart is `docker start` of the same container
        container.reload()
        networks = container.attrs["NetworkSettings"]["Networks"]
        data_ip = networks[self.data_net.name]["IPAddress"]
        moved = member.addr[0] != data_ip
        member.addr = (data_ip, CONTAINER_PORT)
        # A new network namespace: no rules yet; and if it moved, others' rules are stale.
        self._rules.pop(member.node_id, None)
        if moved:
            self._rules.clear()
            if self._started:
                self._broadcast_addrs()
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
        )
        self.containers[member.node_id] = container
        return container

    def _kill(self, member: Member) -> None:
        import docker.errors

        container = self.containers.get(member.node_id)
        if container is None:
            return
        with contextlib.suppress(docker.errors.APIError):  # already stopped
            container.kill()  # SIGKILL

    def _poll_exit(self, member: Member) -> int | None:
        container = self.containers.get(member.node_id)
        if container is None:
            return None
        container.reload()
        state = container.attrs["State"]
        return None if state["Running"] else _exit_status(state["ExitCode"])

    def _wait_exit(self, member: Member) -> int | None:
        container = self.containers.get(member.node_id)
        if container is None:
            return None
        result = container.wait(timeout=DOCKER_STOP_WAIT_S)
        return _exit_status(int(result["StatusCode"]))

    def _signal_stop(self, member: Member) -> None:
        self.containers[member.node_id].pause()

    def _signal_cont(self, member: Member) -> None:
        self.containers[member.node_id].unpause()
        if member.node_id in self._rules_stale:
            self._apply_iptables()

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

    # --8<-- [start:iptables]
    def _apply_iptables(self) -> None:
        """Make each running container's INPUT chain drop exactly its cut senders."""
        for node_id, member in self.members.items():
            if member.kind != "process" or member.status == "crashed":
                continue
            sources = sorted(
                self.members[src].addr[0]
                for src, dst in self.cuts
                if dst == node_id
                and self.members[src].kind == "process"
                and self.members[src].addr[0]
            )
            if self._rules.get(node_id, []) == sources:  # a fresh container has none
                continue
            if member.status == "paused":  # a frozen container cannot exec: later
                self._rules_stale.add(node_id)
                continue
            script = " && ".join(
                ["iptables -F INPUT", *(f"iptables -A INPUT -s {ip} -j DROP" for ip in sources)]
            )
            code, output = self.containers[node_id].exec_run(["/bin/sh", "-c", script])
            if code != 0:
                raise RuntimeError(
                    f"iptables in {node_id} failed ({code}): {output.decode()[:200]}"
                )
            self._rules[node_id] = sources
            self._rules_stale.discard(node_id)
            self._trace_fault("iptables", node_id, drop_from=sources)

    # --8<-- [end:iptables]

    def iptables_rules(self, node_id: str) -> str:
        """The INPUT chain of a node's container, as `iptables -S` prints it (tests, reports)."""
        code, output = self.containers[node_id].exec_run(["iptables", "-S", "INPUT"])
        assert code == 0, output
        return str(output.decode())

    def _cleanup(self) -> None:
        import docker.errors

        for container in self.containers.values():
            try:
                container.remove(force=True)
            except docker.errors.APIError as exc:
                log.warning("could not remove container %s: %s", container.name, exc)
        try:
            self.data_net.remove()
        except docker.errors.APIError as exc:
            log.warning("could not remove network %s: %s", self.data_net.name, exc)
        info = {"cluster": self.cluster, "containers": [c.name for c in self.containers.values()]}
        log.info("docker run cleaned up: %s", json.dumps(info))


def _exit_status(code: int) -> int:
    """Docker reports a death by signal N as 128 + N; say -N, as subprocess does."""
    return -(code - 128) if code > 128 else code
