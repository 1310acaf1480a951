"""`d11 check ...` and `d11 bench checker`.

`check_app` is the `check` command group; other checker modules
(`checks.cli_checkers`) add their commands to it:

    from checks.cli import check_app

    @check_app.command("bank")
    def bank(...): ...

Exit statuses of every `d11 check` command: 0 valid, 1 invalid, 2 unknown
or unreadable input (see `checks.verdict`).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

from checks.formats.limits import MAX_MB_HELP, MAX_MB_MAX
from reference.cli_options import in_range

if TYPE_CHECKING:
    from rich.console import Console

    from checks.explain import Explanation
    from checks.formats import LoadedHistory
    from checks.history import Event
    from checks.lin import LinResult, Model, Part
    from checks.verdict import Validity, Verdict

check_app = typer.Typer(
    name="check",
    help="Check a history (JSON Lines, Jepsen EDN, Porcupine logs) with a consistency checker. "
    "Each exits 0 valid, 1 invalid, 2 unknown or unreadable input.",
    no_args_is_help=True,
)

MODEL_HELP = (
    "register | cas-register | etcd | kv | queue | set | ledger "
    "(etcd: a failed cas saw another value, as Porcupine checks etcd)"
)


TIMEOUT_S_MAX = 7 * 86_400.0  # a week: any longer budget is a mistake, not a plan


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add `d11 check` (this group) and `d11 bench checker`."""
    app.add_typer(check_app, name="check")
    bench.command("checker")(bench_checker)


@check_app.command("lin")
def check_lin(
    history: Path = typer.Argument(
        ..., help="The history file, or a run folder (its history.jsonl)."
    ),
    model: str | None = typer.Option(
        None, "--model", "-m", help=MODEL_HELP + "; default: detected from the history"
    ),
    fmt: str | None = typer.Option(
        None, "--format", help="jsonl | edn | porcupine-etcd | porcupine-kv (default: detect)"
    ),
    part: str | None = typer.Option(
        None,
        "--part",
        help="A history of several parts (d11 run double11's): check this one alone "
        "(default: each part a model fits, one after the other).",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the verdict as one JSON object."),
    html: Path | None = typer.Option(
        None,
        "--out",
        "--html",
        help="Where to write the timeline of a failure (default: NAME.lin.html in the "
        "current directory, never beside the history; the path is printed).",
    ),
    no_html: bool = typer.Option(False, "--no-html", help="Do not write the timeline."),
    timeout_s: float = typer.Option(
        60.0,
        "--timeout-s",
        callback=in_range(0.001, TIMEOUT_S_MAX, "s"),
        help="Budget for deciding, in seconds (up to a week).",
    ),
    explain_timeout_s: float = typer.Option(
        10.0,
        "--explain-timeout-s",
        callback=in_range(0.0, TIMEOUT_S_MAX, "s"),
        help="Separate budget for explaining a failure, in seconds (0: no explanation).",
    ),
    max_mb: int | None = typer.Option(
        None, "--max-mb", callback=in_range(1, MAX_MB_MAX), help=MAX_MB_HELP, show_default=False
    ),
) -> None:
    """Linearizability (Wing–Gong–Lowe search, split by key).

    The model is detected where the history says it (a Porcupine etcd log is
    a cas register, a kv log a key-value map; read/write/cas operations a
    register, init/read/transfer a ledger, ...) and named in the output;
    --model overrides it. A ledger history with opening balances (d11's own,
    as `d11 run` stores them) is checked one wallet at a time, as chapter 4's
    own lin check does; chapter 5's queue operations beside the payments
    move no ledger money and are set aside (`d11 check delivery` judges
    them). The capstone's history (d11 run double11) holds one ledger per
    part: each is checked alone (--part picks one).

    The timeline of a failure is written to --out (default: the current
    directory), never into the history's folder.

    Exit status: 0 valid, 1 invalid, 2 unknown (undecided, nothing to judge) or unreadable input.
    """
    from rich.console import Console

    from checks.lin.detect import parts

    console = Console(stderr=json_out)  # with --json, stdout holds the JSON alone
    history = history_file(history)
    loaded = _load_lin(history, fmt, max_mb, json_out, console)
    split = parts(loaded.events)
    if split is None:
        if part is not None:
            _fail(json_out, f"--part {part}: {shown(history)} is a history of one part")
        verdict = _check_lin_part(
            loaded, None, history, model, timeout_s, explain_timeout_s, json_out, console,
            html=html, no_html=no_html,
        )  # fmt: skip
        if json_out:
            typer.echo(json.dumps(verdict.to_json()))
        raise typer.Exit(verdict.exit_code)
    names = [p.name for p in split]
    if part is not None and part not in names:
        _fail(json_out, f"--part {part}: {shown(history)} has parts {', '.join(names)}")
    verdicts: dict[str, Verdict] = {}
    set_aside: dict[str, str] = {}
    for one in split:
        if part is not None and one.name != part:
            continue
        why = _no_model_for(one.events)  # with --model too: none takes a queue's operations
        if why is not None:
            set_aside[one.name] = why
            continue
        sub = replace(loaded, events=one.events, lines=[loaded.lines[i] for i in one.origin])
        if not json_out:
            console.rule(f"part {one.name}", style="dim")
        verdicts[one.name] = _check_lin_part(
            sub, one.name, history, model, timeout_s, explain_timeout_s, json_out, console,
            html=html, no_html=no_html,
        )  # fmt: skip
    verdict = parts_verdict(verdicts, set_aside, shown(history))
    if json_out:
        typer.echo(json.dumps(verdict.to_json()))
    else:
        for name, why in set_aside.items():
            console.print(f"part {name}: not checked ({why})", highlight=False, markup=False)
        console.print(verdict.summary, highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(verdict.exit_code)


def history_file(path: Path) -> Path:
    """The history a checker reads: the file named, or a run folder's history.jsonl
    (`d11 run`, `d11 test` and `d11 hunt` store one in each folder)."""
    inside = path / "history.jsonl"
    return inside if path.is_dir() and inside.is_file() else path


def _load_lin(
    history: Path, fmt: str | None, max_mb: int | None, json_out: bool, console: Console
) -> LoadedHistory:
    """Read the history; unreadable input or nothing to judge exits here."""
    from checks.formats import load_history
    from checks.history import HistoryError
    from checks.verdict import has_client_operations

    try:
        loaded = load_history(history, fmt, max_mb)
    except HistoryError as exc:
        _fail(json_out, str(exc))
    if not has_client_operations(loaded.events):
        _nothing_to_judge(json_out, console)
    return loaded


def _no_model_for(events: list[Event]) -> str | None:
    """Why no model fits a part's operations (None: one does)."""
    from checks.lin.detect import detect_model

    if detect_model("jsonl", events) is not None:
        return None
    fs = sorted({ev.f for ev in events if ev.process not in ("nemesis", "trace")})
    return (
        f"its operations, {', '.join(fs)}, fit no model here; a queue's are judged by "
        "d11 check delivery"
    )


LIN_WORDS: dict[Validity, str] = {
    True: "linearizable",
    False: "not linearizable",
    "unknown": "unknown",
}


def parts_verdict(
    verdicts: dict[str, Verdict],
    set_aside: dict[str, str],
    where: str,
    checker: str = "lin",
    words: dict[Validity, str] = LIN_WORDS,
    none_checked: str = "fits a model (name one with --model)",
) -> Verdict:
    """One verdict over the parts checked: invalid if one is, unknown if one is
    (the exit status is the worst part's). `d11 check lin` and `d11 check ledger`
    both judge a capstone history this way."""
    from checks.verdict import Verdict

    if not verdicts:
        return Verdict(
            checker,
            "unknown",
            f"unknown: no part of {where} {none_checked}",
            {"parts_set_aside": set_aside},
        )
    valids = [v.valid for v in verdicts.values()]
    valid: Validity = False if False in valids else "unknown" if "unknown" in valids else True
    each = "; ".join(f"{name} {words[v.valid]}" for name, v in verdicts.items())
    summary = f"{words[valid]}: {len(verdicts)} part(s) checked, each alone ({each})"
    details = {
        "parts_checked": {name: v.to_json() for name, v in verdicts.items()},
        "parts_set_aside": set_aside,
    }
    return Verdict(checker, valid, summary, details)


def _check_lin_part(
    loaded: LoadedHistory,
    part: str | None,
    history: Path,
    model: str | None,
    timeout_s: float,
    explain_timeout_s: float,
    json_out: bool,
    console: Console,
    *,
    html: Path | None,
    no_html: bool,
) -> Verdict:
    """Check one history (or one part of one), print its verdict unless --json."""
    from checks.lin.report import lin_verdict

    run = _run_lin(history, loaded, model, timeout_s, json_out)
    lines = run.loaded.lines

    def at(i: int) -> str:
        return f"line {lines[i]}"

    failure = _LinFailure()
    if run.result.failing is not None and explain_timeout_s > 0:
        failure = _explain_lin_failure(
            run.result.failing,
            run.model,
            at,
            history=history,
            part=part,
            html=html,
            no_html=no_html,
            budget_s=explain_timeout_s,
            json_out=json_out,
        )
    extra = {} if part is None else {"part": part}
    verdict = lin_verdict(
        run.result,
        failure.ex,
        at,
        history=shown(history),
        format=run.loaded.format,
        model_chosen=run.how,
        html=None if failure.html_path is None else shown(failure.html_path),
        **extra,
    )
    if not json_out:
        _say_lin(console, verdict, run, failure, at, history=history, html=html)
    return verdict


@dataclass(frozen=True)
class _LinRun:
    """A history read and checked: with which model, and how that model was chosen."""

    loaded: LoadedHistory
    model_name: str
    how: str  # "given with --model" or "detected: ..."
    model: Model
    result: LinResult


def _run_lin(
    history: Path,
    loaded: LoadedHistory,
    model: str | None,
    timeout_s: float,
    json_out: bool,
) -> _LinRun:
    """Choose the model, search; input the model cannot read exits 2 here."""
    from checks.formats import locate
    from checks.history import HistoryError
    from checks.lin import MODELS, check_operations
    from checks.lin.models.accounts import LedgerModel
    from checks.lin.models.wallets import is_wallet_history, wallet_history

    if model is not None and model not in MODELS:
        _fail(json_out, f"unknown model {model!r}; known: {', '.join(MODELS)}")
    try:
        chosen, how = _lin_model(history, model, loaded, json_out)
        the_model = MODELS[chosen]()
        ops = loaded.operations()
        if chosen == "ledger" and is_wallet_history(loaded.events):
            wallets = wallet_history(loaded.events)  # as chapter 4's own check reads it
            the_model, ops = LedgerModel(wallets.initial), wallets.operations
            how += (
                f"; checked one wallet at a time ({wallets.wallets} wallets, opening balances "
                f"from init; {wallets.left_out} accounts credited by transfers left out: "
                "d11 check ledger holds every account)"
            )
        result = check_operations(ops, the_model, timeout_s=timeout_s)
    except HistoryError as exc:
        _fail(json_out, locate(exc, loaded))
    return _LinRun(loaded, chosen, how, the_model, result)


def _lin_model(
    history: Path, model: str | None, loaded: LoadedHistory, json_out: bool
) -> tuple[str, str]:
    """The model to check with, and how it was chosen: given, or detected from the history."""
    from checks.lin import MODELS
    from checks.lin.detect import detect_model

    if model is not None:
        return model, "given with --model"
    detected = detect_model(loaded.format, loaded.events)
    if detected is None:
        fs = sorted({ev.f for ev in loaded.events if ev.process not in ("nemesis", "trace")})
        _fail(
            json_out,
            f"{shown(history)}: cannot tell the model from the history (operations: "
            f"{', '.join(fs) or 'none'}); name it with --model: {', '.join(MODELS)}",
        )
    return detected.model, f"detected: {detected.reason}"


@dataclass(frozen=True)
class _LinFailure:
    """A failure explained: the explanation, where its timeline went, or why it did not."""

    ex: Explanation | None = None
    html_path: Path | None = None
    html_note: str = ""


def _explain_lin_failure(
    failing: Part,
    model: Model,
    at: Callable[[int], str],
    *,
    history: Path,
    part: str | None,
    html: Path | None,
    no_html: bool,
    budget_s: float,
    json_out: bool,
) -> _LinFailure:
    """Explain the failing part on its own budget, and write its timeline page."""
    from checks.explain import explain, timeline_html

    ex = explain(failing, model, budget_s=budget_s)
    html_path, html_note = (None, "") if no_html else (_html_path(history, html, part), "")
    if html_path is not None:
        of = "" if part is None else f" (part {part})"
        title = f"{history.name}{of}: not linearizable"
        page = timeline_html(ex, model, title, ex.lines(model, at), at)
        try:
            html_path.write_text(page, encoding="utf-8")
        except OSError as exc:
            _fail(json_out, f"cannot write {shown(html_path)}: {exc.strerror or exc}")
    return _LinFailure(ex, html_path, html_note)


def _say_lin(
    console: Console,
    verdict: Verdict,
    run: _LinRun,
    failure: _LinFailure,
    at: Callable[[int], str],
    *,
    history: Path,
    html: Path | None,
) -> None:
    """The verdict for a person: its summary, the model, the figures, the explanation."""
    from rich.markup import escape

    style = "bold yellow" if verdict.valid == "unknown" else "bold green"
    if verdict.valid is False:
        style = "bold red"
    say = functools.partial(console.print, highlight=False, markup=False, soft_wrap=True)
    console.print(f"[{style}]{escape(verdict.summary)}[/]", highlight=False, soft_wrap=True)
    result = run.result
    say(f"model: {run.model_name} ({run.how})")
    say(
        f"{shown(history)} ({run.loaded.format}): {verdict.details['operations']} operations, "
        f"{result.calls_dropped} left out (failed, or reads never answered); "
        f"{result.elapsed_s:.3f} s, {result.stats.steps} search steps"
    )
    if failure.ex is not None:
        for line in failure.ex.lines(run.model, at):
            say(line)
        if failure.html_path is not None:
            say(
                f"timeline: {shown(failure.html_path)} "
                "(open it in a browser; hover a bar for the state)"
            )
        elif failure.html_note:
            say(failure.html_note)
    elif result.valid is False:
        say("(no explanation: --explain-timeout-s is 0)")
    elif html is not None:
        say(f"(no timeline written to {shown(html)}: there is no failure to show)")
    elif result.valid == "unknown" and result.parts:
        say("raise --timeout-s, or check a shorter history; an unknown is not a verdict")


def _nothing_to_judge(json_out: bool, console: Console) -> NoReturn:
    """A history without client operations: unknown (exit 2), as every checker says."""
    from checks.verdict import no_client_operations

    verdict = no_client_operations("lin")
    if json_out:
        typer.echo(json.dumps(verdict.to_json()))
    else:
        console.print(verdict.summary, style="bold yellow", highlight=False, markup=False)
    raise typer.Exit(verdict.exit_code)


def _html_path(history: Path, html: Path | None, part: str | None = None) -> Path:
    """Where the timeline goes: --out, else the current directory, named after the
    history (a run folder's history.jsonl after its folder), never beside it:
    a checker does not write into its input's folder uninvited."""
    suffix = "" if part is None else f".{part}"
    if html is not None:
        if part is None or html.is_dir():
            return html / _timeline_name(history, suffix) if html.is_dir() else html
        return html.with_name(f"{html.stem}{suffix}{html.suffix}")
    return Path(_timeline_name(history, suffix))


def _timeline_name(history: Path, suffix: str) -> str:
    name = history.name
    if name == "history.jsonl" and history.resolve().parent.name:
        name = history.resolve().parent.name  # store/ch5-steady/<time>/history.jsonl
    return f"{name}{suffix}.lin.html"


def shown(path: Path | str) -> str:
    """A path as printable text (a file name that is not UTF-8 cannot crash the output)."""
    return str(path).encode("utf-8", "backslashreplace").decode("utf-8")


def _fail(json_out: bool, message: str) -> NoReturn:
    """Unreadable input or bad options: one line (or one JSON object), exit 2."""
    typer.echo(f"error: {message}", err=True)
    if json_out:
        from checks.verdict import Verdict

        verdict = Verdict("lin", "unknown", f"error: {message}", {"error": message})
        typer.echo(json.dumps(verdict.to_json()))
    raise typer.Exit(2)


def bench_checker(
    corpus: Path | None = typer.Option(
        None, "--corpus", help="Porcupine corpus directory (default: ../shared/corpora/porcupine)"
    ),
    repeat: int = typer.Option(3, "--repeat", min=1, max=20, help="Runs; the best is reported."),
    porcupine: Path | None = typer.Option(
        None,
        "--porcupine",
        help="A checkout of github.com/anishathalye/porcupine: run its own `go test -bench` "
        "over the same histories in this run and compare (needs Go; nothing is fetched).",
    ),
) -> None:
    """Check Porcupine's corpus: time per family, beside Porcupine's own, measured now.

    Exit status: 0 measured, every verdict as the corpus expects; 1 measured,
    but a verdict differs from the corpus's (each is named); 2 it could not
    measure (no corpus at --corpus, or --porcupine's own benchmark failed; the
    reason is on stderr).
    """
    from checks.lin.corpus import PorcupineError, corpus_dir, porcupine_times

    root = corpus if corpus is not None else corpus_dir()
    if not (root / "verdicts.json").is_file():
        typer.echo(f"error: no Porcupine corpus at {root} (set --corpus)", err=True)
        raise typer.Exit(2)
    go: dict[str, tuple[float, int]] = {}
    if porcupine is not None:
        try:
            go = porcupine_times(porcupine, repeat)
        except PorcupineError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    runs = [_bench_once(root) for _ in range(repeat)]
    wrong = sorted({w for _, ws, _ in runs for w in ws})
    engines = sorted({e for _, _, es in runs for e in es})
    labels = list(runs[0][0])
    best = {k: min((r[0][k] for r in runs), key=lambda row: row[0]) for k in labels}
    typer.echo(f"Porcupine corpus: {shown(root)}")
    typer.echo(
        f"ours: measured in this run, in this process, best of {repeat}, garbage collected "
        "before each history (read s: parsing the file and the model's view of each "
        "operation, as Porcupine's parser builds its model's inputs; check ms: splitting the "
        "history into parts, searching them, the verdict; the result and the search's "
        "memory are freed after the timer, as Go frees CheckEvents' in a later collection)"
    )
    if go:
        typer.echo(
            f"porcupine ms: measured in this run, on this machine, `go test -bench -benchtime=1x "
            f"-count={repeat}` in {shown(porcupine or '')}: best time of CheckEvents "
            "(its partitioning and search; not timed: its parsing, which also builds the "
            "model's inputs)"
        )
    else:
        typer.echo(
            "Porcupine (Go): NOT measured here (give --porcupine DIR, a checkout of "
            "github.com/anishathalye/porcupine, with Go installed); no comparison printed"
        )
    typer.echo("No figure below is quoted from elsewhere.")
    typer.echo(f"engine: {_engine_line(engines)}")
    typer.echo(
        f"{'family':<14}{'histories':>10}{'read s':>9}{'check ms':>10}{'cpu s':>8}"
        + (f"{'porcupine ms':>14}{'check/porc.':>13}" if go else "")
    )
    for label, (wall, cpu, read, n) in best.items():
        row = f"{label:<14}{n:>10.0f}{read:>9.3f}{(wall - read) * 1e3:>10.3f}{cpu:>8.3f}"
        if label in go:
            go_s, go_n = go[label]
            ratio = (wall - read) / go_s if go_s > 0 else float("inf")
            row += f"{go_s * 1e3:>14.3f}{ratio:>12.2f}x" + ("" if go_n == n else f" ({go_n} in Go)")
        elif go:
            row += f"{'-':>14}"
        typer.echo(row)
    n_all = sum(row[3] for row in best.values())
    typer.echo(f"verdicts: {n_all - len(wrong):.0f} of {n_all:.0f} as expected")
    for w in wrong:
        typer.echo(f"  WRONG {w}")
    check_s = sum(row[0] - row[2] for row in best.values())
    if go:
        go_s = sum(go[k][0] for k in best if k in go)
        slower = [k for k in best if k in go and best[k][0] - best[k][2] > go[k][0]]
        typer.echo(f"slower_than_porcupine: {', '.join(slower) or 'none'}")
        typer.echo(f"porcupine_s: {go_s:.3f} (the same families, Go, this run)")
        typer.echo(
            f"check_s: {check_s:.3f} = {check_s / go_s:.2f}x Porcupine's (reading not counted)"
        )
    else:
        typer.echo(f"check_s: {check_s:.3f} (reading not counted)")
    typer.echo(f"cpu_s: {sum(row[1] for row in best.values()):.3f}")
    typer.echo(f"total_s: {sum(row[0] for row in best.values()):.3f}")
    if wrong:
        raise typer.Exit(1)


def _engine_line(engines: list[str]) -> str:
    """Which search checked the corpus, and how to get the other one."""
    from checks.lin import native

    if engines == ["native"]:
        return (
            f"native (the compiled search, {native.MODULE} from native/lincheck; "
            f"{native.ENGINE_VAR}=python runs the reference, checks/lin/search.py)"
        )
    if engines == ["python"]:
        why = (
            f"{native.ENGINE_VAR}=python"
            if native.wanted() == "python"
            else f"{native.MODULE} is not installed: pip install ./native/lincheck"
        )
        return f"python (checks/lin/search.py; {why})"
    return f"{' and '.join(engines)} (per history, by model)"


def _bench_once(
    root: Path,
) -> tuple[dict[str, tuple[float, float, float, int]], list[str], set[str]]:
    """One pass over the corpus: label -> (wall s, cpu s, read s, histories),
    the mismatches, and the engines that searched.

    Timed as Porcupine's `go test -bench` times a benchmark: garbage is
    collected before each history (Go's testing runs runtime.GC() before
    each run), and a history's result is freed after its timer stops, not
    inside the next one's.
    """
    import gc

    from checks.formats import load_history
    from checks.history import HistoryError
    from checks.lin import check_operations, model_named
    from checks.lin.checker import check_prepared, prepare_operations
    from checks.lin.corpus import corpus_entries

    rows: dict[str, list[float]] = {}
    wrong: list[str] = []
    engines: set[str] = set()
    for entry in corpus_entries(root):
        label = "etcd" if entry.family == "etcd" else entry.path.name
        row = rows.setdefault(label, [0.0, 0.0, 0.0, 0])
        gc.collect()
        w, c = time.perf_counter(), time.process_time()
        try:
            # read: the file parsed, and each operation's input and output
            # for the model (as Porcupine's parser builds them, untimed there)
            ops = load_history(entry.path).operations()
            prepared = prepare_operations(ops, model_named(entry.model)) if ops else None
        except HistoryError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        row[2] += time.perf_counter() - w
        if prepared is None:  # no operations: the checker's own answer
            result = check_operations(ops, model_named(entry.model), timeout_s=60)
        else:  # check: split, search (as CheckEvents: partition, entries, search)
            result = check_prepared(prepared, timeout_s=60)
        row[0] += time.perf_counter() - w
        row[1] += time.process_time() - c
        row[3] += 1
        engines.add(result.engine)
        if result.valid != entry.linearizable:
            wrong.append(f"{entry.path.name}: expected {entry.linearizable}, got {result.valid}")
        del result, ops, prepared  # freed here, untimed (the helper's caches with prepared)
    return {k: (r[0], r[1], r[2], int(r[3])) for k, r in rows.items()}, wrong, engines
