"""The ledger checker's verdict: its figures, and the sentence a reader sees.

Invalid names the first error and its smallest explanation; unknown says
what is missing (a final read) or too big to tell; valid says how the
indefinite transfers were settled (by lookups, by the final read).
"""

from __future__ import annotations

from typing import Any

from checks.transfers.history import ABSENT, APPLIED, LedgerError, _Setting
from checks.transfers.search import WORK_MAX
from checks.verdict import Verdict, plural

ERRORS_MAX = 50  # errors kept in the verdict (the count is exact)


def _details(
    setting: _Setting,
    errors: list[LedgerError],
    resolution: dict[str, Any],
    unchecked: int,
    realtime: bool,
) -> dict[str, Any]:
    """The verdict's figures (the explanation search's are added by the caller)."""
    transfers = setting.transfers
    settled = [t for t in transfers if t.settled_by_lookup]
    return {
        "accounts": sorted(setting.accounts),
        "initial_total_cents": setting.total_cents,
        "transfers": {
            s: sum(1 for t in transfers if t.status == s)
            for s in ("acknowledged", "failed", "indefinite")
        },
        "lookups": {
            "answers": setting.answers,
            "settled_applied": sum(1 for t in settled if t.found == APPLIED),
            "settled_absent": sum(1 for t in settled if t.found == ABSENT),
        },
        "reads": len(setting.reads),
        "complete_reads": len(setting.full),
        "final_reads": [r.index for r in setting.finals],
        "reads_unchecked": unchecked,
        "realtime": realtime,
        "resolution": resolution,
        "error_count": len(errors),
        "errors_by_kind": _by_kind(errors),
    }


def _verdict(
    setting: _Setting,
    errors: list[LedgerError],
    resolution: dict[str, Any],
    unchecked: int,
    details: dict[str, Any],
) -> Verdict:
    if errors:
        first = errors[0]
        why = f" Smallest explanation: {first.explanations[0]}." if first.explanations else ""
        return Verdict(
            "ledger",
            False,
            f"{plural(len(errors), 'ledger violation')} ({_kinds(errors)}). First, at index "
            f"{first.index}: {first.message}.{why}",
            details,
            [e.to_json() for e in errors[:ERRORS_MAX]],
        )
    if not setting.finals:
        unanswered = setting.finals_unanswered
        advice = (
            f"The final phase's {plural(unanswered, 'read')} of the balances got no "
            "answer before the run ended (a store still overloaded, or down)."
            if unanswered
            else "Add a final read phase to the workload."
        )
        return Verdict(
            "ledger",
            "unknown",
            "No final read of all accounts after the last transfer: whether every "
            f"acknowledged transfer took effect exactly once cannot be told. {advice}",
            details,
        )
    if resolution["status"] == "too-many":
        return Verdict(
            "ledger",
            "unknown",
            f"No violation found, but the final read cannot be resolved: {resolution['message']}.",
            details,
        )
    counts, lookups = details["transfers"], details["lookups"]
    settled = sum(1 for t in setting.transfers if t.settled_by_lookup)
    partial = (
        f" {unchecked} reads had too many transfers in flight to hold to real time "
        f"within the search budget ({WORK_MAX} steps); their totals were checked."
        if unchecked
        else ""
    )
    looked = (
        f" Lookups by id settled {settled} transfers whose attempts ended unknown "
        f"({lookups['settled_applied']} applied, {lookups['settled_absent']} absent and "
        "fenced), and the final balances agree."
        if settled
        else ""
    )
    return Verdict(
        "ledger",
        True,
        f"Every acknowledged transfer took effect exactly once ({counts['acknowledged']} "
        f"acknowledged, {counts['failed']} failed, {counts['indefinite']} indefinite); "
        f"no read saw a transfer half-applied.{looked} {resolution['message']}{partial}",
        details,
    )


def _by_kind(errors: list[LedgerError]) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in errors:
        out[e.kind] = out.get(e.kind, 0) + 1
    return out


def _kinds(errors: list[LedgerError]) -> str:
    return ", ".join(f"{k} x{n}" for k, n in sorted(_by_kind(errors).items()))
