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
    named_at: set[int] = set()  # history indices a witness names ("indices [263, 3936]")
    for name in wanted:
        verdict = result.verdicts[name]
        if verdict.valid is not True:
            text = json.dumps(verdict.witness, default=repr) + " " + verdict.summary
            found = re.findall(r"client-[\w-]+?-\d+(?=[^\w-]|$)", text)
            names += [n for n in dict.fromkeys(found) if n not in names][:2]
            for listed in re.findall(r"indices \[([\d, ]+)\]", text):
                named_at.update(int(i) for i in listed.split(","))
    by_op: dict[str, list[tuple[int, str]]] = {n: [] for n in names}
    for position, ev in enumerate(result.history):
        at = ev.index if ev.index >= 0 else position  # what a checker's indices count
        op_id = ev.value.get("id") if isinstance(ev.value, dict) else None
        if isinstance(op_id, str) and op_id in by_op:
            value = {k: v for k, v in ev.value.items() if k != "id"}
            extra = {k: v for k, v in dict(ev.extra).items() if k in ("node", "error")}
            by_op[op_id].append((at, (
                f"  t={ev.time_ms:8.1f} ms  {ev.type:6} {op_id} {ev.f} {clip(str(value), 120)}"
                + (f" {extra}" if extra else "")
            )))  # fmt: skip
    shown = [line for lines in by_op.values() for line in lines]
    if not shown:
        return []
    # The events the witness names are the evidence (an effect applied twice: its
    # two applies, late in the run): shown first, then the story around them, up
    # to the bound, in the history's order.
    named = [line for line in shown if line[0] in named_at][:HISTORY_LINES_MAX]
    room = HISTORY_LINES_MAX - len(named)
    rest = [line for line in shown if line[0] not in named_at][:room]
    kept = sorted(named + rest) if named else shown[:HISTORY_LINES_MAX]
    return ["", "The history of the operations it names:", *(text for _, text in kept)]


def clip(text: str, limit: int = TEXT_MAX) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
