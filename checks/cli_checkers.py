"""`d11 check bank|ledger|txn|delivery HISTORY`: the history checkers' commands.

Each reads a history (JSON Lines, or Jepsen EDN; see `checks.formats`),
runs one checker, and prints its verdict: rich tables by default, one JSON
object with `--json`. Exit status: 0 valid, 1 invalid, 2 unknown or
unreadable input, so scripts and CI can gate on it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from checks.formats.limits import MAX_MB_HELP, MAX_MB_MAX
from checks.history import Event, HistoryError
from checks.verdict import (
    EXIT_UNKNOWN,
    NO_CLIENT_OPERATIONS,
    Validity,
    Verdict,
    has_client_operations,
    no_client_operations,
)
from reference.cli_options import in_range

HISTORY_HELP = "The history file, or a run folder (its history.jsonl)."
WITNESS_ROWS_MAX = 20  # rows of evidence printed; --json has them all
FIGURE_ITEMS_SHOWN = 5  # a figure that is a long list (2,000 accounts): its first few, a count

# What to look at, per checker, when the verdict is invalid.
LOOK_AT: dict[str, str] = {
    "bank": "Look at the bad reads' times: which transfers were in flight then, and which "
    "nemesis faults were active. A total off by one transfer's amount is that transfer "
    "seen half-applied.",
    "ledger": "Each error names the read and the fewest faults that explain its balances: "
    "find those transfer ids in the history and follow their attempts.",
    "txn": "Read each cycle's steps in order: every step says why one transaction must "
    "precede the next; a cycle means no serial order exists. The weakest violated model "
    "says which guarantee the database broke.",
    "delivery": "Lost and rolled-back-delivered messages point at the broker's commit and "
    "check-back path; applied-twice points at a consumer that is not idempotent; order "
    "violations at rebalancing or retries.",
}

# What to do, per checker, when it could not judge (the summary says what was missing).
IF_UNKNOWN: dict[str, str] = {
    "bank": "The check needs complete reads: reads of every account at once (invoke value "
    "null). Record some, or name the accounts and the total with --accounts and --total.",
    "ledger": "The check needs the opening balances (an ok f='init', or --initial) and a "
    "final read of every account after the last transfer; the summary says which is missing.",
    "txn": "This checker judges transactions: f='txn' operations whose value lists "
    'micro-operations (["append", k, v] and ["r", k, [...]], or ["w", k, v]). A history of '
    "transfers and reads is checked with `d11 check ledger`, `bank` or `lin`.",
    "delivery": "This checker judges a message queue's history: send/commit/rollback/publish "
    "and receive/apply operations (chapter 5's). A history of transfers and reads is "
    "checked with `d11 check ledger`, `bank` or `lin`.",
}

UNMODELLED = (
    "A history of operations it models (figures: modelled) and operations it knows move "
    "no ledger money (no_money). Judge the others with the checker that models them, or "
    "leave them out of the file."
)


def _run(
    name: str,
    path: Path,
    fmt: str | None,
    as_json: bool,
    check: Any,
    mb_max: int | None = None,
    show: Callable[[Verdict], None] | None = None,
) -> None:
    """Load, check, print, exit with the verdict's status; any unreadable
    history gives one line on stderr and status 2, never a traceback. A
    history with no client operation is unknown, whichever checker is asked."""
    from checks.cli import history_file, shown
    from checks.formats import load_history, locate

    path = history_file(path)  # a run folder: its history.jsonl
    loaded = None
    try:
        loaded = load_history(path, fmt, mb_max)
        if has_client_operations(loaded.events):
            verdict: Verdict = check(loaded.events)
        else:
            verdict = no_client_operations(name)
    except (HistoryError, _PlotError) as exc:
        if isinstance(exc, HistoryError) and loaded is not None:
            message = locate(exc, loaded)
        else:
            message = shown(str(exc))
        if as_json:
            typer.echo(json.dumps({"valid": "unknown", "error": message}))
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(EXIT_UNKNOWN) from None
    if as_json:
        typer.echo(json.dumps(verdict.to_json()))
    else:
        (show or render)(verdict)
    raise typer.Exit(verdict.exit_code)


class _PlotError(Exception):
    """A picture that could not be written (the verdict stands; the exit is 2)."""


def _plot(draw: Any, verdict: Verdict, path: Path) -> Any:
    """Write a plot, turning an unwritable path into one line, not a traceback."""
    from checks.cli import shown

    try:
        return draw(verdict, path)
    except OSError as exc:
        raise _PlotError(f"cannot write the plot {shown(path)}: {exc.strerror or exc}") from None


def render(verdict: Verdict) -> None:
    """Print a verdict for a person: headline, figures, evidence, what to look at."""
    from rich.console import Console
    from rich.panel import Panel
    from rich.table import Table

    console = Console()
    words: dict[Validity, tuple[str, str]] = {True: ("green", "VALID"), False: ("red", "INVALID")}
    style, word = words.get(verdict.valid, ("yellow", "UNKNOWN"))
    console.print(
        Panel(verdict.summary, title=f"[bold {style}]{verdict.checker}: {word}", expand=False)
    )
    figures = Table(title="figures", show_header=False, box=None)
    for k, v in verdict.details.items():
        if k in ("totals", "txn_index", "errors"):  # long lists: in --json only
            continue
        figures.add_row(k, _figure(v))
    console.print(figures)
    rows = _witness_rows(verdict)
    if rows:
        cols, data = rows
        table = Table(title="evidence", show_lines=True)
        for c in cols:
            table.add_column(c, overflow="fold")
        for r in data[:WITNESS_ROWS_MAX]:
            table.add_row(*r)
        console.print(table)
        if len(data) > WITNESS_ROWS_MAX:
            console.print(f"... {len(data) - WITNESS_ROWS_MAX} more rows: use --json")
    if verdict.valid is False and verdict.checker in LOOK_AT:
        console.print(f"[bold]What to look at:[/bold] {LOOK_AT[verdict.checker]}")
    elif verdict.valid == "unknown" and "unmodelled" in verdict.details:
        console.print(f"[bold]What it needs:[/bold] {UNMODELLED}")
    elif (
        verdict.valid == "unknown"
        and verdict.checker in IF_UNKNOWN
        and verdict.details.get("reason") != NO_CLIENT_OPERATIONS  # (its summary says it all)
    ):
        console.print(f"[bold]What it needs:[/bold] {IF_UNKNOWN[verdict.checker]}")


def _figure(v: object) -> str:
    """One figure as text; a long list or map of plain values as its size and first few."""
    if not isinstance(v, (dict, list)):
        return str(v)
    plain = all(
        isinstance(x, (str, int, float)) for x in (v.values() if isinstance(v, dict) else v)
    )
    if not plain or len(v) <= 2 * FIGURE_ITEMS_SHOWN:
        return json.dumps(v)
    items = list(v.items())[:FIGURE_ITEMS_SHOWN] if isinstance(v, dict) else v[:FIGURE_ITEMS_SHOWN]
    head = ", ".join(f"{x[0]}={x[1]}" if isinstance(v, dict) else str(x) for x in items)
    return f"{len(v)}: {head}, …and {len(v) - FIGURE_ITEMS_SHOWN} more (--json lists them all)"


def _witness_rows(v: Verdict) -> tuple[list[str], list[list[str]]] | None:
    w = v.witness
    if not isinstance(w, list) or not w:
        return None
    if v.checker == "bank":
        cols = ["index", "time_ms", "process", "kind", "total", "what"]
        keys = ["index", "time_ms", "process", "kind", "total", "message"]
    elif v.checker == "ledger":
        cols = ["index", "time_ms", "kind", "what", "explained by"]
        return cols, [
            [
                str(e["index"]),
                _ms(e["time_ms"]),
                e["kind"],
                e["message"],
                "\n".join(e["explanations"]),
            ]
            for e in w
        ]
    elif v.checker == "txn":
        cols = ["anomaly", "weakest model violated", "transactions", "story"]
        return cols, [
            [a["kind"], ", ".join(a["violates"]), " ".join(a["txns"]), a["explanation"]] for a in w
        ]
    elif v.checker == "delivery":
        cols = ["kind", "message", "group", "line", "what"]  # history.jsonl's, from 1
        keys = ["kind", "id", "group", "line", "words"]
    else:
        return None
    return cols, [[_ms(e.get(k)) if k == "time_ms" else str(e.get(k)) for k in keys] for e in w]


def _ms(time_ms: object) -> str:
    """A witness's time to the tenth of a millisecond: the raw float (35729.0140909032)
    wrapped over two lines of the table."""
    return f"{time_ms:.1f}" if isinstance(time_ms, float) else str(time_ms)


def _accounts(text: str | None) -> list[str] | None:
    return [a.strip() for a in text.split(",") if a.strip()] if text else None


def _balances(text: str) -> dict[str, int]:
    """'a=100,b=250' -> {'a': 100, 'b': 250}."""
    out: dict[str, int] = {}
    for part in text.split(","):
        name, sep, cents = part.partition("=")
        if not sep or not name.strip():
            raise typer.BadParameter(f"expected account=cents, got {part!r}")
        try:
            out[name.strip()] = int(cents)
        except ValueError:
            raise typer.BadParameter(f"{cents!r} is not a whole number of cents") from None
    return out


CENTS_MAX = 10**18  # amounts are 64-bit integers of cents
FORMAT_HELP = "History format (jsonl, edn, ...); detected from the content when omitted."
JSON_HELP = "Print the verdict as one JSON object."


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add bank, ledger, txn and delivery to the `d11 check` group."""
    try:
        from checks.cli import check_app
    except ModuleNotFoundError as exc:
        if exc.name != "checks.cli":
            raise
        # The linearizability area is not in this checkout: own the group.
        check_app = typer.Typer(help="Check a history: each checker exits 0/1/2.")
        app.add_typer(check_app, name="check", no_args_is_help=True)
    for name, command in (
        ("bank", bank_cmd),
        ("ledger", ledger_cmd),
        ("txn", txn_cmd),
        ("delivery", delivery_cmd),
    ):
        check_app.command(name)(command)


def bank_cmd(
    history: Path = typer.Argument(..., help=HISTORY_HELP),
    total: int | None = typer.Option(
        None,
        callback=in_range(-CENTS_MAX, CENTS_MAX),
        help="Money in the bank (default: most common total).",
    ),
    accounts: str | None = typer.Option(None, help="Comma-separated accounts (default: all read)."),
    allow_negative: bool = typer.Option(False, help="Balances may go below zero."),
    plot: Path | None = typer.Option(None, help="Write a PNG of totals over time here."),
    fmt: str | None = typer.Option(None, "--format", help=FORMAT_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    max_mb: int | None = typer.Option(
        None, "--max-mb", callback=in_range(1, MAX_MB_MAX), help=MAX_MB_HELP, show_default=False
    ),
) -> None:
    """Jepsen's bank check: every read of all accounts adds up to the total.

    Exit status: 0 valid, 1 invalid, 2 unknown (nothing to judge) or unreadable input.
    """
    from checks.bank import check_bank

    def check(events: list[Event]) -> Verdict:
        v = check_bank(
            events, total=total, accounts=_accounts(accounts), negative_allowed=allow_negative
        )
        if plot is not None:
            from checks.plots import plot_bank_totals

            out = _plot(plot_bank_totals, v, plot)
            typer.echo(f"plot: {out}", err=True)
        return v

    _run("bank", history, fmt, as_json, check, max_mb)


def ledger_cmd(
    history: Path = typer.Argument(..., help=HISTORY_HELP),
    initial: str | None = typer.Option(
        None, help="Starting balances, 'a=100,b=250' (default: the history's init)."
    ),
    realtime: bool = typer.Option(
        True, help="Hold every read to real-time order, not only the final ones."
    ),
    allow_negative: bool = typer.Option(False, help="Balances may go below zero."),
    part: str | None = typer.Option(
        None,
        "--part",
        help="A history of several parts (d11 run double11's): check this one alone "
        "(default: each part with opening balances, one after the other).",
    ),
    fmt: str | None = typer.Option(None, "--format", help=FORMAT_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    max_mb: int | None = typer.Option(
        None, "--max-mb", callback=in_range(1, MAX_MB_MAX), help=MAX_MB_HELP, show_default=False
    ),
) -> None:
    """Hold transfers against reads: exactly once, never half-applied.

    The capstone's history (d11 run double11) holds one ledger per part, each
    with its own opening balances: each is checked alone (--part picks one),
    and the queue's part, which opens no ledger, is set aside and named
    (`d11 check delivery` judges it).

    Exit status: 0 valid, 1 invalid, 2 unknown (nothing to judge) or unreadable
    input; over several parts, the worst part's.
    """
    from checks.transfers import check_ledger

    start = _balances(initial) if initial else None

    def one(events: list[Event]) -> Verdict:
        return check_ledger(
            events, initial=start, realtime=realtime, negative_allowed=allow_negative
        )

    _run(
        "ledger",
        history,
        fmt,
        as_json,
        lambda ev: _ledger_parts(ev, one, part, str(history), as_json),
        max_mb,
        show=_show_parts,
    )


def _ledger_parts(
    events: list[Event],
    check: Callable[[list[Event]], Verdict],
    part: str | None,
    where: str,
    as_json: bool,
) -> Verdict:
    """Check a history's ledger, or each part's of a history of several (printing
    each part's verdict as it comes unless --json); one verdict over them all."""
    from rich.console import Console

    from checks.cli import parts_verdict
    from checks.lin.detect import parts

    split = parts(events)
    if split is None:
        if part is not None:
            raise HistoryError(f"--part {part}: {where} is a history of one part")
        return check(events)
    names = [p.name for p in split]
    if part is not None and part not in names:
        raise HistoryError(f"--part {part}: {where} has parts {', '.join(names)}")
    verdicts: dict[str, Verdict] = {}
    set_aside: dict[str, str] = {}
    for one in split:
        if part is not None and one.name != part:
            continue
        if not any(ev.f == "init" and ev.type == "ok" for ev in one.events):
            fs = sorted({ev.f for ev in one.events if ev.process not in ("nemesis", "trace")})
            set_aside[one.name] = (
                f"it opens no ledger: its operations, {', '.join(fs)}, are judged by "
                "d11 check delivery"
                if fs
                else "it opens no ledger and holds no operation"
            )
            continue
        if not as_json:
            Console().rule(f"part {one.name}", style="dim")
        verdicts[one.name] = v = check(one.events)
        if not as_json:
            render(v)
    words: dict[Validity, str] = {True: "valid", False: "invalid", "unknown": "unknown"}
    return parts_verdict(verdicts, set_aside, where, "ledger", words, "opens a ledger")


def _show_parts(verdict: Verdict) -> None:
    """A verdict over parts: the parts set aside and the one line (each part's
    verdict was printed as it came); a history of one part: the usual tables."""
    if "parts_set_aside" not in verdict.details:
        render(verdict)
        return
    for name, why in verdict.details["parts_set_aside"].items():
        typer.echo(f"part {name}: not checked ({why})")
    typer.echo(verdict.summary)


def txn_cmd(
    history: Path = typer.Argument(..., help=HISTORY_HELP),
    workload: str | None = typer.Option(
        None, help="list-append or rw-register (default: detected)."
    ),
    realtime: bool = typer.Option(True, help="Add real-time order (strict serializability)."),
    plot: Path | None = typer.Option(None, help="Write a PNG of the first cycle here."),
    fmt: str | None = typer.Option(None, "--format", help=FORMAT_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    max_mb: int | None = typer.Option(
        None, "--max-mb", callback=in_range(1, MAX_MB_MAX), help=MAX_MB_HELP, show_default=False
    ),
) -> None:
    """Transactional anomalies (G0 ... G2-item) by dependency-graph cycles.

    Exit status: 0 valid, 1 invalid, 2 unknown (nothing to judge) or unreadable input.
    """
    from checks.txn import check_txn

    if workload not in (None, "list-append", "rw-register"):
        raise typer.BadParameter("--workload must be list-append or rw-register")

    def check(events: list[Event]) -> Verdict:
        v = check_txn(events, workload=workload, realtime=realtime)  # type: ignore[arg-type]
        if plot is not None:
            from checks.plots import plot_txn_cycle

            out = _plot(plot_txn_cycle, v, plot)
            typer.echo(f"plot: {out}" if out else "plot: no cycle to draw", err=True)
        return v

    _run("txn", history, fmt, as_json, check, max_mb)


def delivery_cmd(
    history: Path = typer.Argument(..., help=HISTORY_HELP),
    group: list[str] = typer.Option([], help="A consumer group that must receive (repeatable)."),
    fmt: str | None = typer.Option(None, "--format", help=FORMAT_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    max_mb: int | None = typer.Option(
        None, "--max-mb", callback=in_range(1, MAX_MB_MAX), help=MAX_MB_HELP, show_default=False
    ),
) -> None:
    """Message delivery: none lost, none rolled back delivered, key order, effects once.

    Exit status: 0 valid, 1 invalid, 2 unknown (nothing to judge) or unreadable input.
    """
    from checks.delivery import check_delivery

    _run(
        "delivery",
        history,
        fmt,
        as_json,
        lambda ev: check_delivery(ev, groups=group or None),
        max_mb,
    )
