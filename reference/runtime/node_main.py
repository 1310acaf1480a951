"""The program every node process runs: `python -m reference.runtime.node_main CONFIG`.

CONFIG is one JSON object (see `NodeConfig`), or `@path` of a file holding
it (a container is restarted with the same command, so it reads its current
config from the shared data directory); the cluster secret comes in the
environment (`D11_CLUSTER_SECRET`, hex) so it never shows in `ps`, and a
node refuses to run without one. The process hosts one node (host.py) until its control connection
ends, then exits; a bug in a handler exits with status 70, like a crash.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reference.disk.file import FileDisk
from reference.runtime.control import CONTROL_DIAL_TIMEOUT_S, ForwardingMetrics, NodeControl
from reference.runtime.eventloop import loop_factory
from reference.runtime.gcpolicy import keep_frozen
from reference.runtime.host import Clock, NodeHost
from reference.runtime.sampler import PROFILE_MODE_ENV, CpuSampler
from reference.runtime.spec import NodeSpec, SpecError, set_forward_sink, spec_from_json
from reference.runtime.transport import MessageFaults, TransportConfig

SECRET_ENV = "D11_CLUSTER_SECRET"
LOG_ENV = "D11_NODE_LOG"  # append the log to this file instead of stderr
# Profile the node with cProfile into this directory (`<node>.prof`, rewritten
# every PROFILE_DUMP_S: the harness SIGKILLs its nodes, so no atexit runs), or
# with D11_PROFILE=sample, sample it on CPU time (`<node>.stacks`, sampler.py).
PROFILE_ENV = "D11_PROFILE_DIR"
PROFILE_DUMP_S = 1.0
EXIT_NODE_BUG = 70  # EX_SOFTWARE: a handler raised


@dataclass
class NodeConfig:
    """Everything a node process needs to know; JSON on its command line."""

    node_id: str
    spec: dict[str, Any]
    host: str
    port: int
    cluster: str
    data_dir: str
    epoch_s: float
    seed: int
    incarnation: int
    max_frame_bytes: int
    addrs: dict[str, list[Any]] = field(default_factory=dict)
    blocked_out: list[str] = field(default_factory=list)
    blocked_in: list[str] = field(default_factory=list)
    skew_ms: float = 0.0
    drift_ppm: float = 0.0
    # Message faults from the first send (MessageFaults.to_json(); empty: none).
    message_faults: dict[str, float] = field(default_factory=dict)
    fsync: bool = True
    hold: bool = False  # boot without on_start until the harness says "go"
    # How long to wait for the harness's control connection before exiting.
    # The runtime allows more while it boots a cluster: it dials each node
    # only once it has started them all (a container takes seconds to start).
    control_wait_s: float = CONTROL_DIAL_TIMEOUT_S
    unix_dir: str | None = None  # TransportConfig.unix_dir: peers on this machine

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> NodeConfig:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("node config must be a JSON object")
        return cls(**data)


def disk_path(data_dir: str | Path, node_id: str) -> Path:
    return Path(data_dir) / f"{node_id}.disk"


async def serve(config: NodeConfig, secret: bytes | None) -> None:
    """Host the node until the harness hangs up (or never calls within the timeout)."""
    log = logging.getLogger(f"d11.node.{config.node_id}")
    done = asyncio.Event()

    def fatal(exc: BaseException) -> None:
        logging.shutdown()
        os._exit(EXIT_NODE_BUG)

    transport_config = TransportConfig(
        node_id=config.node_id,
        host=config.host,
        port=config.port,
        cluster=config.cluster,
        secret=secret,
        max_frame_bytes=config.max_frame_bytes,
        addrs={n: (a[0], int(a[1])) for n, a in config.addrs.items()},
        unix_dir=config.unix_dir,
    )
    metrics = ForwardingMetrics()
    set_forward_sink(metrics.forward)  # before the factory is unpickled and called
    spec = spec_from_json(config.spec)
    factory = (
        spec.resolve()
        if isinstance(spec, NodeSpec)
        else spec.resolve(config.data_dir, secret, config.node_id)
    )
    host = NodeHost(
        factory,
        transport_config,
        disk=FileDisk(
            disk_path(config.data_dir, config.node_id), fsync=config.fsync, group_commit=True
        ),
        clock=Clock(config.epoch_s, config.skew_ms, config.drift_ppm),
        seed=config.seed,
        incarnation=config.incarnation,
        metrics=metrics,
        on_fatal=fatal,
        log=log,
    )
    control = NodeControl(
        host, metrics, on_closed=done.set, snapshot_dir=config.data_dir, secret=secret
    )
    host.transport.set_control_handler(control.serve)
    host.transport.set_blocks(frozenset(config.blocked_out), frozenset(config.blocked_in))
    if config.message_faults:
        host.transport.set_message_faults(MessageFaults.from_json(config.message_faults))
    profile_dir = os.environ.get(PROFILE_ENV)
    if profile_dir and os.environ.get(PROFILE_MODE_ENV) == "sample":
        _start_sampler(Path(profile_dir) / f"{config.node_id}.stacks")
    elif profile_dir:
        _start_profiler(Path(profile_dir) / f"{config.node_id}.prof")
    await host.start(hold=config.hold)
    keep_frozen(asyncio.get_running_loop())  # no full-heap GC pauses (gcpolicy.py)
    log.info(
        "node %s up on %s:%d (incarnation %d)",
        config.node_id,
        config.host,
        host.transport.port,
        config.incarnation,
    )
    try:
        await asyncio.wait_for(control.attached.wait(), config.control_wait_s)
    except TimeoutError:
        log.error("no harness connected within %.0f s; exiting", config.control_wait_s)
        return
    await done.wait()
    log.info("control connection closed; node %s exiting", config.node_id)
    host.stop()


def _start_profiler(path: Path) -> None:
    """Profile this process, dumping the stats every PROFILE_DUMP_S (a debugging aid)."""
    import cProfile

    # The loop thread's CPU time, not the wall clock: a send that wakes a peer
    # on a busy machine is preempted inside the system call, and timed by the
    # wall it looked like the node's biggest cost.
    profiler = cProfile.Profile(time.thread_time)
    loop = asyncio.get_running_loop()

    def dump() -> None:
        profiler.dump_stats(path)  # disables the profiler: enable it again
        profiler.enable()
        loop.call_later(PROFILE_DUMP_S, dump)

    path.parent.mkdir(parents=True, exist_ok=True)
    profiler.enable()
    loop.call_later(PROFILE_DUMP_S, dump)


def _start_sampler(path: Path) -> None:
    """Sample this process on CPU time (sampler.py), dumping every PROFILE_DUMP_S."""
    sampler = CpuSampler()
    loop = asyncio.get_running_loop()

    def dump() -> None:
        sampler.dump(path)
        loop.call_later(PROFILE_DUMP_S, dump)

    path.parent.mkdir(parents=True, exist_ok=True)
    sampler.start()
    loop.call_later(PROFILE_DUMP_S, dump)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m reference.runtime.node_main CONFIG_JSON", file=sys.stderr)
        return 2
    try:
        text = Path(args[0][1:]).read_text() if args[0].startswith("@") else args[0]
        config = NodeConfig.from_json(text)
    except (OSError, ValueError, TypeError) as exc:
        print(f"error: bad node config: {exc}", file=sys.stderr)
        return 2
    secret_hex = os.environ.get(SECRET_ENV)
    log_file = os.environ.get(LOG_ENV)
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s {config.node_id} %(levelname)s %(message)s",
        **({"filename": log_file} if log_file else {"stream": sys.stderr}),
    )
    if not secret_hex:
        logging.getLogger("d11").error(
            "node %s cannot run: no cluster secret in %s", config.node_id, SECRET_ENV
        )
        return 2
    try:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            runner.run(serve(config, bytes.fromhex(secret_hex)))
    except (ValueError, OSError, SpecError) as exc:
        logging.getLogger("d11").error("node %s cannot run: %s", config.node_id, exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
