"""Feedback in words: a run's verdicts, their witnesses, its fault schedule and the history of
the operations a failing verdict names, as the few clipped lines a learner reads."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chapters.run import RunResult
    from checks.harness.spec import TestResult

    Judged = TestResult | RunResult  # a run with verdicts: the harness's or `d11 run`'s

__all__ = ["clip", "history_lines", "schedule_lines", "verdict_lines"]

WITNESS_ITEMS_MAX = 3  # violations shown per failing checker
HISTORY_LINES_MAX = 8  # history events shown per failing run
TEXT_MAX = 400  # characters of one shown value


def schedule_lines(result: TestResult) -> list[str]:
    actions = result.schedule.actions
    if not actions:
        return ["  (no faults at all: the bug shows without any)"]
    out = []
    for a in actions:
        target = ", ".join(f"{k}={v}" for k, v in a.params.items())
        out.append(f"  t={a.at_ms:8.1f} ms  {a.op:10} {target}".rstrip())
    return out


def verdict_lines(result: Judged, names: list[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        verdict = result.verdicts[name]
        out.append(f"  {name}: {clip(verdict.summary)}")
        for item in _witness_items(verdict.witness):
            if " ".join(item.split()) not in " ".join(verdict.summary.split()):
                out.append(f"    - {clip(item)}")  # what the summary does not say already
    return out


def _witness_items(witness: object) -> list[str]:
    items = witness if isinstance(witness, list) else [witness] if witness else []
    out: list[str] = []
    for item in items[:WITNESS_ITEMS_MAX]:
        if isinstance(item, dict):
            words = item.get("explanations") or [item.get("message") or item.get("id") or item]
            out.extend(str(w) for w in words[:WITNESS_ITEMS_MAX])
        else:
            out.append(str(item))
    return out[:WITNESS_ITEMS_MAX]


def history_lines(result: Judged, wanted: tuple[str, ...]) -> list[str]:
    """The history of the operations the failing verdicts name first (invoke and completion),
    one operation after the other: the first named operation's whole story comes first."""
    names: list[str] = []
    for name in wanted:
        verdict = result.verdicts[name]
        if verdict.valid is not True:
            text = json.dumps(verdict.witness, default=repr)
            found = re.findall(r"client-[\w-]+?-\d+(?=[^\w-]|$)", text)
            names += [n for n in dict.fromkeys(found) if n not in names][:2]
    by_op: dict[str, list[str]] = {n: [] for n in names}
    for ev in result.history:
        op_id = ev.value.get("id") if isinstance(ev.value, dict) else None
        if isinstance(op_id, str) and op_id in by_op:
            value = {k: v for k, v in ev.value.items() if k != "id"}
            extra = {k: v for k, v in dict(ev.extra).items() if k in ("node", "error")}
            by_op[op_id].append(
                f"  t={ev.time_ms:8.1f} ms  {ev.type:6} {op_id} {ev.f} {clip(str(value), 120)}"
                + (f" {extra}" if extra else "")
            )
    shown = [line for lines in by_op.values() for line in lines]
    if not shown:
        return []
    return ["", "The history of the operations it names:", *shown[:HISTORY_LINES_MAX]]


def clip(text: str, limit: int = TEXT_MAX) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
