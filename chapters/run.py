"""Run a stage on the simulator, end to end: `simulate("ch2", "crash", seed=3)`.

What `d11 run` and the chapter tests call. It builds the stage on a fresh
SimRuntime, applies the scenario, runs until the final reads are in, checks
the history and sets each verdict against the chapter's expectation.

`save_run` writes a store folder (test.json, schedule.json, history.jsonl,
verdicts.json, manifest.json, as `d11 test` does, plus summary.json and the
plots), so `d11 replay` runs the scenario again and `d11 tui --attach` shows it.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chapters import get_stage
from chapters.metrics import summarize
from chapters.stage import Deployment, Judgement, StageError, judge
from checks.harness.timing import Stopwatch
from checks.history import Event, write_jsonl
from checks.verdict import Verdict, combine

__all__ = ["RunResult", "save_run", "simulate"]


@dataclass
class RunResult:
    summary: dict[str, Any]
    verdicts: dict[str, Verdict]
    judged: dict[str, Judgement]
    deployment: Deployment
    # Wall seconds per phase (simulation, checks, store): `d11 run`'s last line.
    timing_s: dict[str, float] = field(default_factory=dict)

    @property
    def history(self) -> list[Event]:
        return self.deployment.history

    @property
    def as_expected(self) -> bool:
        """Every check said what the chapter says it should."""
        return all(j.ok for j in self.judged.values())


def simulate(
    chapter: str,
    scenario: str = "steady",
    *,
    checks: Sequence[str] | None = None,
    **options: Any,
) -> RunResult:
    """Run `chapter` under `scenario`; `options` are StageOptions fields.

    `checks`: run only these checks (None: all of the stage's; () : none).
    """
    from checks.harness.runner import settle
    from reference.runtime.sim import SimRuntime

    stage = get_stage(chapter)
    if scenario not in stage.scenarios:
        known = ", ".join(stage.scenarios)
        raise StageError(f"{stage.id} has no scenario {scenario!r} (known: {known})")
    opts = stage.options(**options)
    watch = Stopwatch()
    with watch.phase("simulation"):
        rt = SimRuntime(topology=stage.topology(opts), seed=opts.seed)
        dep = stage.build(rt, opts)
        rt.start()
        dep.apply_scenario(scenario)
        settle(rt, dep)  # the harness's own ending, so `d11 replay` of the folder is exact
    if checks is not None:
        unknown = sorted(set(checks) - set(dep.checks))
        if unknown:
            raise StageError(
                f"{stage.id} has no check {unknown[0]!r} (known: {', '.join(dep.checks)})"
            )
        dep.checks = {name: dep.checks[name] for name in checks}
    with watch.phase("checks"):
        verdicts = dep.run_checks()
        judged = judge(verdicts, dep.expectations())
    with watch.phase("store"):  # the figures the report and the run folder show
        summary = summarize(dep, verdicts=verdicts, judged=judged)
    return RunResult(summary, verdicts, judged, dep, watch.phases_s)


def save_run(result: RunResult, store: Path | None = None) -> Path:
    """Write the run as a store folder (plus summary.json and plots); returns it."""
    from checks.harness.runner import TestSpec
    from checks.harness.store import run_record, write_manifest
    from checks.nemesis import Schedule

    s = result.summary
    if store is None:
        stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        store = Path("store") / f"{s['chapter']}-{s['scenario']}" / stamp
    store.mkdir(parents=True, exist_ok=True)
    dep = result.deployment
    opts = dep.options
    spec = TestSpec(
        chapter=dep.stage.id, scenario=dep.scenario, seed=opts.seed, variant=opts.variant,
        shards=opts.shards, cells=opts.cells, time_s=opts.duration_s, scale=opts.scale,
        extra=dict(opts.extra),
    )  # fmt: skip
    valid = combine(result.verdicts.values())
    record = run_record(spec, valid, dep.rt.trace_digest(), dep.rt.now_ms, s)
    record["origin"] = "run"
    (store / "test.json").write_text(json.dumps(record, indent=2, default=repr) + "\n")
    Schedule((), opts.seed, ()).save(store / "schedule.json")  # the scenario is its own faults
    write_jsonl(store / "history.jsonl", result.history)
    (store / "verdicts.json").write_text(json.dumps(s.get("checks", {}), indent=2, default=repr))
    (store / "summary.json").write_text(json.dumps(s, indent=2, default=repr))
    from chapters.plots import plot_run

    plot_run(s, store)
    write_manifest(store)  # last: the folder is whole
    return store
