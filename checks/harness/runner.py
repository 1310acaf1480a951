"""The runner: one stage, one workload, one fault schedule, one history, its verdicts.

`run_test(spec)` is what `d11 test` does:

1. build the chapter's stage on a backend (the simulator by default);
2. start the workload's traffic and install the nemesis schedule (generated
   from the seed, or read from a file);
3. at the end of the test time, end every fault (heal, resume, restart,
   reset clocks), let the system recover, and take the final reads;
4. hand the history to the checkers the stage declares.

On the simulator the run is a pure function of the spec and the schedule:
the same inputs give the same trace digest, history and verdicts, which is
what makes `d11 replay` exact and lets the hunter shrink a failure.
"""

from __future__ import annotations

import atexit
import functools
import gc
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from checks.harness.contract import FINAL_READ_GRACE_MS, DeploymentContract, by_chance, judge
from checks.harness.spec import (
    BACKENDS,
    WORKLOADS,
    HarnessError,
    TestResult,
    TestSpec,
    expectation_scenario,
    fault_targets,
    stage_options,
    validate,
)
from checks.harness.timing import Stopwatch
from checks.history import Event
from checks.nemesis import Schedule, heal_everything, install, random_schedule
from checks.verdict import combine
from reference.sim.kernel import fewer_collections

if TYPE_CHECKING:
    from checks.parallel import PendingChecks

# What a test is lives in `spec`; these names are the harness's front door too.
__all__ = [
    "BACKENDS",
    "WORKLOADS",
    "HarnessError",
    "TestResult",
    "TestSpec",
    "build_stage",
    "expectation_scenario",
    "fault_targets",
    "run_test",
    "settle",
    "stage_options",
    "validate",
]


def build_stage(spec: TestSpec) -> tuple[Any, DeploymentContract]:
    """The spec's stage built on a fresh simulator (not started): (runtime, deployment)."""
    from reference.runtime.sim import SimRuntime

    stage, options = stage_options(spec)
    rt = SimRuntime(topology=stage.topology(options), seed=spec.seed)
    return rt, stage.build(rt, options)


def run_test(
    spec: TestSpec,
    schedule: Schedule | None = None,
    *,
    on_progress: Callable[[float, float], None] | None = None,
) -> TestResult:
    """Run `spec` on its backend; `schedule` replaces the generated one (replay)."""
    spec = validate(spec)
    _no_collection_at_exit()
    if spec.backend != "sim":
        try:
            from checks.harness.real import run_real
        except ModuleNotFoundError as exc:
            if exc.name != "checks.harness.real":
                raise
            raise HarnessError(
                f"the {spec.backend} backend is not available in this build"
            ) from None
        return run_real(spec, schedule, on_progress=on_progress)
    if spec.scenario:
        return _run_scenario(spec, on_progress)
    watch = Stopwatch()
    try:
        with watch.phase("simulation"):
            rt, dep, schedule = _simulate(spec, schedule, on_progress)
        return _checked(spec, schedule, rt, dep, expectation_scenario(spec), watch)
    finally:
        gc.unfreeze()  # see _run_with_progress: what died in the run can be collected now


@functools.cache  # registered once per process
def _no_collection_at_exit() -> None:
    """At the interpreter's exit, freeze the heap before its final collection.

    A run leaves its simulated world behind as cyclic garbage (nodes and
    their runtime point at each other), millions of objects that a
    long-lived process collects when it next needs to. A `d11 test` that
    is about to end would instead spend its last seconds in Python's final
    collection, freeing memory the operating system takes back anyway
    (measured: 2.0 s after a 20 s chapter-4 run, 0.1 s frozen). Only what is
    garbage at exit is affected; files are closed by reference counting.
    """
    atexit.register(gc.freeze)


def _simulate(
    spec: TestSpec,
    schedule: Schedule | None,
    on_progress: Callable[[float, float], None] | None,
) -> tuple[Any, DeploymentContract, Schedule]:
    """Build the stage, run the workload under the schedule, take the final reads."""
    rt, dep = build_stage(spec)
    rt.start()
    start_ms = rt.now_ms
    heal_ms = start_ms + spec.time_s * 1000.0
    targets = fault_targets(dep)
    if schedule is None:
        schedule = random_schedule(
            spec.nemeses,
            targets,
            seed=spec.seed,
            start_ms=start_ms,
            end_ms=heal_ms,
            interval_ms=spec.interval_ms,
            fault_ms=spec.fault_ms,
        )
    install(schedule, rt, dep.record)
    dep.start_traffic(start_ms, heal_ms, profile=WORKLOADS[spec.workload])
    # End every fault the schedule may have left open, then the stage's own
    # final phase: recovery, final reads. Both at heal_ms, in this order.
    rt.call_at(heal_ms, lambda: heal_everything(rt, targets.nodes))
    end_ms = dep.finish(heal_ms)
    _run_with_progress(rt, end_ms, on_progress)
    _await_final_reads(rt, dep)
    return rt, dep, schedule


def _run_scenario(spec: TestSpec, on_progress: Callable[[float, float], None] | None) -> TestResult:
    """A chapter scenario (what `d11 run` runs), on the simulator: no nemesis schedule."""
    watch = Stopwatch()
    with watch.phase("simulation"):
        rt, dep = build_stage(spec)
        rt.start()
        dep.apply_scenario(spec.scenario)
        settle(rt, dep, on_progress)
    return _checked(spec, Schedule((), spec.seed, ()), rt, dep, spec.scenario, watch)


def _checked(
    spec: TestSpec,
    schedule: Schedule,
    rt: Any,
    dep: DeploymentContract,
    scenario: str,
    watch: Stopwatch,
) -> TestResult:
    """The finished run's history checked, each verdict set against `scenario`'s expectation.

    A stage that can start its checkers and wait for them later
    (`start_checks`: forked, on a long history) has them run while the
    store folder's history text and report are made in forked processes of
    their own (`_start_store_work`), and this one gathers the figures and logs.
    """
    start = getattr(dep, "start_checks", None)
    with watch.phase("checks"):
        pending = start() if start is not None else None
        verdicts = dep.run_checks() if pending is None else {}
    forked = pending is not None and pending.forked
    preparing = _start_store_work(dep.history, schedule, rt.now_ms) if forked else None
    with watch.phase("store"):
        node_logs = trace_logs(rt)
        summary = dep.snapshot(window_ms=1000.0)
    gathered = watch.last_span
    try:
        with watch.phase("checks"):
            if pending is not None:
                verdicts = pending.wait()
            expected = dep.expectations(scenario)
            # Nemeses strike at random: what the scenario's aimed fault must break, theirs may.
            judged = judge(verdicts, by_chance(expected) if spec.nemeses else expected)
    except BaseException:
        if preparing is not None:  # no folder will be written: not left running, or blocked
            preparing.cancel()
        raise
    with watch.phase("store"):
        prepared = preparing.wait() if preparing is not None else {}
    if pending is not None and forked:  # the checks' time, until the last one ended
        watch.hand_over("store", "checks", gathered, pending.done_s)
    report, history_jsonl = prepared.get("report"), prepared.get("history")
    if not isinstance(report, tuple):
        report = None
    return TestResult(
        spec=spec,
        schedule=schedule,
        history=list(dep.history),
        verdicts=verdicts,
        judged=judged,
        valid=combine(verdicts.values()),
        digest=rt.trace_digest(),
        end_ms=rt.now_ms,
        timeline=list(dep.timeline),
        node_logs=node_logs,
        summary=summary,
        timing_s=watch.phases_s,
        history_jsonl=history_jsonl if isinstance(history_jsonl, str) else None,
        report_plots_png=None if report is None else report[0],
        report_timeline_svg=None if report is None else report[1],
    )


# What a store job gives: history.jsonl's text, or the report's plots and timeline.
StoreWork = str | tuple[str | None, str] | None


def _start_store_work(
    history: list[Event], schedule: Schedule, end_ms: float
) -> PendingChecks[StoreWork]:
    """What the store folder needs that no verdict changes, begun in forked
    processes beside the checkers': history.jsonl's text, and the HTML
    report's plots and timeline (`wait()` gives them, by name).

    Made here, in this process, these were the longest chain of the checks'
    phase (a minute of chapter 4 under every fault: 2.6 s of CPU, against
    1.5 s for the longest checker), and ran after the last checker had
    ended; forked, the two cores share them with the checkers.
    """
    from checks.parallel import start_checks

    jobs: dict[str, Callable[[], StoreWork]] = {
        "report": functools.partial(_report_parts, history, schedule, end_ms),
        "history": functools.partial(_history_text, history),
    }
    return start_checks(jobs, len(history), parallel=True)


def _history_text(history: list[Event]) -> str | None:
    """history.jsonl's text (None if the history cannot be written as JSON:
    the store says so itself, as it always did)."""
    from checks.history import dumps_jsonl

    try:
        return dumps_jsonl(history)
    except (TypeError, ValueError):
        return None


def _report_parts(
    history: list[Event], schedule: Schedule, end_ms: float
) -> tuple[str | None, str]:
    """The report's plots (None if they cannot be drawn: the report says why
    itself) and its timeline as drawn with no violation on it."""
    from checks.harness.report import report_parts

    return report_parts(history, schedule, end_ms)


SCENARIO_GRACE_STEP_MS = 500.0


def settle(
    rt: Any, dep: DeploymentContract, on_progress: Callable[[float, float], None] | None = None
) -> None:
    """Run a scenario to its end, then until its final reads are in (bounded).

    `d11 run` and the replay of its folder both end a scenario here, so the
    two runs stop at the same instant and their traces match byte for byte.
    """
    # One run_until, never slices: where a run stops and resumes shows in the
    # trace digest, and `d11 run` runs a scenario in one piece.
    rt.run_until(dep.end_ms)
    if on_progress is not None:
        on_progress(rt.now_ms, rt.now_ms)
    waited_ms = 0.0
    while not dep.final_reads_done() and waited_ms < FINAL_READ_GRACE_MS:
        rt.run_for(SCENARIO_GRACE_STEP_MS)
        waited_ms += SCENARIO_GRACE_STEP_MS


def _run_with_progress(
    rt: Any, end_ms: float, on_progress: Callable[[float, float], None] | None
) -> None:
    """Run to `end_ms` in slices, reporting progress between slices.

    Between slices the heap is frozen (`gc.freeze()`): the run's state only
    grows (ledgers, logs, the history), and CPython's full collections
    rescan every long-lived object, a tenth of a long run's time (measured:
    ch4 under every fault, 15 s simulated, 5.7 s CPU, 5.1 s frozen). Frozen
    objects are still freed by reference counting; `run_test` unfreezes at
    its end, so cyclic garbage of the run is collected after all. The
    checkers' forked children inherit the frozen heap, and do not scan it.

    The slices run inside the kernel's own `fewer_collections`, so the end
    of a slice does not put the collector back to Python's thresholds
    before the freeze: it then ran a young collection over a slice's
    survivors each time, 48 in a minute of chapter 4, 1.2 s of CPU spent
    finding 68 objects to free.
    """
    slice_ms = max(100.0, (end_ms - rt.now_ms) / 50)
    with fewer_collections():
        while rt.now_ms < end_ms:
            rt.run_until(min(end_ms, rt.now_ms + slice_ms))
            gc.freeze()
            if on_progress is not None:
                on_progress(rt.now_ms, end_ms)


def _await_final_reads(rt: Any, dep: DeploymentContract) -> None:
    """Give a backlog (the monolith after the spike) time to drain into the final reads.

    Bounded: past the grace period the checkers judge what there is, and say
    "unknown" where the final reads are missing rather than guess.
    """
    done = getattr(dep, "final_reads_done", None)
    if done is None:
        return
    waited_ms, step_ms = 0.0, 250.0
    while not done() and waited_ms < FINAL_READ_GRACE_MS:
        rt.run_for(step_ms)
        waited_ms += step_ms


def trace_logs(rt: Any) -> dict[str, list[str]]:
    """Each node's trace events as readable lines (the per-node logs of a store).

    A value traced by several nodes (a batch each replica learns, a ballot)
    is one object, written out once: `texts` keeps its text by id, and the
    events (`events` holds them all) keep every value alive meanwhile, so
    no id can be reused. A minute of chapter 4 under every fault: 0.52 s of
    CPU when each was written out anew (mostly the batches' dataclass
    reprs), 0.35 s now, the same lines.
    """
    logs: dict[str, list[str]] = {}
    events = rt.telemetry.find()
    texts: dict[int, str] = {}
    plain = _PLAIN_FIELDS
    for event in events:
        parts = []
        for k, v in sorted(event.fields.items()):
            if type(v) in plain:
                parts.append(f"{k}={v}")
                continue
            text = texts.get(id(v))
            if text is None:
                text = texts[id(v)] = format(v)  # what f"{v}" writes
            parts.append(f"{k}={text}")
        logs.setdefault(event.node or "runtime", []).append(
            f"{event.time_ms:12.3f} {event.kind} {' '.join(parts)}"
        )
    return logs


_PLAIN_FIELDS = frozenset({str, int, float, bool, type(None)})  # cheap to write each time
