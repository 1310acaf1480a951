"""Feedback in words: a run's verdicts, their witnesses, its fault schedule and the history of
the operations a failing verdict names, as the few clipped lines a learner reads."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chapters.run import RunResult
    from checks.harness.spec import TestResult

    Judged = TestResult | RunResult  # a run with verdicts: the harness's or `d11 run`'s

__all__ = ["clip", "history_lines", "schedule_lines", "verdict_lines"]

WITNESS_ITEMS_MAX = 3  # violations shown per failing checker
HISTORY_LINES_MAX = 12  # history events shown per failing run, over all the operations
NAMED_OPS_MAX = 3  # operations whose history is shown: the first the verdicts name
TEXT_MAX = 400  # characters of one shown value

_OP_ID = re.compile(r"client-[\w-]+?-\d+(?=[^\w-]|$)")
_INDEX = re.compile(r"\bindex (\d+)|indices \[([\d, ]+)\]")  # "at index 964", "indices [263, 3936]"
# The delivery checker's: history.jsonl's lines, from 1 ("at line 965", "lines [264, 3937]").
_LINE = re.compile(r"\bline (\d+)|lines \[([\d, ]+)\]")


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
        summary = " ".join(verdict.summary.split())
        out.append(f"  {name}: {clip(verdict.summary)}")
        for item, values in _witness_items(verdict.witness):
            if " ".join(item.split()) in summary or (values and all(v in summary for v in values)):
                continue  # the summary says it already (its "First: ...")
            out.append(f"    - {clip(item)}")
    return out


def _witness_items(witness: object) -> list[tuple[str, list[str]]]:
    """The first violations of a witness, each as a reader reads it, with the values
    it names (to tell whether the summary said it already)."""
    items = witness if isinstance(witness, list) else [witness] if witness else []
    out: list[tuple[str, list[str]]] = []
    for item in items[:WITNESS_ITEMS_MAX]:
        if isinstance(item, dict) and (item.get("explanations") or item.get("message")):
            words = item.get("explanations") or [item["message"]]
            out.extend((str(w), []) for w in words[:WITNESS_ITEMS_MAX])
        elif isinstance(item, dict):
            out.append(_said(item))
        else:
            out.append((str(item), []))
    return out[:WITNESS_ITEMS_MAX]


def _said(item: dict[str, object]) -> tuple[str, list[str]]:
    """One violation labelled, as the checkers word their "First: ...": "lost: id
    client-1-42, group loyalty: committed at line 1014, never delivered" (a bare id
    said nothing of what was wrong with it)."""
    words = str(item.get("words") or "")
    named = {k: v for k, v in item.items() if k not in ("kind", "words") and v not in ("", None)}
    named = {k: v for k, v in named.items() if not isinstance(v, list | dict) or v}
    label = ", ".join(f"{k} {v}" for k, v in named.items() if str(v) not in words)
    text = ": ".join(part for part in (str(item.get("kind", "")), label, words) if part)
    values = [str(v) for v in named.values() if not isinstance(v, list | dict)]
    return text, values + ([words] if words else [])


def history_lines(result: Judged, wanted: tuple[str, ...]) -> list[str]:
    """The history of the operations the failing verdicts' shown lines name (their
    summary, then the violations `verdict_lines` prints), one after the other; of
    each, the events those lines name first (an effect applied twice: its two
    applies), then the story's first and last events, within the bound."""
    broken = [n for n in wanted if result.verdicts[n].valid is not True]
    said = "\n".join(verdict_lines(result, broken))
    names = list(dict.fromkeys(_OP_ID.findall(said)))[:NAMED_OPS_MAX]
    named_at = {int(i) for a, b in _INDEX.findall(said) for i in (a or b).split(",")}
    named_at |= {int(i) - 1 for a, b in _LINE.findall(said) for i in (a or b).split(",")}
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
    shown_ops = [n for n in names if by_op[n]]
    if not shown_ops:
        return []
    out = ["", f"The history of the operations it names ({', '.join(shown_ops)}):"]
    room = HISTORY_LINES_MAX
    for i, op_id in enumerate(shown_ops):
        events = by_op[op_id]
        allowance = max(1, room // (len(shown_ops) - i))
        kept = _kept(events, named_at, allowance)
        room -= len(kept)
        last = -1
        for k in kept:
            if k > last + 1:
                out.append(f"    ({k - last - 1} more)")
            out.append(events[k][1])
            last = k
        if last < len(events) - 1:
            out.append(f"    ({len(events) - 1 - last} more)")
    return out


def _kept(events: list[tuple[int, str]], named_at: set[int], allowance: int) -> list[int]:
    """Which of an operation's events to show: those named, its first, then its last."""
    order = [k for k, (at, _) in enumerate(events) if at in named_at]
    order += [0, *range(len(events) - 1, 0, -1)]
    return sorted(list(dict.fromkeys(order))[:allowance])


def clip(text: str, limit: int = TEXT_MAX) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
