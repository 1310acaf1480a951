"""The checks a live session runs, judged round by round while the run goes on.

`judge_history` runs a stage's checks on a history and sets them against the
chapter's expectations, in the words of a live run (no final reads yet: press
j); `recent_window` and `not_final` shape the history a long or re-opened run
hands them; `LiveWalletLin` is chapter 4's lin check followed wallet by wallet
from round to round instead of searched whole (`LIVE_CHECKS` names it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from checks.history import NOT_OPERATIONS, Event
from tui.model import CheckView

if TYPE_CHECKING:
    from chapters.stage import Check, Deployment, Expectation
    from checks.harness.contract import Judgement
    from checks.lin.incremental import IncrementalLin
    from checks.lin.model import Call
    from checks.verdict import Verdict

__all__ = [
    "JUDGED",
    "LIVE_CHECKS",
    "SAVED",
    "WHOLE_RUN_CHECKS",
    "WINDOW_SAFE_CHECKS",
    "CheckRunner",
    "LiveWalletLin",
    "base_name",
    "is_setup",
    "judge_history",
    "not_final",
    "recent_window",
]

ROUND_S_MAX = 120.0  # wall time one live lin round may search; the next goes on from there
TIMEOUT_S = 300.0  # wall time a saved run's lin may search (as chapter 4's own check)


# Checks that judge a run from its first event (opening balances, every payment
# once, each wallet from its opening state, every payment paid then settled): on a
# window they are not run (a ledger replay of 250,000 events is also too slow live).
WHOLE_RUN_CHECKS = frozenset({"ledger", "lin", "pipeline"})
# Checks whose failure a window cannot cause, so it stays red: they read node state
# (the replicas' books, the broker's log), or hold each payment acknowledged in the
# window against it (a quorum of replicas holds it).
WINDOW_SAFE_CHECKS = frozenset({"double-entry", "broker-audit", "lost-payments"})
ON_WINDOW = "on_window"  # a verdict's details: judged on a window of this many events

CheckRunner = Callable[[str, "Check", list[Event]], "Verdict"]
"""(check name, check, history) -> Verdict: how `judge_history` runs each check."""


def judge_history(
    dep: Deployment,
    history: list[Event],
    scenario: str,
    *,
    window: bool = False,
    run: CheckRunner | None = None,
    judged_before: bool = False,
    at_ms: float | None = None,
    final_reads: bool = False,
    whole: list[Event] | None = None,
    follows: frozenset[str] = frozenset(),
    trimmed: bool = False,
) -> list[CheckView]:
    """Run the stage's checks on `history` and set them against the chapter's expectations.

    `window`: `history` is a recent window of the run (`recent_window`), not all
    of it. A check that needs the whole run (`WHOLE_RUN_CHECKS`) is then not run,
    and any other's failure is shown as unknown: what a window's edge cut off
    (an opening balance, a payment's earlier half) is not a broken claim. A
    verdict on a window may be valid or unknown, never a false failure.
    `run` runs one check (default: call it); the live session passes one that
    keeps checks reading node state off the moving simulation. `judged_before`:
    the run's final reads are taken and traffic went on (j judges again).
    `at_ms`: the run's time when `history` was copied (default: its last event's).
    `final_reads`: j took them (a long run's window may have left them behind).
    `whole`: the whole history, while the session still holds all of it (None
    once it was trimmed); a check named in `follows` judges it even on a window:
    it follows the run round by round (`LiveWalletLin`), so each round costs
    only what is new, and its verdict is the whole run's, valid or not.
    `trimmed`: the session no longer holds the run's start (memory): no whole run.
    """
    from chapters.stage import judge

    run_check: CheckRunner = run or (lambda _name, check, events: check(events))

    if at_ms is None:
        at_ms = history[-1].time_ms if history else 0.0
    # On a window, j's final reads do not make it the whole run: once they are in, the
    # session judges the whole run (`Session.judge_whole`), as w does.
    finals = window and (
        final_reads or any(e.type == "ok" and e.extra.get("final") for e in history)
    )
    verdicts = {}
    followed: dict[str, int] = {}  # check -> events it judged: the whole run, not the window
    for name, check in dep.checks.items():
        if window and name in follows and whole is not None:
            verdict = run_check(name, check, whole)
            summary = f"The whole run, followed round by round (not the window): {verdict.summary}"
            verdicts[name] = replace(verdict, summary=summary)
            followed[name] = len(whole)
            continue
        if window and base_name(name) in WHOLE_RUN_CHECKS:
            verdicts[name] = _unknown_on_window(name, len(history), finals, trimmed=trimmed)
            continue
        verdict = run_check(name, check, history)
        if window and verdict.valid is False and base_name(name) not in WINDOW_SAFE_CHECKS:
            verdict = _unknown_on_window(name, len(history), finals, verdict, trimmed)
        verdicts[name] = verdict
    judged = judge(verdicts, dep.expectations(scenario))
    views = [
        CheckView(
            name=name,
            valid=v.valid,
            summary=v.summary
            if v.details.get(ON_WINDOW) or name in followed
            else _live_summary(v, judged_before),
            outcome=_outcome(judged[name].outcome, v),
            expected=_why(judged[name].expected),
            at_ms=at_ms,
            events=followed.get(name, len(history)),
        )
        for name, v in verdicts.items()
    ]
    return sorted(views, key=lambda c: c.name)


SAVED = "judged when w saved it"
JUDGED = "judged once j's final reads were in"


def saved_views(
    verdicts: dict[str, Verdict],
    judged: dict[str, Judgement],
    at_ms: float,
    events: int,
    how: str = SAVED,
) -> dict[str, CheckView]:
    """The verdicts the whole run was given (`w`'s save, or j's once its final reads
    are in: `Session.judge_whole`), as the panel shows them.

    Past the window the live checks cannot judge a check that needs the whole run
    (unknown: `judge_history`); these judge all of it. Such a verdict stands in
    for a window's unknown, saying what it judged (`how`): the run up to `at_ms`.
    """
    return {
        name: CheckView(
            name=name,
            valid=v.valid,
            summary=f"The whole run to t={at_ms / 1000.0:.1f} s, {how}: " + v.summary,
            outcome=_outcome(judged[name].outcome, v),
            expected=_why(judged[name].expected),
            at_ms=at_ms,
            events=events,
        )
        for name, v in verdicts.items()
    }


def base_name(check: str) -> str:
    """A check's own name: the capstone's `ch4:ledger` is chapter 4's `ledger`."""
    return check.rsplit(":", 1)[-1]


def _unknown_on_window(
    name: str, events: int, finals: bool, seen: Verdict | None = None, trimmed: bool = False
) -> Verdict:
    """Unknown, for a check judged on (or needing more than) a window of `events`;
    `finals`: j took the final reads (in the window, or before it); `trimmed`: the
    session no longer holds the run's start (nothing judges the whole run)."""
    from checks.verdict import Verdict

    if seen is None:
        why = "this check needs the whole run"
    else:
        why = f"what it saw may be the window's edge ({seen.summary.rstrip('.')})"
    if trimmed:
        then = (
            "The run's start was trimmed from memory: no verdict on the whole run "
            "(n starts a fresh run)."
        )
    elif finals:
        then = "Once j's final reads are in, the whole run is judged (w saves it)."
    else:
        then = "Press j: once its final reads are in, the whole run is judged (w saves it)."
    summary = (
        f"Judged on a window (the run's last {events:,} events), not the whole run: {why}. " + then
    )
    details = {**(seen.details if seen is not None else {}), ON_WINDOW: events}
    return Verdict(name, "unknown", summary, details)


def _outcome(outcome: str, verdict: Verdict) -> str:
    """A chapter's claim broken after changes by hand (a live check's `by_hand`) is not
    the chapter's claim: the person changed the rules the claim is for."""
    if outcome == "unexpected-failure" and verdict.details.get("by_hand"):
        return "by-hand"
    return outcome


def _why(expected: Expectation | None) -> str:
    return expected.why if expected is not None else ""


def _live_summary(verdict: Verdict, judged_before: bool = False) -> str:
    """A verdict's summary, in the words of a live run (no final reads yet: press j).

    `judged_before`: the final reads were taken and traffic went on (g after j);
    j takes new final reads (the earlier ones become ordinary reads)."""
    resolution = verdict.details.get("resolution") if isinstance(verdict.details, dict) else None
    no_final = isinstance(resolution, dict) and resolution.get("status") == "no-final-read"
    if no_final and judged_before:
        return (
            "Lost or doubled payments show only in final reads, and traffic went on after "
            "them: judged so far; j takes new final reads and judges the whole run again."
        )
    if no_final:
        return (
            "Lost or doubled payments show only in the final reads: press j to stop "
            "traffic, recover, and read every balance."
        )
    summary = str(verdict.summary)
    if verdict.valid == "unknown" and "final read" in summary.lower():
        again = "traffic went on after the final reads; j judges again"
        return f"{summary} ({again if judged_before else 'j takes the final reads'})"
    return summary


def not_final(history: list[Event], before_ms: float | None = None) -> list[Event]:
    """`history` with its final reads made ordinary reads: traffic went on after them
    (g after j), so the checks judge what is in flight as a prefix, not as lost.

    `before_ms`: only the final reads before then (an earlier j's; the last j's stay final).
    """
    return [
        replace(e, extra={k: v for k, v in e.extra.items() if k != "final"})
        if e.extra.get("final") and (before_ms is None or e.time_ms < before_ms)
        else e
        for e in history
    ]


def is_setup(event: Event) -> bool:
    """An event that sets the run up (a part's opening balances, f="init"): every
    window keeps them all, whichever part wrote them and wherever they fell."""
    return event.process == "setup" or event.f == "init"


def recent_window(history: list[Event], events_max: int) -> list[Event]:
    """The last `events_max` events as a well-formed history, re-indexed.

    Completions whose invoke fell before the cut are dropped (an operation is
    whole or absent); events that are no operation (faults, spans) are kept,
    and every setup event (`is_setup`: each part's opening balances, the
    capstone has one per part) from before the cut too.
    """
    if len(history) <= events_max:
        return history
    cut = len(history) - events_max
    kept: list[Event] = [e for e in history[:cut] if is_setup(e)]
    opened: set[int | str] = set()
    for ev in history[cut:]:
        if ev.process in NOT_OPERATIONS or is_setup(ev):  # faults, spans: pair with nothing
            kept.append(ev)
        elif ev.type == "invoke":
            opened.add(ev.process)
            kept.append(ev)
        elif ev.process in opened:
            opened.discard(ev.process)
            kept.append(ev)
    return [replace(e, index=i) for i, e in enumerate(kept)]


# --8<-- [start:live-lin]
class LiveWalletLin:
    """Chapter 4's `lin` check for the live view: judged round by round, never again whole.

    The same verdict as `chapters.ch4_paxos.wallets.check_wallets_linearizable`
    (each wallet's projection against the ledger model), but each round
    follows every wallet from where the last round left it
    (`checks.lin.incremental.IncrementalLin`): a round costs the projection
    and the events new since the last one, not a search of the whole run.
    Whole, a minute of the spike with a city cut was undecided after 300 s
    (a dozen payments in doubt from the cut to the final lookups keep a
    wallet from ever being quiet); followed, it is decided in seconds.
    """

    def __init__(self, initial: dict[str, int], round_s: float = ROUND_S_MAX) -> None:
        from checks.lin.incremental import IncrementalLin
        from checks.lin.models.accounts import LedgerModel

        wallets = {str(a): c for a, c in initial.items() if str(a).startswith("u")}
        self.model = LedgerModel(wallets)
        self.live = IncrementalLin(self.model, _withdrawal)
        self.round_s = round_s
        self._lock = threading.Lock()  # a save and a check round may judge at once

    def __call__(self, history: list[Event]) -> Verdict:
        """This round: the history up to its first operation still in flight."""
        from checks.lin.incremental import safe_horizon

        with self._lock:
            horizon = safe_horizon(history, holds=lambda ev: ev.f == "read")
            return self._judge(self.live, history, horizon, self.round_s)

    def whole(self, history: list[Event]) -> Verdict:
        """The whole of `history`, in flight included, afresh (what a save records)."""
        from checks.lin.incremental import IncrementalLin

        end = history[-1].index + 1 if history else 0
        return self._judge(IncrementalLin(self.model, _withdrawal), history, end, TIMEOUT_S)

    def _judge(
        self, live: IncrementalLin, history: list[Event], horizon: int, round_s: float
    ) -> Verdict:
        from chapters.ch4_paxos.wallets import wallet_operations
        from checks.lin.checker import prepare
        from checks.verdict import NO_CLIENT_OPERATIONS, Verdict

        ops = wallet_operations(history)
        if not ops:
            return Verdict("lin", "unknown", NO_CLIENT_OPERATIONS)
        calls, _ = prepare(ops, self.model)
        got = live.check(calls, horizon, round_s)
        details: dict[str, Any] = {
            "model": "ledger", "wallets": got.parts, "operations": len(ops),
            "judged_to_event": got.horizon, "events_new": got.events_new,
            "elapsed_s": round(got.elapsed_s, 3),
        }  # fmt: skip
        if got.parts == 0:  # nothing judged yet: as every checker says of no operations
            return Verdict("lin", "unknown", NO_CLIENT_OPERATIONS, details)
        if got.valid is True:
            return Verdict(
                "lin", True,
                f"Every wallet's history is linearizable ({got.parts} wallets, "
                f"{len(ops)} operations, to event {got.horizon:,}): each read saw every "
                "payment acknowledged before it.",
                details,
            )  # fmt: skip
        if got.valid == "unknown":
            return Verdict("lin", "unknown", f"Undecided: {got.reason}.", details)
        wallet = str(got.failing[0] if isinstance(got.failing, tuple) else got.failing)
        witness = [
            {"what": self.model.describe_call(c), "invoke": c.call, "return": c.ret}
            for c in calls
            if _touches(c, wallet)
        ][:40]
        return Verdict(
            "lin", False,
            f"The history of wallet {wallet} is not linearizable: no order of its "
            "payments and reads explains what the reads saw.",
            details, witness,
        )  # fmt: skip


def _touches(call: Call, wallet: str) -> bool:
    """A payment from `wallet`, or a read that saw it."""
    if call.input[0] == "transfer":
        return bool(call.input[1] == wallet)
    return isinstance(call.output, tuple) and any(a == wallet for a, _ in call.output)


def _withdrawal(inp: tuple[Any, ...]) -> tuple[str, str, int] | None:
    """A ledger call that only moves money: (from, to, cents)."""
    return (inp[1], inp[2], inp[3]) if inp[0] == "transfer" else None


# Checks judged round by round in the live view, by chapter: check name -> factory.
LIVE_CHECKS: dict[str, dict[str, Callable[[Any], Check]]] = {
    "ch4": {"lin": lambda dep: LiveWalletLin(dict(dep.initial))},
}
# --8<-- [end:live-lin]
