"""The runner on real backends: chapter stages as OS processes or Docker containers.

`run_real(spec, schedule)` is what `d11 test --backend process|docker` does.
The stage is the same object the simulator runs, built the same way
(`stage.build(rt, options)`), but on a `StagingRuntime` that only records
which node each factory makes. Once the stage has said which nodes are its
clients (`dep.roles["client"]`), the nodes are placed:

- the clients become *local* nodes, hosted in this process on the real
  runtime's loop: they record the history through the deployment's `record`
  closure, exactly as in the simulator, and talk TCP to everything else;
- every other node becomes an OS process (or a container), its factory sent
  by value if it cannot be named (`reference.runtime.spec`), rebuilt at
  boot and at every restart.

After that the staging runtime forwards everything (clock, `call_at`, node
and link faults, telemetry) to the real runtime, so the stage's own code
(its final phase, its checks) runs unchanged. The nemesis schedule is the
simulator's: its times count from the start of the traffic, and it is
installed shifted to the moment traffic starts here. Message faults
(loss, duplicate, reorder) are injected by every node's own transport,
the clients' included, at the sender (`reference.runtime.transport`), as
the simulator injects them in its network. Traffic runs for
`spec.time_s` seconds of real time; then every fault is ended, the stage's
final phase runs (recovery, final reads), and the checkers judge the history.

The result is in the simulator's frame too: time 0 is the start of the
traffic (what happened before, the setup, is at 0), so a store folder
reads the same whatever ran it. Runs are not reproducible to the
millisecond (real time is not virtual time), hence no trace digest.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from checks.harness.contract import FINAL_READ_GRACE_MS, DeploymentContract, StageContract, judge
from checks.harness.spec import (
    WORKLOADS,
    HarnessError,
    TestResult,
    TestSpec,
    expectation_scenario,
    fault_targets,
    stage_options,
)
from checks.nemesis import Action, Schedule, heal_everything, install, random_schedule
from checks.verdict import combine

if TYPE_CHECKING:
    from checks.history import Event
    from reference.node import Node, NodeFactory
    from reference.runtime.process import ProcessRuntime

__all__ = ["StagingRuntime", "forward_records", "make_backend", "run_real"]

log = logging.getLogger("d11.harness")

# The steady workload's rate on real backends, in payments per second, unless
# the spec sets one (`extra["steady_tps"]`, `d11 test --rate`). The simulator
# offers a share of what its service-time model says a stage can serve; here
# every node is a real process sharing this machine's cores with the harness,
# and a Paxos payment costs a dozen real messages: a rate this machine keeps
# up with, so that what the checkers judge is the faults, not an overload.
# It is also capped at the share of the stage's own capacity the simulator
# offers (`REAL_CAPACITY_SHARE`): chapter 6's payment database serves ~60/s by
# design, and 60/s there is 100% load, whose queueing alone breaks its SLO.
REAL_STEADY_TPS = 60.0
REAL_CAPACITY_SHARE = 0.6  # as chapters.common.STEADY_SHARE, the simulator's default
LEAD_MS = 300.0  # between scheduling the traffic and its first payment
SLICE_MS = 100.0  # run in slices, to report progress and to stop once the reads are in
LOG_LINES_MAX = 5_000  # per node, in a store folder
RECORD_CHANNEL = "record"  # the deployment's `record`, called from node processes


# --8<-- [start:staging]
class StagingRuntime:
    """What a stage is built on for a real backend: records node factories, then forwards.

    `stage.build` calls `add_node` for every node, clients included, before
    anyone knows which is which; `place` then hands each node to the real
    runtime as a local node (clients) or a process node (the rest). Any other
    attribute (now_ms, call_at, crash, restart, status, net, telemetry, ...)
    is the real runtime's.
    """

    def __init__(self, real: ProcessRuntime) -> None:
        self._real = real
        self._factories: dict[str, NodeFactory] = {}
        self._local: set[str] = set()
        self._placed = False
        # After the run, the nodes are idle: a copy taken once serves every check.
        self.frozen = False
        self._copies: dict[str, Node | None] = {}
        real.stays_behind.append(self)  # a closure that captured us must not drag us along

    def add_node(self, node_id: str, factory: NodeFactory) -> None:
        if self._placed:
            self._real.add_node(node_id, factory)
            return
        if node_id in self._factories:
            raise ValueError(f"node {node_id!r} is already added")
        self._factories[node_id] = factory

    def place(self, local: set[str]) -> None:
        """Add every recorded node to the real runtime: `local` in this process, others not."""
        assert not self._placed, "place() is called once, after build"
        unknown = local - set(self._factories)
        assert not unknown, f"clients {sorted(unknown)} were never added"
        self._placed = True
        self._local = set(local)
        for node_id, factory in self._factories.items():
            if node_id in local:
                self._real.add_local_node(node_id, factory)
            else:
                self._real.add_node(node_id, factory)

    def node_ids(self) -> list[str]:
        return self._real.node_ids() if self._placed else list(self._factories)

    def node(self, node_id: str) -> Node | None:
        """The node object: live for a client, a fresh copy from its process otherwise.

        Chapters read node state in some checks (chapter 4 audits every ledger
        replica's books); on a real backend that state lives in another
        process, so it is copied here (`ProcessRuntime.node_snapshot`).
        """
        if node_id in self._local:
            return self._real.node(node_id)
        if node_id in self._copies:
            return self._copies[node_id]
        try:
            copy = self._real.node_snapshot(node_id)
        except (RuntimeError, ConnectionError) as exc:  # it died, or hung up meanwhile
            log.warning("no copy of %s: %s", node_id, exc)
            copy = None
        if self.frozen:
            self._copies[node_id] = copy
        return copy

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


# --8<-- [end:staging]


def make_backend(backend: str, seed: int, topology: Any) -> ProcessRuntime:
    """A fresh real runtime; HarnessError (one line) when it cannot be had."""
    if backend == "process":
        from reference.runtime.process import ProcessRuntime

        return ProcessRuntime(seed=seed, topology=topology)
    if backend == "docker":
        from reference.runtime.docker import DockerRuntime, engine_unreachable_reason

        reason = engine_unreachable_reason()
        if reason is not None:
            raise HarnessError(f"the docker backend needs a Docker engine: {reason}")
        try:
            return DockerRuntime(seed=seed, topology=topology)
        except Exception as exc:  # the engine's own errors, whatever their class
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise HarnessError(f"cannot start the docker backend: {first}") from None
    raise HarnessError(f"{backend!r} is not a real backend (process, docker)")


def run_real(
    spec: TestSpec,
    schedule: Schedule | None = None,
    *,
    on_progress: Callable[[float, float], None] | None = None,
) -> TestResult:
    """Run `spec` on real processes or containers; `schedule` replaces the generated one."""
    from reference.runtime.base import close_backend

    default_rate = "steady_tps" not in spec.extra
    if default_rate:
        spec = replace(spec, extra={**spec.extra, "steady_tps": REAL_STEADY_TPS})
    stage, options = stage_options(spec)
    real = make_backend(spec.backend, spec.seed, stage.topology(options))
    try:  # whatever happens (an error, Ctrl-C), no process or container outlives the run
        return _run(spec, schedule, stage, options, real, on_progress, default_rate)
    finally:
        close_backend(real)


def _run(
    spec: TestSpec,
    schedule: Schedule | None,
    stage: StageContract,
    options: Any,
    real: ProcessRuntime,
    on_progress: Callable[[float, float], None] | None,
    default_rate: bool = False,
) -> TestResult:
    from reference.runtime.host import DiskWriterError
    from reference.runtime.process import RuntimeUsageError
    from reference.runtime.spec import SpecError

    staging = StagingRuntime(real)
    dep: DeploymentContract = stage.build(staging, options)
    if default_rate:
        spec = _capped_rate(spec, dep)
    forward_records(real, dep)  # before `place` ships the factories
    try:
        # Clients, and any node a stage says records history (`local_nodes`).
        recorders = set(getattr(dep, "local_nodes", ()))
        staging.place(local=set(dep.roles.get("client", [])) | recorders)
        real.start()
    except (SpecError, RuntimeUsageError, DiskWriterError, TimeoutError) as exc:
        _log_boot_tails(real)  # the run's folder, with the node logs, goes with the error
        raise HarnessError(f"{spec.backend} backend: {_one_line(exc)}") from None
    targets = fault_targets(dep)
    if spec.scenario:  # the chapter's own run: its traffic, its events, its end
        return _scenario(spec, dep, real, staging, on_progress)
    if schedule is None:
        # The simulator's schedule for this seed: its times count from the traffic start.
        schedule = random_schedule(
            spec.nemeses,
            targets,
            seed=spec.seed,
            start_ms=0.0,
            end_ms=spec.time_s * 1000.0,
            interval_ms=spec.interval_ms,
            fault_ms=spec.fault_ms,
        )
    origin_ms = real.now_ms + LEAD_MS
    heal_ms = origin_ms + spec.time_s * 1000.0
    install(_shifted(schedule, origin_ms), real, dep.record)
    dep.start_traffic(origin_ms, heal_ms, profile=WORKLOADS[spec.workload])
    # End every fault the schedule may have left open, then the stage's own
    # final phase: recovery, final reads (as on the simulator).
    real.call_at(heal_ms, lambda: heal_everything(real, targets.nodes))
    end_ms = dep.finish(heal_ms)
    _run_real_time(real, dep, heal_ms, end_ms, origin_ms, on_progress)
    ran_ms = real.now_ms - origin_ms
    try:  # every node restarted by the final phase answers its control channel
        real.settle()
    except TimeoutError as exc:  # checks that read node state will see it missing
        log.warning("after the run: %s", exc)
    staging.frozen = True
    history = [_at(e, origin_ms) for e in dep.history]
    verdicts = dep.run_checks(history)
    judged = judge(verdicts, dep.expectations(expectation_scenario(spec)))
    summary = dep.snapshot(window_ms=1000.0)
    return TestResult(
        spec=spec,
        schedule=schedule,
        history=history,
        verdicts=verdicts,
        judged=judged,
        valid=combine(verdicts.values()),
        digest="",
        end_ms=ran_ms,
        timeline=[(max(0.0, t - origin_ms), kind, d) for t, kind, d in dep.timeline],
        node_logs=node_logs(real, origin_ms),
        summary=summary,
    )


def _scenario(
    spec: TestSpec,
    dep: DeploymentContract,
    real: ProcessRuntime,
    staging: StagingRuntime,
    on_progress: Callable[[float, float], None] | None,
) -> TestResult:
    """`d11 test CH --scenario S --backend process|docker`: the scenario from now, in real time."""
    origin_ms = real.now_ms
    dep.apply_scenario(spec.scenario)
    end_ms = dep.end_ms
    _run_real_time(real, dep, end_ms, end_ms, origin_ms, on_progress)
    try:
        real.settle()
    except TimeoutError as exc:
        log.warning("after the run: %s", exc)
    staging.frozen = True
    history = [_at(e, origin_ms) for e in dep.history]
    verdicts = dep.run_checks(history)
    return TestResult(
        spec=spec,
        schedule=Schedule((), spec.seed, ()),
        history=history,
        verdicts=verdicts,
        judged=judge(verdicts, dep.expectations(spec.scenario)),
        valid=combine(verdicts.values()),
        digest="",
        end_ms=real.now_ms - origin_ms,
        timeline=[(max(0.0, t - origin_ms), kind, d) for t, kind, d in dep.timeline],
        node_logs=node_logs(real, origin_ms),
        summary=dep.snapshot(window_ms=1000.0),
    )


def _capped_rate(spec: TestSpec, dep: DeploymentContract) -> TestSpec:
    """The default steady rate, at most REAL_CAPACITY_SHARE of what the stage can serve.

    The stage's capacity is known once it is built; its traffic is read from
    its options when it starts, so a lower rate is set there too (and in the
    spec, so a store folder replays at the rate that ran).
    """
    capacity = getattr(dep, "capacity_tps", None)
    options = getattr(dep, "options", None)
    if not callable(capacity) or options is None:
        return spec
    rate = min(REAL_STEADY_TPS, REAL_CAPACITY_SHARE * float(capacity()))
    if rate >= spec.extra["steady_tps"]:
        return spec
    dep.options = options.with_(extra={**options.extra, "steady_tps": rate})  # type: ignore[attr-defined]
    return replace(spec, extra={**spec.extra, "steady_tps": rate})


def _run_real_time(
    real: ProcessRuntime,
    dep: DeploymentContract,
    heal_ms: float,
    end_ms: float,
    origin_ms: float,
    on_progress: Callable[[float, float], None] | None,
) -> None:
    """Run to `end_ms`, or until the final reads are in (the rest would be idle time).

    Past `end_ms` a run whose final reads are still missing goes on, for at most
    FINAL_READ_GRACE_MS, as the simulator's runner does: on a loaded machine
    real processes drain a fault's backlog later than the plan assumed, and a
    check without its final read can only say "unknown".
    """
    reads_done: Callable[[], bool] = getattr(dep, "final_reads_done", lambda: False)
    while real.now_ms < end_ms:
        real.run_until(min(end_ms, real.now_ms + SLICE_MS))
        if on_progress is not None:
            on_progress(real.now_ms - origin_ms, end_ms - origin_ms)
        if real.now_ms > heal_ms and reads_done():
            return
    grace_end_ms = end_ms + FINAL_READ_GRACE_MS
    while not reads_done() and real.now_ms < grace_end_ms:
        real.run_until(min(grace_end_ms, real.now_ms + SLICE_MS))
    if not reads_done():
        grace_s = FINAL_READ_GRACE_MS / 1e3
        log.warning("final reads still missing %.0f s after the run's end", grace_s)


def forward_records(real: ProcessRuntime, dep: DeploymentContract) -> None:
    """What node processes record through `dep.record` reaches `dep.history`.

    Node factories may capture the deployment's `record` (chapter 6's
    sidecars record every degrade decision: best-effort work done or shed,
    switches, breakers, work served after its deadline). A node in another
    process would append to a copy of the deployment; instead the method
    crosses as a forwarded call (`reference.runtime.spec.Forwarded`), whose
    arguments come back on the node's control channel within a metrics
    flush (100 ms), stamped with the node's own clock, as in the simulator.
    """
    from reference.runtime.spec import FORWARD_TRACE, Forwarded

    real.stays_behind.append(Forwarded(dep, "record", RECORD_CHANNEL))
    # A deployment made of others (the capstone) names them: their nodes
    # capture their own `record`, which reaches the history through `dep.record`.
    for part in getattr(dep, "recorders", ()):
        real.stays_behind.append(Forwarded(part, "record", RECORD_CHANNEL))

    def on_trace(event: Any) -> None:
        if event.kind != FORWARD_TRACE or event.fields.get("channel") != RECORD_CHANNEL:
            return
        try:
            (record,) = json.loads(event.fields["args"])
            dep.record(record)
        except Exception as exc:  # a malformed record must not stop the node's metrics
            log.warning("a record from %s was refused: %s", event.node, _one_line(exc))

    real.telemetry.subscribe(on_trace)


def _shifted(schedule: Schedule, origin_ms: float) -> Schedule:
    """The schedule on the runtime's clock: traffic starts at `origin_ms`, not at 0."""
    actions = tuple(Action(a.at_ms + origin_ms, a.op, a.params, a.fault) for a in schedule.actions)
    return replace(schedule, actions=actions)


def _at(event: Event, origin_ms: float) -> Event:
    """An event in the test's frame: 0 is the traffic start, the setup before it is at 0."""
    return replace(event, time_ms=max(0.0, event.time_ms - origin_ms))


def node_logs(real: ProcessRuntime, origin_ms: float = 0.0) -> dict[str, list[str]]:
    """Each node's trace events (test frame), then the tail of its process's own log."""
    logs: dict[str, list[str]] = {}
    for event in real.telemetry.find():
        fields = " ".join(f"{k}={v}" for k, v in sorted(event.fields.items()))
        logs.setdefault(event.node or "runtime", []).append(
            f"{event.time_ms - origin_ms:12.3f} {event.kind} {fields}"
        )
    for node_id in real.node_ids():
        try:
            text = real.log_path(node_id).read_text(errors="replace")
        except OSError:
            continue
        lines = text.splitlines()
        if lines:
            logs.setdefault(node_id, []).extend(["--- process log ---", *lines])
    return {n: lines[-LOG_LINES_MAX:] for n, lines in logs.items()}


BOOT_TAIL_LINES = 3  # per node, logged when a cluster fails to boot


def _log_boot_tails(real: ProcessRuntime) -> None:
    """The last lines of each node's own log: what a failed boot leaves to go on."""
    for node_id in real.node_ids():
        try:
            lines = real.log_path(node_id).read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines[-BOOT_TAIL_LINES:]:
            log.warning("%s: %s", node_id, line[:300])


def _one_line(exc: BaseException) -> str:
    """The first line of an error, plus the last line of a node's log if it has one."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    return lines[0] if len(lines) == 1 else f"{lines[0]} {lines[-1]}"
