"""Running the learner's chapter and judging it by its checkers: under the harness's nemeses
at each seed (shrunk by the hunter, the schedule saved for replay), or as `d11 run`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from learn.catalog import Exercise
from learn.feedback import history_lines, schedule_lines, verdict_lines
from learn.outcome import CheckRequest, Outcome, seeds_to_run

if TYPE_CHECKING:  # at run time these come from the learner's workspace, imported late
    from checks.harness.spec import TestResult, TestSpec

__all__ = ["SCHEDULES", "chapter_run", "harness", "run_command", "spec_for"]

SCHEDULES = "schedules"  # the workspace's folder of failing schedules, one file per exercise


def harness(ex: Exercise, req: CheckRequest) -> Outcome:
    """Run the chapter under its nemeses at each seed; every named check must hold."""
    from checks.harness.runner import TestSpec, run_test

    p = ex.params
    wanted: tuple[str, ...] = tuple(p["checks"])
    seeds = seeds_to_run(ex, req)
    for seed in seeds:
        spec = spec_for(TestSpec, p, seed)
        result = run_test(spec)
        broken = [n for n in wanted if result.verdicts[n].valid is not True]
        if not broken:
            continue
        lines = [f"At seed {seed}, with {', '.join(spec.nemeses)}:"]
        lines += verdict_lines(result, broken)
        minimal, note = _shrink(spec, wanted) if p.get("shrink") else (None, "")
        minimal = minimal or result
        lines.append("")
        lines.append(
            "The smallest fault schedule the hunter found that still breaks it"
            if minimal is not result
            else "The fault schedule of that run"
        )
        lines += schedule_lines(minimal)
        if minimal is not result:
            lines += verdict_lines(
                minimal, [n for n in wanted if minimal.verdicts[n].valid is not True]
            )
        if note:
            lines.append(note)
        lines.append(_replay_line(ex, minimal, req))
        lines += history_lines(minimal, wanted)
        return Outcome(False, f"{' and '.join(broken)} broken at seed {seed}", lines)
    checks = ", ".join(wanted)
    return Outcome(
        True,
        f"{checks} held on {len(seeds)} seed(s) ({', '.join(map(str, seeds))}) "
        f"under {', '.join(p['nemeses'])}",
    )


def spec_for(spec_type: type[TestSpec], p: dict[str, Any], seed: int) -> TestSpec:
    return spec_type(
        p["chapter"],
        nemeses=tuple(p["nemeses"]),
        time_s=float(p.get("time_s", 3.0)),
        seed=seed,
        variant=p.get("variant", ""),
        fault_ms=float(p.get("fault_ms", 800.0)),
    )


def run_command(ex: Exercise, seed: int) -> str:
    """The `d11 run` that repeats a `chapter_run` check's run: its extras as `--set`,
    each a setting of the chapter (tests/learn holds them to that)."""
    p = ex.params
    settings = "".join(f" --set {k}={v}" for k, v in dict(p.get("extra", {})).items())
    return (
        f"d11 run {p['chapter']} --scenario {p['scenario']} --variant {p['variant']} "
        f"--seed {seed} --duration-s {float(p.get('duration_s', 4.0)):g}{settings}"
    )


def _shrink(spec: TestSpec, wanted: tuple[str, ...]) -> tuple[TestResult | None, str]:
    """The hunter's minimal failing run for this spec's faults (None: none found), and a
    note when the hunter could not run."""
    try:
        from checks.harness.hunt import hunt

        found = hunt(spec, budget=8)
    except ModuleNotFoundError as exc:
        if exc.name != "hypothesis":
            raise
        return None, "(not shrunk: the hunter needs hypothesis; pip install hypothesis)"
    if found.minimal is None:
        return None, ""
    if all(found.minimal.verdicts[n].valid is True for n in wanted):
        return None, ""  # it broke something this exercise does not judge
    return found.minimal, ""


def _replay_line(ex: Exercise, result: TestResult, req: CheckRequest) -> str:
    """Save the run's schedule in the workspace; the command that replays it on the
    learner's code, from where they ran the check."""
    from pathlib import Path

    path = Path(SCHEDULES) / f"{ex.id}.json"
    path.parent.mkdir(exist_ok=True)
    result.schedule.save(path)
    spec = result.spec
    variant = f" --variant {spec.variant}" if spec.variant else ""
    command = (
        f"d11 test {spec.chapter}{variant} --seed {spec.seed} --time {spec.time_s:g} "
        f"--schedule {req.in_workspace(path.as_posix())}"
    )
    return f"Replay it on your code: {req.on_your_code(command)}"


def chapter_run(ex: Exercise, req: CheckRequest) -> Outcome:
    """`d11 run CHAPTER --scenario S --variant V` at each seed; every named check must hold."""
    from chapters.run import simulate

    p = ex.params
    wanted: tuple[str, ...] = tuple(p["checks"])
    seeds = seeds_to_run(ex, req)
    for seed in seeds:
        run = simulate(
            p["chapter"],
            p["scenario"],
            seed=seed,
            variant=p["variant"],
            duration_s=float(p.get("duration_s", 4.0)),
            checks=wanted,
            extra=dict(p.get("extra", {})),
        )
        broken = [n for n in wanted if run.verdicts[n].valid is not True]
        if broken:
            where = f"In `{req.on_your_code(run_command(ex, seed))}` (your code):"
            return Outcome(
                False,
                f"{' and '.join(broken)} broken at seed {seed}",
                [where, *verdict_lines(run, broken), *history_lines(run, wanted)],
            )
    return Outcome(
        True,
        f"{', '.join(wanted)} held on {p['chapter']}'s {p['scenario']} "
        f"at {len(seeds)} seed(s) ({', '.join(map(str, seeds))})",
    )
