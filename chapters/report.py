"""The report `d11 run` prints: what was offered, what was served, what broke.

Every simulated rate is shown with the real rate it stands for at the run's
scale, so a reader never confuses 1,200 simulated payments a second with the
544,000 of Double 11 2019 that they replay.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any, TypedDict

from rich.cells import cell_len
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from reference.cli_options import d11_command
from reference.traffic.plan import describe_rate, format_scale

__all__ = ["Summary", "render"]

# A run's summary as `d11 run --json` prints it: JSON-shaped, a key per figure.
Summary = dict[str, Any]

ROWS_MAX = 16  # rows of the over-time table
BAR_WIDTH = 24
NEVER_PAUSED = "never paused"  # a consumer group's cell for figures counted from its resume
_OUTCOME_STYLE = {
    "pass": ("PASS", "bold green"),
    "expected-failure": ("EXPECTED FAILURE", "bold yellow"),
    "unexpected-failure": ("UNEXPECTED FAILURE", "bold red"),
    "unexpected-pass": ("UNEXPECTED PASS", "bold red"),
    "unknown": ("UNKNOWN", "bold blue"),
}


def _bar(value: float, top: float, style: str) -> Text:
    filled = 0 if top <= 0 else round(BAR_WIDTH * min(1.0, value / top))
    return Text("█" * filled + "·" * (BAR_WIDTH - filled), style=style)


def _rate(tps: float, scale: float) -> str:
    return describe_rate(tps, scale, "payments/s") if tps > 0 else "0 payments/s"


def _headline(s: Summary) -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    scale = s["scale"]
    t.add_row("offered", _rate(s["offered_tps"], scale) + "  (mean over the traffic window)")
    t.add_row("peak", _rate(s["peak_offered_tps"], scale) + "  (the busiest 250 ms)")
    t.add_row("goodput", _rate(s["goodput_tps"], scale) + "  (ok within the deadline)")
    if "capacity_tps" in s:
        t.add_row("capacity", _rate(s["capacity_tps"], scale) + "  (from the service-time model)")
    if "payment_p99_ms" in s:  # per payment first: what a user waited
        t.add_row(
            "latency",
            _percentiles(s["payment_p50_ms"], s["payment_p99_ms"], s["payment_p999_ms"])
            + "   per payment, first attempt to acknowledgement"
            + f" ({s['ok']:,} acknowledged in time)",
        )
    t.add_row(
        "attempts",
        _percentiles(s["p50_ms"], s["p99_ms"], s["p999_ms"])
        + f"   per reply, late ones too (deadline {s['deadline_ms']:,.0f} ms)",
    )
    if s["p99_ms"] > s["deadline_ms"]:
        late = "replies p99 exceeds the deadline: most users gave up first"
        t.add_row("", Text(late, style="red"))
    t.add_row("errors", _errors_line(s))
    if s.get("failover_ms") is not None:
        t.add_row(
            "failover",
            f"{s['failover_ms']:,.0f} ms from the crash to the new routing rules "
            f"(detection alone: {s['suspect_after_ms']:,.0f} ms)",
        )
    t.add_row("scale", _scale_words(scale))
    return t


def _scale_words(scale: float) -> str:
    """The scale in the one form a reader meets everywhere (the rates' 'at scale
    1/453'): never a decimal (0.00221), a multiplier (x 453) or a percent."""
    return f"{format_scale(scale)}: one simulated payment per {1 / scale:,.0f} real"


def _percentiles(p50_ms: float, p99_ms: float, p999_ms: float) -> str:
    return f"p50 {p50_ms:,.1f} ms   p99 {p99_ms:,.1f} ms   p999 {p999_ms:,.1f} ms"


DECLINED = "declined"  # the clients' error for a refusal (reference/clients/node.py)
# A refusal at the door: the request was refused before anything ran, and its
# user told so at once (a fail, not a timeout). The guard's reasons
# (reference/degrade/guard.py `Blocked`: a flow rule, a hot-parameter limit, an
# open breaker, the adaptive or system limit), a gateway's (`GatewayRejected`)
# and a store's (`StoreRejected`), as the clients record them.
REFUSED_PREFIXES = ("flow:", "param:", "breaker:", "system:")
REFUSED_KINDS = frozenset(
    {"adaptive", "overloaded", "no-route", "misrouted", "handover", "expired", "not-primary"}
)


def refused(kind: str) -> bool:
    """Is this error kind a refusal at the door (an answer), not a missing one?"""
    return kind in REFUSED_KINDS or kind.startswith(REFUSED_PREFIXES)


def _errors_line(s: Summary) -> str:
    """What "errors" counts: payments whose user saw no acknowledgement, and their fate.

    A declined payment is not one of them: its user got an answer, no, because the
    buyer's balance was too small (chapter 5's small wallets decline by design); nor
    is a payment refused at the door (a flow rule, a gateway in a handover): its
    user was told at once that nothing was done. Each is counted on its own, in
    words that say so."""
    payments = s["payments"]
    if not s["errors"]:
        return f"none of {payments:,} payments"
    errors: dict[str, int] = s["errors"]
    declined = errors.get(DECLINED, 0)
    refusals = {kind: n for kind, n in errors.items() if refused(kind)}
    others = {k: n for k, n in errors.items() if k != DECLINED and k not in refusals}
    if others:
        # error_rate counts declines and refusals too: the share of the failed that were neither.
        rate = s["error_rate"] * sum(others.values()) / sum(errors.values())
        kinds = ", ".join(f"{kind} {count:,}" for kind, count in others.items())
        line = f"{rate:.1%} of {payments:,} payments got no acknowledgement in time ({kinds})"
    else:
        line = f"none of {payments:,} payments went unanswered"
    if refusals:
        n = sum(refusals.values())
        kinds = ", ".join(f"{kind} {count:,}" for kind, count in refusals.items())
        line += (
            f"; {n:,} refused at the door ({n / payments:.1%}: {kinds}): answered at once, "
            "nothing done"
        )
    if declined:
        line += (
            f"; {declined:,} declined ({declined / payments:.1%}): answered no, the buyer's "
            "balance too small"
        )
    settled = s.get("settled") or {}
    if s.get("timeouts") and "not_asked" in settled:
        return line + _timeouts_by_asker(s["timeouts"], s["settled"])
    found = s.get("final_read_resolution")
    if (
        s.get("timeouts")
        and settled.get("asked") == 0
        and found
        and found["applied"] + found["not_applied"] == s["timeouts"]
    ):  # nothing asked about them; the final read tells their fate (chapter 5)
        return line + (
            f"; {s['timeouts']:,} timeouts (no answer by the deadline), not asked again; the "
            f"final read finds {found['applied']:,} applied, {found['not_applied']:,} not"
        )
    if s.get("timeouts") and settled.get("asked") == 0:  # nothing settled them
        line += (
            f"; {s['timeouts']:,} timeouts (no answer by the deadline): not asked again (the "
            "final phase retries none), so unknown to their users"
        )
        why = s.get("final_read_unresolved")  # (no pointer to `d11 check ledger`: it
        # resolves them from the same final read, and a --no-store run has no folder)
        return line + (f", and the final read cannot tell their fate: {why}" if why else "")
    if s.get("timeouts") and settled.get("applied", 0) + settled.get("not_applied", 0) == 0:
        # The final phase asked and got no answer either (an overloaded store): it
        # settled nothing (chapter 6's spike without controls).
        asked = settled.get("asked", s["timeouts"])
        line += (
            f"; {s['timeouts']:,} timeouts (no answer by the deadline): the final phase "
            f"asked {asked:,} of them again and got no answer, so "
            f"{settled.get('unknown', s['timeouts']):,} stay unknown"
        )
    elif s.get("timeouts"):
        line += (
            f"; the final phase settled the {s['timeouts']:,} timeouts: "
            f"{settled.get('applied', 0):,} applied, {settled.get('not_applied', 0):,} not"
        )
        if settled.get("unknown"):
            line += f", {settled['unknown']:,} still unknown"
    return line


class SystemTimeouts(TypedDict):
    """One system's timeouts in a night: whether its final phase asked again about
    them (`lookups`: by lookup by id too, not only by retry), what it found, and
    the system's payments acknowledged in time (`ok`), to which those found
    applied add, late: a ledger check counts both as acknowledged."""

    chapter: str
    timeouts: int
    ok: int
    asked: bool
    lookups: bool
    applied: int
    not_applied: int
    unknown: int


class TimeoutFates(TypedDict):
    """A night's timeouts by who asked about them again: the fates the final phase
    found for those asked (`applied`, `not_applied`, `unknown`), and how many were
    not asked, by which systems (their clients do not ask again); each system's
    own in `systems`."""

    applied: int
    not_applied: int
    unknown: int
    asked_by: list[str]
    not_asked: int
    not_asked_by: list[str]
    systems: list[SystemTimeouts]


def _timeouts_by_asker(timeouts: int, settled: TimeoutFates) -> str:
    """The capstone's timeouts, system by system: what each one's final phase found
    when it asked again, so that its ok count plus those found applied is the
    acknowledged count its ledger check gives."""
    line = f"; {timeouts:,} timeouts (no answer by the deadline)"
    asked = [t for t in settled["systems"] if t["asked"]]
    if asked:
        line += ", asked again by the final phase: " + "; ".join(map(_asked_again, asked))
    for t in settled["systems"]:
        if not t["asked"]:
            line += (
                f"; {t['chapter']}'s {t['timeouts']:,} stay unknown to their users "
                "(those clients do not ask again)"
            )
    return line


def _asked_again(t: SystemTimeouts) -> str:
    how = "retry, then lookup by id" if t["lookups"] else "retry by id"
    line = (
        f"{t['chapter']}'s {t['timeouts']:,} ({how}): {t['applied']:,} applied, "
        f"{t['not_applied']:,} not"
    )
    if t["unknown"]:
        line += f", {t['unknown']:,} still unknown"
    if t["applied"]:
        line += (
            f", so {t['ok'] + t['applied']:,} payments acknowledged in all ({t['ok']:,} in time, "
            f"{t['applied']:,} late)"
        )
    return line


def _over_time(s: Summary) -> Table:
    series = s["series"]
    n = len(series["t_ms"])
    group = max(1, -(-n // ROWS_MAX))
    t = Table(title="over time (simulated)", show_edge=False, pad_edge=False)
    for col in ("t (s)", "offered/s", "goodput/s", "errors/s", "p99 ms", "goodput"):
        t.add_column(col, justify="right" if col != "goodput" else "left")
    t.caption = f"simulated payments/s, at scale {_scale_words(s['scale'])}"
    top = max(series["offered_tps"] + series["goodput_tps"] + [1.0])
    for i in range(0, n, group):
        sl = slice(i, i + group)
        offered = sum(series["offered_tps"][sl]) / group
        good = sum(series["goodput_tps"][sl]) / group
        bad = sum(series["error_tps"][sl]) / group
        p99 = max(series["p99_ms"][sl])
        if not (offered or good or bad):
            continue
        p99_text = Text(f"{p99:,.0f}", style="red" if p99 > s["deadline_ms"] else "")
        t.add_row(
            f"{series['t_ms'][i] / 1000:.2f}", f"{offered:,.0f}", f"{good:,.0f}", f"{bad:,.0f}",
            p99_text, _bar(good, top, "green"),
        )  # fmt: skip
    return t


def _errors(s: Summary) -> Table:
    t = Table(title="errors by kind", show_edge=False)
    t.add_column("kind")
    t.add_column("count", justify="right")
    for kind, count in s["errors"].items():
        t.add_row(kind, f"{count:,}")
    if not s["errors"]:
        t.add_row("none", "0")
    return t


def _load(s: Summary) -> Table:
    load = s["load"]
    per = load.get("txns_by_cell") or load.get("txns_by_store") or {}
    if "txns_by_cell" in load:
        what, served = "cell", "transactions served"
    else:  # a stage's own kind of node, and what it counts (chapter 5's)
        what, served = load.get("what", ("store", "transactions served"))
    t = Table(title=f"load per {what} ({served})", show_edge=False)
    t.add_column(what)
    t.add_column("txns", justify="right")
    t.add_column("")
    top = max([*per.values(), 1])
    for name, count in per.items():
        t.add_row(name, f"{count:,}", _bar(count, top, "cyan"))
    notes = []
    if "hottest_over_mean" in load:
        notes.append(f"hottest / mean = {load['hottest_over_mean']:.2f}")
    if load.get("forwarded"):
        notes.append(f"{load['forwarded']:,} requests forwarded to the right cell")
    if notes:
        t.caption = "; ".join(notes)
    return t


def _lag(s: Summary) -> Table:
    """Chapter 5's consumer-lag drill: each group's backlog and committed lag, a
    column per group (the stalled one in bold)."""
    lag = s["lag"]
    stall = lag["stall"]
    groups = lag["groups"]
    t = Table(
        title=f"consumer lag: {stall['group']} stalled from {stall['paused_at_ms']:,.0f} to "
        f"{stall['resumed_at_ms']:,.0f} ms ({', '.join(stall['members'])} paused)",
        show_edge=False,
    )
    t.add_column("messages, ms")
    for group in groups:
        t.add_column(Text(group, style="bold" if group == stall["group"] else ""), justify="right")

    def peak(g: dict[str, object], key: str) -> str:
        value, at_ms = g.get(key), g.get(f"{key}_at_ms")
        return (
            "-" if value is None else f"{value:,}" + ("" if at_ms is None else f" ({at_ms:,.0f})")
        )

    def after(g: dict[str, object], key: str) -> str:
        if key not in g:
            return "-"
        value = g[key]
        return "never" if value is None else f"{value:,.0f}"

    # The resume is the stalled group's: a group that kept consuming has none, and
    # its figures at and after another group's resume would read as a drain.
    # (label, the cell, whether it counts from the resume)
    rows: tuple[tuple[str, Callable[[dict[str, object]], str], bool], ...] = (
        ("backlog peak (at)", lambda g: peak(g, "backlog_peak"), False),
        ("backlog at the resume", lambda g: f"{g['backlog_at_resume']:,}", True),
        ("caught up after resume", lambda g: after(g, "caught_up_after_resume_ms"), True),
        ("committed peak (at)", lambda g: peak(g, "committed_lag_peak"), False),
        (
            "committed 0 after resume",
            lambda g: after(g, "committed_lag_zero_after_resume_ms"),
            True,
        ),
    )
    for label, cell, from_resume in rows:
        t.add_row(
            label,
            *(
                NEVER_PAUSED if from_resume and name != stall["group"] else cell(g)
                for name, g in groups.items()
            ),
        )
    t.caption = (
        "backlog: messages visible to the group and not consumed yet (message trace); "
        "committed: what the broker's state says the group owes (offsets committed every "
        f"5 s), read at each of its {lag['committed_lag_samples']:,} applies; after resume: "
        f"until first zero, for the paused group only ({NEVER_PAUSED}: the others kept "
        "consuming)"
    )
    return t


def _checks(s: Summary) -> Table:
    t = Table(title="checkers", show_edge=False, expand=True)
    t.add_column("check")
    t.add_column("verdict")
    t.add_column("what it says", ratio=1)
    for name, v in s.get("checks", {}).items():
        label, style = _OUTCOME_STYLE.get(v.get("outcome", ""), (str(v["valid"]), ""))
        said = Text(v["summary"])
        expected = v.get("expected")
        if v.get("outcome") == "expected-failure" and expected:
            said.append(f"\nExpected: {expected['why']}", style="yellow")
        elif v.get("outcome") in ("unexpected-failure", "unexpected-pass") and expected:
            said.append(f"\nThe chapter expects: {expected['why']}", style="red")
        elif v.get("outcome") == "unknown" and expected and expected["valid"] == "unknown":
            label, style = "EXPECTED UNKNOWN", "bold yellow"
            said.append(f"\nExpected: {expected['why']}", style="yellow")
        elif v.get("outcome") == "unknown":
            # Not a violation (the exit status stays 0), nor what the chapter says here.
            holds = "holds" if not expected or expected["valid"] is True else "fails"
            said.append(f"\nUnexpected: the chapter says this check {holds} here.", style="blue")
        t.add_row(name, Text(label, style=style), said)
    return t


def _timeline(s: Summary) -> Table:
    t = Table(title="what happened", show_edge=False)
    t.add_column("t (ms)", justify="right")
    t.add_column("event")
    t.add_column("detail")
    for time_ms, kind, detail in s["timeline"]:
        t.add_row(f"{time_ms:,.0f}", kind, detail)
    return t


def _message_trace(s: Summary) -> Table:
    """One message's life, step by step (chapter 5's message trace)."""
    trace = s["message_trace"]
    t = Table(
        title=f"one message's life: {trace['id']} (of {trace['traced_messages']:,} traced)",
        show_edge=False,
    )
    t.add_column("t (ms)", justify="right")
    t.add_column("node")
    t.add_column("step")
    t.add_column("detail")
    for time_ms, node, step, detail in trace["steps"]:
        t.add_row(f"{time_ms:,.0f}", node, step, detail)
    return t


def _night(s: Summary) -> Group:
    """The capstone's parts, one row each, and what the night did to them."""
    t = Table(title="the night, system by system (one simulator, one clock)", show_edge=False)
    for name, justify in (("system", "left"), ("chapter", "left"), ("payments", "right"),
                          ("ok", "right"), ("peak offered/s", "right"),
                          ("p99 ms", "right"), ("timeouts", "right")):  # fmt: skip
        t.add_column(name, justify=justify)  # type: ignore[arg-type]
    for name, p in s["parts"].items():
        t.add_row(name, p["chapter"], f"{p['payments']:,}", f"{p['ok']:,}",
                  f"{p['peak_offered_tps']:,.0f}", f"{p['payment_p99_ms']:,.0f}",
                  f"{p['timeouts']:,}")  # fmt: skip
    t.caption = (
        "payments: production payments offered in the system's own traffic window; "
        "ok: acknowledged paid within the deadline (the headline's 'acknowledged in "
        "time' is their sum); timeouts: no answer by the deadline (the headline says "
        "what the final phase found when it asked again); the rest were "
        "answered unpaid: refused at the door, declined, or failed (the headline's "
        "errors say which). Load-test payments are counted on their own lines."
    )
    lines = []
    lost = s.get("city_lost")
    if lost:
        back = lost["cells_recovered_after_ms"]
        again = "not during the traffic" if back is None else f"{back:,.0f} ms after"
        gzone = " (the GZone's)" if lost["gzone_lost"] else ""
        when_ms = lost["after_midnight_ms"]
        lines.append(
            f"city lost: {lost['city']}{gzone}, {when_ms:,.0f} ms after midnight; "
            f"its uid range paid again {again}"
        )
        if lost.get("rerouted_after_ms") is not None:
            lines.append(
                f"  failover: detected {lost['detected_after_ms']:,.0f} ms after the loss, "
                f"every gateway rerouted {lost['routing_ms']:,.0f} ms after that"
            )
    pipe = s.get("pipeline")
    if pipe:
        # Distinct messages, each by its first outcome recorded; by check-back: those
        # the broker resolved by asking (their producer's word never took there).
        lines.append(
            f"pipeline: {pipe['payments']:,} cells payments through the queue; "
            f"{pipe['committed']:,} committed ({pipe['committed_by_check']:,} of them resolved "
            f"at the broker by its check-back), {pipe['rolled_back']:,} rolled back, "
            f"{pipe['settled']:,} settled"
        )
        shadow = pipe.get("load_test")
        if shadow:
            found = shadow.get("violations")
            leaks = "not yet judged" if found is None else f"{sum(found.values()):,}"
            # The clients' tagged payments (isolation's count) against those whose event
            # reached a verdict in the queue: refused, declined or unanswered ones never do.
            attempted = shadow.get("load_test_payments")
            through = (
                f"{attempted:,} tagged payments, {shadow['payments']:,} of them through the queue: "
                if attempted is not None and attempted != shadow["payments"]
                else f"{shadow['payments']:,} tagged payments, "
            )
            lines.append(
                f"  load test through it: {through}"
                f"{shadow['committed']:,} committed and {shadow['settled']:,} settled in "
                f"shadow accounts; {shadow.get('tagged_spans', 0):,} tagged spans, "
                f"isolation violations: {leaks}"
            )
    lag = s.get("consumer_lag")
    if lag:
        stalled_ms = lag["resumed_at_ms"] - lag["paused_at_ms"]
        drained = lag["drained_after_ms"]
        lines.append(
            f"consumer lag: {lag['group']} stalled {stalled_ms:,.0f} ms, backlog up to "
            f"{lag['max_lag']:,} messages, "
            + ("never drained" if drained is None else f"drained {drained:,.0f} ms after resuming")
        )
    elastic = s.get("elastic")
    if elastic:
        steps = ", ".join(
            f"to {m['to']} in "
            + ("never" if m["handover_ms"] is None else f"{m['handover_ms']:,.0f} ms")
            for m in elastic["moves"]
        )
        lines.append(f"elastic cell: {elastic['cell']} borrowed a uid range; handed over {steps}")
    load = s.get("load_test")
    if load:
        found = load["violations"]
        leaks = "not yet judged" if found is None else sum(found.values())
        lines.append(
            f"load test on chapter 7's own system: {load['load_test_payments']:,} tagged "
            "payments over "
            f"{load['tagged_spans']:,} tagged spans; isolation violations: {leaks}"
        )
    return Group(t, *(Text(line) for line in lines))


def render(summary: Summary, console: Console, folder: str | None = None) -> None:
    s = summary
    head = f"{s['chapter']} · {s['title']}"
    rest = f"scenario {s['scenario']} · variant {s['variant']} · seed {s['seed']}"
    size = []
    if s["shards"] > 1 or s["chapter"] == "ch2":
        size.append(f"{s['shards']} shards")
    if s["cells"]:
        size.append(f"{s['cells']} cells")
    if size:
        rest += " · " + ", ".join(size)
    title = f"{head} · {rest}"
    if cell_len(title) + 6 <= console.width:  # the corners, dashes and spaces around it
        console.print(Panel(_headline(s), title=title, title_align="left"))
    else:  # a narrow terminal would cut the title: the run's settings go to the bottom edge
        console.print(
            Panel(
                _headline(s), title=head, subtitle=rest, title_align="left", subtitle_align="left"
            )
        )
    if "parts" in s:  # the capstone: several systems, each at its own scale
        console.print(_night(s))
    console.print(_over_time(s))
    console.print(Group(_errors(s), _load(s)))
    console.print(_timeline(s))
    if "lag" in s:
        console.print(_lag(s))
    if "message_trace" in s:
        console.print(_message_trace(s))
    console.print(_checks(s))
    if folder:
        console.print(f"history, verdicts and plots: {folder}")
        # Whole lines, never wrapped: they are commands to copy.
        # `d11` as it can be typed here: a bare d11 only when it is on PATH.
        d11, where = d11_command(), shlex.quote(str(folder))
        console.print(f"replay: {d11} replay {where}", soft_wrap=True, markup=False)
        console.print(f"watch: {d11} tui --attach {where}", soft_wrap=True, markup=False)
