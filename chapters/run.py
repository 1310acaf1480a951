"""Run a stage on the simulator, end to end: `simulate("ch2", "crash", seed=3)`.

What `d11 run` and the chapter tests call. It builds the stage on a fresh
SimRuntime, applies the scenario, runs until the final reads are in, checks
the history and sets each verdict against the chapter's expectation.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chapters import get_stage
from chapters.metrics import summarize
from chapters.stage import Deployment, Judgement, StageError, judge
from checks.history import Event
from checks.verdict import Verdict

__all__ = ["RunResult", "save_run", "simulate"]

FINAL_READ_GRACE_MS = 60_000.0  # how much longer to wait for final reads behind a backlog
_GRACE_STEP_MS = 500.0


@dataclass
class RunResult:
    summary: dict[str, Any]
    verdicts: dict[str, Verdict]
    judged: dict[str, Judgement]
    deployment: Deployment

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
    from reference.runtime.sim import SimRuntime

    stage = get_stage(chapter)
    if scenario not in stage.scenarios:
        known = ", ".join(stage.scenarios)
        raise StageError(f"{stage.id} has no scenario {scenario!r} (known: {known})")
    opts = stage.options(**options)
    rt = SimRuntime(topology=stage.topology(opts), seed=opts.seed)
    dep = stage.build(rt, opts)
    rt.start()
    dep.apply_scenario(scenario)
    rt.run_until(dep.end_ms)
    waited_ms = 0.0
    while not dep.final_reads_done() and waited_ms < FINAL_READ_GRACE_MS:
        rt.run_for(_GRACE_STEP_MS)
        waited_ms += _GRACE_STEP_MS
    if checks is not None:
        unknown = sorted(set(checks) - set(dep.checks))
        if unknown:
            raise StageError(
                f"{stage.id} has no check {unknown[0]!r} (known: {', '.join(dep.checks)})"
            )
        dep.checks = {name: dep.checks[name] for name in checks}
    verdicts = dep.run_checks()
    judged = judge(verdicts, dep.expectations())
    summary = summarize(dep, verdicts=verdicts, judged=judged)
    return RunResult(summary, verdicts, judged, dep)


def save_run(result: RunResult, store: Path | None = None) -> Path:
    """Write history.jsonl, verdicts.json, summary.json and plots to a run folder."""
    s = result.summary
    if store is None:
        stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        store = Path("store") / f"{s['chapter']}-{s['scenario']}" / stamp
    store.mkdir(parents=True, exist_ok=True)
    with (store / "history.jsonl").open("w") as out:
        for ev in result.history:
            out.write(json.dumps(_event_json(ev), default=repr) + "\n")
    (store / "verdicts.json").write_text(json.dumps(s.get("checks", {}), indent=2, default=repr))
    (store / "summary.json").write_text(json.dumps(s, indent=2, default=repr))
    from chapters.plots import plot_run

    plot_run(s, store)
    return store


def _event_json(ev: Event) -> dict[str, Any]:
    out: dict[str, Any] = {
        "index": ev.index,
        "type": ev.type,
        "process": ev.process,
        "f": ev.f,
        "value": ev.value,
        "time_ms": ev.time_ms,
    }
    if ev.extra:
        out["extra"] = ev.extra
    return out
