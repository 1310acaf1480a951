"""`d11 test`, `d11 hunt`, `d11 replay`: the harness from the command line.

Exit status, for CI: `d11 test` 0 valid, 1 invalid, 2 unknown or error (bad
options, an unwritable --store or --junit). `d11 replay` answers another
question, "did the run happen again?": 0 reproduced exactly (whatever the
verdict), 1 did not reproduce, 2 could not replay (a folder refused).
"""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from checks.harness.contract import Judgement, stage_named
from checks.harness.runner import HarnessError, TestResult, TestSpec
from checks.harness.timing import Stopwatch, time_line
from checks.nemesis import NEMESES, Schedule, ScheduleError
from checks.verdict import Validity
from reference.cli_options import Interrupted, d11_command, in_range, seed_range

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

STORE_ROOT_HELP = (
    "Root folder: each run is stored in STORE/TEST/TIME (d11 run's --store is the run folder "
    "itself)."
)
NEMESIS_HELP = "Faults to inject, comma-separated: " + ", ".join(NEMESES)
# The faults a scenario's own script makes (Deployment.note's kinds in the timeline),
# apart from the nemesis schedule's: `d11 test ch5 --scenario crash` crashes a node
# with no nemesis, and once printed "0 faults".
SCRIPTED_FAULTS = ("crash", "partition", "pause", "city-lost", "consumer-lag")


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.command("test")(test_command)
    app.command("hunt")(hunt_command)
    app.command("replay")(replay_command)
    bench.command("chapter")(bench_chapter_command)


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", soft_wrap=True)  # one line, whatever the width
    return typer.Exit(2)


def _spec(
    chapter: str,
    workload: str,
    nemesis: str,
    time_s: float,
    seed: int,
    backend: str,
    variant: str,
    shards: int,
    cells: int,
    rate: float = 0.0,
    fault_ms: float = 0.0,
) -> TestSpec:
    nemeses = tuple(n.strip() for n in nemesis.split(",") if n.strip())
    if rate < 0:
        raise _fail(f"--rate must be at least 0 payments/s, not {rate:g}")
    if fault_ms < 0:
        raise _fail(f"--fault-ms must be at least 0, not {fault_ms:g}")
    timing = {"fault_ms": fault_ms} if fault_ms else {}
    return TestSpec(
        chapter=chapter,
        workload=workload,
        nemeses=nemeses,
        time_s=time_s,
        seed=seed,
        backend=backend,
        variant=variant,
        shards=shards,
        cells=cells,
        extra={"steady_tps": rate} if rate else {},
        **timing,  # type: ignore[arg-type]
    )


def test_command(
    chapter: Annotated[str, typer.Argument(help="Chapter id or alias: ch1, ch2, sharding, ...")],
    workload: Annotated[
        str, typer.Option(help="The workload: payments, double11 or saturate.")
    ] = "payments",
    nemesis: Annotated[str, typer.Option(help=NEMESIS_HELP)] = "none",
    time_s: Annotated[
        float,
        typer.Option(
            "--time", callback=in_range(0, 600, "s"), help="Seconds of traffic and faults."
        ),
    ] = 4.0,
    seed: Annotated[
        int, typer.Option(callback=seed_range(), help="Seed of the run and of the schedule.")
    ] = 1,
    backend: Annotated[str, typer.Option(help="Where it runs: sim, process or docker.")] = "sim",
    variant: Annotated[str, typer.Option(help="The chapter's variant (e.g. naive, tcc).")] = "",
    shards: Annotated[
        int,
        typer.Option(
            callback=in_range(0, 255),
            show_default=False,
            help="Chapter 2: number of shards (0: the chapter's own).",
        ),
    ] = 0,
    cells: Annotated[
        int,
        typer.Option(
            callback=in_range(0, 255),
            show_default=False,
            help="Chapter 3: number of cells (0: the chapter's own).",
        ),
    ] = 0,
    rate: Annotated[
        float,
        typer.Option(
            callback=in_range(0, 100_000),
            show_default=False,
            help="Payments/s of the payments workload (0: the default; 60 on real backends).",
        ),
    ] = 0.0,
    fault_ms: Annotated[
        float,
        typer.Option(
            callback=in_range(0, 600_000, "ms"),
            show_default=False,
            help="How long each fault lasts, ±50% (0: the default, 800 ms).",
        ),
    ] = 0.0,
    schedule: Annotated[
        Path | None, typer.Option(help="Replay this schedule file instead of generating one.")
    ] = None,
    store: Annotated[
        Path,
        typer.Option(help=STORE_ROOT_HELP),
    ] = Path("store"),
    junit: Annotated[Path | None, typer.Option(help="Also write JUnit XML here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
    scenario: Annotated[
        str, typer.Option(help="A chapter's own scenario instead of a workload (no nemesis).")
    ] = "",
    settings: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="NAME=VALUE: one of the chapter's own settings, repeatable (as `d11 run --set`).",
        ),
    ] = None,
) -> None:
    """Run a chapter under a workload and a nemesis, check the history, store everything.

    Exit status: 0 every check valid, 1 a check found a violation (even one the
    chapter expects, as in a naive variant), 2 no violation but a check could
    not tell, or an error (a bad option, an unwritable --store or --junit).
    """
    spec = _spec(
        chapter, workload, nemesis, time_s, seed, backend, variant, shards, cells, rate, fault_ms
    )
    if scenario:
        spec = replace(spec, scenario=scenario)
    if settings:
        from checks.harness.contract import StageError, parse_settings, stage_named

        try:
            stage = stage_named(chapter)
            chosen = parse_settings(stage.id, stage.settings, settings)
        except StageError as exc:
            raise _fail(str(exc)) from None
        spec = replace(spec, extra={**spec.extra, **chosen})
    try:
        fixed = _load_schedule(schedule, spec) if schedule is not None else None
    except (HarnessError, ScheduleError) as exc:
        raise _fail(str(exc)) from None
    if fixed is not None and set(spec.nemeses) <= {"none"} and not spec.scenario:
        # Named after the schedule's faults, as `d11 hunt` stores it: a run of
        # kill faults stored under "...-none" could not be found by its faults.
        spec = replace(spec, nemeses=fixed.nemeses)
    with Interrupted() as said:
        _check_writable(store, junit)
        try:
            result = _run(spec, fixed, quiet=as_json)
        except (HarnessError, ScheduleError) as exc:
            raise _fail(str(exc)) from None
        said.kept = f"the store folder under {store} may be incomplete"
        with Stopwatch(result.timing_s).phase("store"):
            folder = _store(result, store, junit)
        said.kept = f"the run is in {folder}"
        if as_json:
            print(json.dumps(_outcome_json(result, folder)))
        else:
            _print_result(result, folder)
            console.print(time_line(result.timing_s))  # last: where the wall time went
        raise typer.Exit(result.exit_code)


def bench_chapter_command(
    chapter: Annotated[
        str, typer.Argument(help="Chapter id or alias: ch1, ch2, sharding, ...")
    ] = "ch4",
    nemesis: Annotated[str, typer.Option(help=NEMESIS_HELP)] = "partition-halves,kill,pause,skew",
    time_s: Annotated[
        float,
        typer.Option(
            "--time", callback=in_range(0, 600, "s"), help="Seconds of traffic and faults."
        ),
    ] = 60.0,
    seed: Annotated[int, typer.Option(callback=seed_range(), help="Seed of the run.")] = 12,
) -> None:
    """How fast `d11 test` runs a chapter on the simulator; the last line is wall_s.

    Prints the wall time of each phase, then of the whole (the store folder goes
    to a temporary folder). The default is chapter 4 for a minute under every
    fault. Exit status: 0 measured (whatever the verdicts), 2 an error.
    """
    import tempfile

    spec = _spec(chapter, "payments", nemesis, time_s, seed, "sim", "", 0, 0)
    start_s = time.perf_counter()
    try:
        result = _run(spec, None, quiet=True)
    except (HarnessError, ScheduleError) as exc:
        raise _fail(str(exc)) from None
    with (
        tempfile.TemporaryDirectory(prefix="d11-bench-") as root,
        Stopwatch(result.timing_s).phase("store"),
    ):
        _store(result, Path(root), None)
    wall_s = time.perf_counter() - start_s
    verdicts = ", ".join(f"{name} {_plain(v.valid)}" for name, v in result.verdicts.items())
    typer.echo(
        f"{spec.name} · seed {seed}: {len(result.history)} events, "
        f"{result.end_ms / 1000:.1f} s simulated, digest {result.digest}"
    )
    typer.echo(f"verdicts: {verdicts}")
    typer.echo(time_line(result.timing_s))
    typer.echo(f"simulated_per_wall: {result.end_ms / 1000 / wall_s:.2f}")
    typer.echo(f"wall_s: {wall_s:.1f}")


def _plain(valid: Validity) -> str:
    if valid == "unknown":
        return "unknown"
    return "valid" if valid else "invalid"


def _load_schedule(path: Path, spec: TestSpec) -> Schedule:
    """The --schedule file, checked against the stage it will run on (HarnessError if not)."""
    from checks.harness.inputs import load_schedule
    from checks.harness.runner import validate

    return load_schedule(path, validate(spec))


def _check_writable(store: Path, junit: Path | None = None) -> None:
    """Before a run starts: --store is a folder we can write in, --junit a file we can write.

    A run can take minutes; finding out at its end that its results cannot be
    kept would waste them.
    """
    from checks.harness.store import writable_file_problem, writable_folder_problem

    problem = writable_folder_problem(store)
    if problem:
        raise _fail(f"--store {store}: {problem}")
    if junit is not None:
        problem = writable_file_problem(junit)
        if problem:
            raise _fail(f"--junit {junit}: {problem}")


def _run(spec: TestSpec, schedule: Schedule | None, quiet: bool) -> TestResult:
    start_s = time.perf_counter()
    result = _run_with_status(spec, schedule, quiet)
    if not result.timing_s:  # a real backend: its run and checks are not split
        result.timing_s["run and checks"] = time.perf_counter() - start_s
    return result


def _run_with_status(spec: TestSpec, schedule: Schedule | None, quiet: bool) -> TestResult:
    from checks.harness.runner import run_test

    if quiet:
        return run_test(spec, schedule)
    with console.status(f"running {spec.name} (seed {spec.seed}) ...") as status:

        def progress(now_ms: float, end_ms: float) -> None:
            clock = "simulated" if spec.backend == "sim" else "real"
            status.update(
                f"running {spec.name}: {now_ms / 1000:.1f} / {end_ms / 1000:.1f} s {clock}"
            )

        return run_test(spec, schedule, on_progress=progress)


def _store(result: TestResult, root: Path, junit: Path | None) -> Path:
    from checks.harness.junit import write_junit
    from checks.harness.store import write_store

    try:
        folder = write_store(result, root)
        if junit is not None:
            write_junit(result, junit, folder)
    except OSError as exc:  # checked before the run; the disk may still fill up
        where = exc.filename or root
        raise _fail(f"cannot write the results to {where}: {exc.strerror or exc}") from None
    return folder


def _outcome_json(result: TestResult, folder: Path | None) -> dict[str, Any]:
    return {
        "test": result.spec.name,
        "seed": result.spec.seed,
        "backend": result.spec.backend,
        "valid": result.valid,
        "digest": result.digest,
        "faults": len(result.schedule.intervals()),  # the nemesis schedule's
        "scenario_faults": _scripted_faults(result),
        "store": str(folder) if folder is not None else None,
        "checks": {
            name: {**v.to_json(), "outcome": result.judged[name].outcome}
            for name, v in result.verdicts.items()
        },
    }


def _scripted_faults(result: TestResult) -> dict[str, int]:
    """The scenario's scripted faults by kind (crash: 1), in the order they happened."""
    out: dict[str, int] = {}
    for _, kind, _ in result.timeline:
        if kind in SCRIPTED_FAULTS:
            out[kind] = out.get(kind, 0) + 1
    return out


def _faults_words(result: TestResult) -> str:
    """'2 nemesis faults', and the scenario's own: '0 nemesis faults (the scenario's
    script: crash x1)'."""
    nemesis = len(result.schedule.intervals())
    words = f"{nemesis} nemesis fault{'' if nemesis == 1 else 's'}"
    scripted = _scripted_faults(result)
    if scripted:
        kinds = ", ".join(f"{kind} x{n}" for kind, n in scripted.items())
        # A live session's faults are the keys a person pressed, not a script.
        live = result.origin == "tui"
        whose = "keys pressed in the live view" if live else "the scenario's script"
        words += f" ({whose}: {kinds})"
    return words


def _outcome_words(judged: Judgement | None) -> str:
    """The outcome column: an unknown the chapter declares (chapter 6 without its
    controls leaves the bank unjudged) says so, as `d11 run` labels it."""
    if judged is None:
        return ""
    if judged.outcome == "unknown" and judged.expected and judged.expected.valid == "unknown":
        return "expected unknown"
    return judged.outcome


def _verdict_style(valid: Any) -> str:
    return {True: "[green]valid[/green]", False: "[red]INVALID[/red]"}.get(
        valid, "[yellow]unknown[/yellow]"
    )


def _unshown_variant_note(result: TestResult) -> str | None:
    """A broken variant judged valid reads as if its bug were not there: say that
    these faults did not hit what breaks it, and which scenario does (as `d11 run`
    says of a scenario without faults)."""
    spec = result.spec
    if result.valid is not True or not spec.variant:
        return None
    shown_under = stage_named(spec.chapter).variant_shown_under(spec.variant)
    if not shown_under:
        return None
    others = f" (or {', '.join(shown_under[1:])})" if shown_under[1:] else ""
    return (
        f"{spec.variant} is a broken variant, and these faults did not hit what breaks "
        f"it: every check passed. '{d11_command()} run {spec.chapter} --variant "
        f"{spec.variant} --scenario {shown_under[0]}'{others} shows its break"
    )


def _expected_failure_note(result: TestResult) -> str | None:
    """An invalid run whose every invalid check is one its scenario expects of its
    variant: `d11 run` printed EXPECTED FAILURE for it, and its replay must not read
    as a new failure (a newcomer's trial)."""
    invalid = [name for name, v in result.verdicts.items() if v.valid is False]
    judged = [result.judged.get(name) for name in invalid]
    if not invalid or any(j is None or j.outcome != "expected-failure" for j in judged):
        return None
    variant = f" of the variant {result.spec.variant}" if result.spec.variant else ""
    return (
        f"every invalid check ({', '.join(invalid)}) is what this scenario expects{variant}: "
        "an expected failure, as `d11 run` calls it"
    )


def _title(spec: TestSpec) -> str:
    """The run's name and seed; a scenario's name holds no variant: add it."""
    variant = f" · variant {spec.variant}" if spec.scenario and spec.variant else ""
    return f"{spec.name}{variant} · seed {spec.seed}"


def _print_result(result: TestResult, folder: Path | None) -> None:
    table = Table(title=_title(result.spec), title_justify="left")
    for column in ("check", "verdict", "outcome", "summary"):
        table.add_column(column)
    for name, verdict in result.verdicts.items():
        judged = result.judged.get(name)
        table.add_row(name, _verdict_style(verdict.valid), _outcome_words(judged), verdict.summary)
    console.print(table)
    console.print(
        f"{len(result.history)} events, {_faults_words(result)}, "
        f"{result.end_ms / 1000:.1f} s {'simulated' if result.spec.backend == 'sim' else 'real'}, "
        f"digest {result.digest or '-'}"
    )
    console.print(f"overall: {_verdict_style(result.valid)}")
    note = _unshown_variant_note(result) or _expected_failure_note(result)
    if note:
        console.print(f"note: {note}", soft_wrap=True)
    if folder is not None:
        console.print(f"store: {folder}  (report: {folder / 'report.html'})", soft_wrap=True)
        if result.valid is False:
            console.print(
                f"replay: [bold]{d11_command()} replay {shlex.quote(str(folder))}[/bold]",
                soft_wrap=True,  # a whole line, never wrapped: a command to copy
            )


def hunt_command(
    chapter: Annotated[str, typer.Argument(help="Chapter id or alias: ch1, ch2, sharding, ...")],
    budget: Annotated[
        int,
        typer.Option(
            callback=in_range(1, 100_000),
            help="Simulations in all, searching (seeds and schedules) and shrinking a "
            "failure found: the hunt stops at this many, with the smallest failure so far.",
        ),
    ] = 50,
    nemesis: Annotated[str, typer.Option(help=NEMESIS_HELP)] = "kill,partition-halves,pause",
    workload: Annotated[
        str, typer.Option(help="The workload: payments, double11 or saturate.")
    ] = "payments",
    time_s: Annotated[
        float,
        typer.Option(
            "--time", callback=in_range(0, 600, "s"), help="Seconds of traffic and faults."
        ),
    ] = 3.0,
    seed: Annotated[int, typer.Option(callback=seed_range(), help="Seed of the search.")] = 1,
    variant: Annotated[str, typer.Option(help="The chapter's variant (e.g. naive).")] = "",
    shards: Annotated[
        int,
        typer.Option(
            callback=in_range(0, 255),
            show_default=False,
            help="Chapter 2: number of shards (0: the chapter's own).",
        ),
    ] = 0,
    cells: Annotated[
        int,
        typer.Option(
            callback=in_range(0, 255),
            show_default=False,
            help="Chapter 3: number of cells (0: the chapter's own).",
        ),
    ] = 0,
    store: Annotated[
        Path,
        typer.Option(help=STORE_ROOT_HELP),
    ] = Path("store"),
) -> None:
    """Search seeds and fault schedules for a failure; shrink it to a minimal schedule.

    --budget bounds the whole hunt, shrinking included: when it runs out while
    shrinking, the smallest failing schedule found so far is stored, and the
    output says shrinking stopped early.

    Exit status: 0 no failure found within --budget runs, 1 a failure found
    (shrunk and stored, with the command that replays it), 2 an error (a bad
    option, an unwritable --store).
    """
    from checks.harness.hunt import hunt

    if budget < 1:
        raise _fail("--budget must be at least 1")
    spec = _spec(chapter, workload, nemesis, time_s, seed, "sim", variant, shards, cells)
    with Interrupted() as said:
        _check_writable(store)
        try:
            with console.status("hunting ...") as status:

                def on_run(n: int, result: TestResult) -> None:
                    marks: dict[Validity, str] = {False: "failing", True: "valid"}
                    mark = marks.get(result.valid, "unknown")
                    faults = len(result.schedule.intervals())
                    status.update(f"hunting: run {n} (last: {mark}, {faults} faults)")

                found = hunt(spec, budget, on_run=on_run)
        except (HarnessError, ScheduleError) as exc:
            raise _fail(str(exc)) from None
        if not found.found or found.minimal is None:
            console.print(f"no failure found in {found.runs} runs")
            raise typer.Exit(0)
        minimal = found.minimal
        said.kept = f"the store folder under {store} may be incomplete"
        folder = _store(minimal, store, None)
        said.kept = f"the failure found is in {folder}"
        # Titled for what it is: shrinking cut short at the budget proves no minimum.
        title = "shortest failing schedule found" if found.shrink_cut else "minimal schedule"
        _print_side_by_side(minimal, title)
        console.print(
            f"found a failure; shrunk over {found.runs} runs ({found.failing_runs} failing) "
            f"to {len(minimal.schedule.intervals())} fault(s), seed {minimal.spec.seed}"
        )
        if found.shrink_cut:
            console.print(
                f"shrinking stopped early at the budget ({budget} runs): this is the smallest "
                "failing schedule found, perhaps not the minimal one (raise --budget to shrink "
                "further)"
            )
        console.print(f"schedule: {folder / 'schedule.json'}", soft_wrap=True)
        console.print(
            f"replay: [bold]{d11_command()} replay {shlex.quote(str(folder))}[/bold]",
            soft_wrap=True,  # whole lines, never wrapped: commands to copy
        )
        variant_flag = f" --variant {minimal.spec.variant}" if minimal.spec.variant else ""
        console.print(
            f"or: {d11_command()} test {minimal.spec.chapter}{variant_flag} "
            f"--seed {minimal.spec.seed} --time {minimal.spec.time_s:g} "
            f"--schedule {shlex.quote(str(folder / 'schedule.json'))}",
            soft_wrap=True,
        )
        raise typer.Exit(1)


def _print_side_by_side(result: TestResult, title: str = "minimal schedule") -> None:
    """The schedule (`title`) next to the violation it causes, both in words."""
    from rich.columns import Columns
    from rich.text import Text

    from checks.harness.describe import describe_action, describe_witness

    faults = Table(title=title, title_justify="left")
    for column in ("ms", "fault", "what"):
        faults.add_column(column)
    for a in result.schedule.actions:
        faults.add_row(f"{a.at_ms:,.0f}", a.fault, Text(describe_action(a)))
    broken = Table(title="what broke", title_justify="left")
    broken.add_column("check")
    broken.add_column("violation")
    for name, verdict in result.verdicts.items():
        if verdict.valid is False:
            said = Text(verdict.summary)
            for line in describe_witness(verdict.witness, verdict.summary):
                said.append("\n· " + line, style="dim")
            broken.add_row(name, said)
    console.print(Columns([faults, broken]))


def replay_command(
    folder: Annotated[
        Path,
        typer.Argument(
            help="A store folder written by d11 test, d11 hunt or d11 run, or saved "
            "from d11 tui (or a test's folder: its latest run)."
        ),
    ],
    store: Annotated[
        Path, typer.Option(help="Root folder for the replay's own store folder.")
    ] = Path("store"),
) -> None:
    """Run a stored test again with its exact schedule; compare digest, history and verdict.

    Exit status: 0 the run was reproduced exactly (same trace digest, same
    history event by event, same verdict, whatever that verdict is; on the
    process and docker backends, whose timing is real, the same verdict);
    1 it was not reproduced (the first difference is named); 2 it could not
    be replayed: the folder was refused (a file missing, changed since it was
    stored, or naming a node, a shape or a value the stage cannot run).
    """
    from checks.harness.store import MANIFEST, latest_run, load_store

    run_folder = latest_run(folder)
    if run_folder.is_dir() and not any(
        (run_folder / name).exists() for name in ("test.json", "summary.json", MANIFEST)
    ):
        raise _fail(
            f"{folder}: not a store folder (no test.json): give one that d11 test, hunt or run "
            "wrote, or a test's folder (its latest run)"
        )
    try:
        stored = load_store(run_folder)
    except (HarnessError, ScheduleError) as exc:
        raise _fail(str(exc)) from None
    if stored.folder != folder:
        console.print(f"replaying {stored.folder} (the latest run of {folder})")
    with Interrupted() as said:
        _check_writable(store)
        from checks.harness.sessions import SESSION_FILE, session_replay

        session = session_replay(stored.folder)  # saved from d11 tui: its script, run again
        try:
            if session is not None:
                result = session(stored.folder)
            else:
                result = _run(stored.spec, stored.schedule, quiet=False)
        except (HarnessError, ScheduleError) as exc:
            raise _fail(str(exc)) from None
        said.kept = f"the store folder under {store} may be incomplete"
        new_folder = _store(result, store, None)
        if session is not None:  # the replay is a saved session too
            from checks.harness.store import write_manifest

            (new_folder / SESSION_FILE).write_bytes((stored.folder / SESSION_FILE).read_bytes())
            write_manifest(new_folder)
        said.kept = f"the replay is in {new_folder}"
        _print_result(result, new_folder)
        difference = replay_difference(stored, result)
        if not difference:
            what = "digest, history and verdict" if stored.spec.backend == "sim" else "verdict"
            console.print(
                f"reproduced: [green]same {what}[/green] ({result.digest or 'real backend'})"
            )
            raise typer.Exit(0)
        console.print(f"[red]not reproduced:[/red] {difference}")
        if stored.origin == "tui":
            console.print(
                "(saved from a live d11 tui session: its key presses and traffic are not a spec "
                "to rerun, so its faults were replayed under the spec's workload; "
                "d11 tui --attach shows the run as it was)"
            )
        raise typer.Exit(1)


def replay_difference(stored: Any, result: TestResult) -> str:
    """How the replay differs from the stored run ("" if it reproduced it)."""
    from checks.history import event_to_json

    if result.valid != stored.valid:
        return f"verdict {stored.valid} -> {result.valid}"
    if stored.spec.backend != "sim":
        return ""  # real time: only the verdict can be asked to match
    if result.digest != stored.digest:
        return f"digest {stored.digest} -> {result.digest}"
    old, new = stored.history, result.history
    for i, (a, b) in enumerate(zip(old, new, strict=False)):
        if event_to_json(a) != event_to_json(b):
            return f"history differs from event {i} on ({a.type} {a.f} of {a.process})"
    if len(old) != len(new):
        return f"history has {len(new)} events, the stored one {len(old)}"
    return ""
