"""The checkers a chapter-5 run is judged by, wired to its deployment.

Money (`bank`), delivery per consumer group, the half messages, settlement
against the escrow accounts, and the broker leader's own audit of its state.
With a load test (chapter 7) the production checkers read the history
without its spans; `isolation` reads those.
"""

from __future__ import annotations

from collections.abc import Callable

from chapters.ch5_mq.deployment import MqDeployment
from chapters.ch5_mq.plan import PAY, SPAN_PROCESS
from checks.history import Event
from checks.verdict import Verdict


def without_spans(check: Callable[[list[Event]], Verdict], history: list[Event]) -> Verdict:
    """`check` on the history production's checkers read: no spans."""
    return check(_spanless(history))


# The last history asked for, its length then, and it without spans. A part's
# checkers judge the same history one after the other, four of them without
# its spans: filtered once, not four times (a 60 s rehearsal level: 1.4 million
# events each time), and the same list each time, which `paired_once` knows at
# a glance. A history grows, never changes: same list, same length, same events.
# (It holds one history alive until the next is asked for; the checkers only read.)
_last_spanless: tuple[list[Event], int, list[Event]] | None = None


def _spanless(history: list[Event]) -> list[Event]:
    global _last_spanless
    last = _last_spanless
    if last is not None and last[0] is history and last[1] == len(history):
        return last[2]
    out = [e for e in history if e.process != SPAN_PROCESS]
    _last_spanless = (history, len(history), out)
    return out


def add_checks(dep: MqDeployment) -> None:
    from checks.bank import check_bank
    from checks.delivery import check_delivery
    from checks.halves import check_half_messages
    from checks.settlement import check_settlement

    total = sum(dep.initial.values())
    accounts = sorted(dep.initial)
    escrows = sorted(a for a in accounts if a.endswith(f"@{PAY}"))
    dep.checks["bank"] = lambda h: check_bank(h, total=total, accounts=accounts)
    groups = [g for g, _ in dep.lanes()]
    dep.checks["delivery"] = lambda h: check_delivery(h, groups=groups)
    if dep.options.variant != "naive-after":
        # naive-after publishes plain messages only: with no half message to
        # hold, the check could only say "nothing to judge" (unknown), and a
        # run of the variant would end "could not tell" (exit 2).
        dep.checks["half-messages"] = check_half_messages
    dep.checks["settlement"] = lambda h: check_settlement(h, escrow_accounts=escrows)
    dep.checks["broker-audit"] = lambda h: _broker_audit(dep)


def _broker_audit(dep: MqDeployment) -> Verdict:
    """The broker leader's own invariants (its state, not the history)."""
    state = dep.broker_state()
    if state is None:
        return Verdict("broker-audit", "unknown", "No broker leader at the end of the run.", {})
    problems = state.audit()
    details = {"log_records": len(state.log), "problems": len(problems)}
    if not problems:
        return Verdict(
            "broker-audit",
            True,
            "Every message is in its topic at most once, and only if committed.",
            details,
        )
    return Verdict(
        "broker-audit",
        False,
        f"{len(problems)} broken broker invariants. First: {problems[0]}.",
        details,
        [{"kind": "broker-invariant", "words": p} for p in problems[:20]],
    )
