"""`check_ledger` as named steps over the whole history.

Read the history; let the final read resolve the indefinite transfers
(which shrinks every other read's search); check each read's balances;
hold every full read to real time on the work budget; explain the wrong
ones on their own budget, cheap searches first; give the verdict. The
rules are in the package docstring (`checks.transfers`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from checks.history import Event, pair_operations
from checks.transfers.history import (
    MODELLED,
    NO_LEDGER_MONEY,
    LedgerError,
    Read,
    _initial,
    _lookups,
    _Setting,
    _setting,
    _transfers,
    unmodelled,
)
from checks.transfers.reads import (
    _check_balances,
    _explain_read,
    _hold_read,
    _read_error,
    _ReadCheck,
    _total_error,
)
from checks.transfers.search import (
    EXPLAIN_STEPS,
    EXPLAIN_TIME_MS,
    FAULTS_MAX,
    STATES_MAX,
    WORK_MAX,
    Budget,
)
from checks.transfers.verdict import _details, _verdict
from checks.verdict import Verdict


def check_ledger(
    events: Sequence[Event],
    *,
    initial: Mapping[Any, int] | None = None,
    realtime: bool = True,
    negative_allowed: bool = False,
    faults_max: int = FAULTS_MAX,
    explain_steps: int = EXPLAIN_STEPS,
    explain_time_ms: float | None = EXPLAIN_TIME_MS,
) -> Verdict:
    """Hold transfers against reads; see the module docstring for the rules.

    `faults_max`, `explain_steps` and `explain_time_ms` bound only the search
    for explanations (which faults would produce a wrong read), never the
    verdict: with `explain_steps=0` errors are found just the same, unexplained.
    """
    assert faults_max >= 0 and explain_steps >= 0, (faults_max, explain_steps)
    ops = pair_operations(list(events))
    others = unmodelled(ops)
    if others:
        kinds = ", ".join(f"{f} x{n}" for f, n in others.items())
        return Verdict(
            "ledger",
            "unknown",
            f"The history has operations this checker does not model ({kinds}): they may "
            "have moved money it cannot account for, so it cannot judge the balances.",
            {
                "unmodelled": others,
                "modelled": sorted(MODELLED),
                "no_money": sorted(NO_LEDGER_MONEY),
            },
        )
    errors: list[LedgerError] = []
    by_id = _transfers(ops, errors)
    answers = _lookups(ops, by_id, errors)
    transfers = sorted(by_id.values(), key=lambda t: t.invoke_index)
    init = _initial(ops, initial)
    if init is None:
        return Verdict(
            "ledger",
            "unknown",
            "No initial balances: record an ok f='init' operation or pass `initial`.",
            {"transfers": len(transfers)},
        )
    setting = _setting(ops, init, transfers, answers)
    resolution, never, checked = _resolve_final_read(setting)
    for r in setting.reads:
        _check_balances(r, setting.total_cents, negative_allowed, errors)
    wrong, unchecked = _hold_reads(setting, checked, never, realtime, errors)
    explain_budget = Budget(explain_steps, explain_time_ms)
    _explain_wrong_reads(wrong, setting, explain_budget, faults_max, errors)
    details = _details(setting, errors, resolution, unchecked, realtime)
    details["explain"] = {
        "steps": explain_budget.steps_spent,
        "steps_max": explain_steps,
        "time_ms_max": explain_time_ms,
        "faults_max": faults_max,
        "cut_short": explain_budget.cut,
    }
    return _verdict(setting, errors, resolution, unchecked, details)


def _resolve_final_read(
    setting: _Setting,
) -> tuple[dict[str, Any], frozenset[str], dict[int, _ReadCheck]]:
    """The final read first: transfers it shows never took effect were never
    visible to any read, which shrinks every other read's search.

    (what became of the indefinite transfers, those that never took effect,
    {read index: its check}).
    """
    if not setting.finals:
        return {"status": "no-final-read"}, frozenset(), {}
    last = setting.finals[-1]
    result = _hold_read(setting.start, last, setting.transfers)
    checked = {last.index: result}
    if result.ok is None:
        too_many = {
            "status": "too-many",
            "message": f"{len(result.candidates)} indefinite transfers: too many "
            f"subsets to enumerate (more than {STATES_MAX} distinct balance "
            "vectors); which were applied cannot be told",
        }
        return too_many, frozenset(), checked
    if not result.ok:
        return {"status": "unresolvable", "index": last.index}, frozenset(), checked
    resolution = _resolution(result)
    return resolution, frozenset(resolution.get("not_applied", ())), checked


_Wrong = tuple[int, Read, _ReadCheck, bool]  # (its place in errors, the read, its check, final?)


def _hold_reads(
    setting: _Setting,
    checked: dict[int, _ReadCheck],
    never: frozenset[str],
    realtime: bool,
    errors: list[LedgerError],
) -> tuple[list[_Wrong], int]:
    """Hold each full read to real time (or only the final ones), on the work
    budget; a wrong read's error is recorded unexplained, to be explained later.
    Returns (the wrong reads, how many reads the budget left unchecked)."""
    final_indices = {r.index for r in setting.finals}
    budget = Budget(WORK_MAX)
    wrong: list[_Wrong] = []
    unchecked = 0
    total = setting.total_cents
    for r in setting.full:
        is_final = r.index in final_indices
        result = checked.get(r.index)
        if result is None and (realtime or is_final):
            result = _hold_read(setting.start, r, setting.transfers, never=never, budget=budget)
        if result is not None and result.ok is False:
            wrong.append((len(errors), r, result, is_final))
            errors.append(_read_error(r, total, result, final=is_final))
            continue
        if result is not None and result.ok is None:
            unchecked += 1
        if (result is None or result.ok is None) and sum(r.balances.values()) != total:
            errors.append(_total_error(r, total, setting.transfers))
    return wrong, unchecked


def _explain_wrong_reads(
    wrong: list[_Wrong],
    setting: _Setting,
    budget: Budget,
    faults_max: int,
    errors: list[LedgerError],
) -> None:
    """Explanations, on their own budget, written into each wrong read's error.

    Every wrong read in history order gets the cheap search (one or two
    faults) before any read gets a deeper one, so one hard read cannot spend
    the budget that would have explained all the others.
    """
    for size_from, size_to in ((1, min(2, faults_max)), (3, faults_max)):
        for _, r, result, is_final in wrong:
            if size_from <= size_to:
                _explain_read(
                    result,
                    r,
                    setting.transfers,
                    budget,
                    final=is_final,
                    size_from=size_from,
                    faults_max=size_to,
                )
    for at, r, result, is_final in wrong:
        errors[at] = _read_error(r, setting.total_cents, result, final=is_final)


def _resolution(result: _ReadCheck) -> dict[str, Any]:
    assert result.ways is not None
    indefinite = [t for t in result.candidates]
    if result.ways.count == 1:
        applied = set(result.ways.examples[0])
        yes = [t.id for t in indefinite if t.id in applied]
        no = [t.id for t in indefinite if t.id not in applied]
        msg = (
            f"The final read resolves all {len(indefinite)} indefinite transfers: "
            f"{len(yes)} applied, {len(no)} not."
            if indefinite
            else "No transfer was indefinite."
        )
        return {"status": "resolved", "applied": yes, "not_applied": no, "message": msg}
    examples = [list(s) for s in result.ways.examples]
    return {
        "status": "ambiguous",
        "subsets": result.ways.count,
        "examples": examples,
        "message": f"{result.ways.count} subsets of the {len(indefinite)} indefinite "
        f"transfers fit the final balances (e.g. {examples[0]}): their amounts cannot "
        "tell them apart, and any of them is a correct outcome.",
    }
