"""The history excerpt shows exactly the operations the shown verdict lines name, and a
violation's bullet says what is wrong, not a bare id.

Before (a newcomer's trial, `d11 learn check ch5-find-count-young`): the delivery
verdict named client-3-48 (its "First:") and listed "- client-1-42 / - client-1-44",
while the excerpt under "The history of the operations it names:" was eight lines
of client-1-108, a payment only the tenth item of the settlement witness (never
printed) mentioned.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

from checks.harness.runner import TestResult
from checks.history import Event
from checks.verdict import Verdict
from learn.feedback import HISTORY_LINES_MAX, history_lines, verdict_lines

_LOST = ("client-3-48", "client-1-42", "client-1-44", "client-2-46")


def _lost(op: str, at: int) -> dict[str, object]:
    words = f"committed at index {at}, never delivered"
    return {
        "kind": "lost",
        "id": op,
        "group": "loyalty",
        "index": at,
        "words": words,
        "related": [],
    }


def _result() -> TestResult:
    settlement = Verdict(
        "settlement",
        False,
        "Settlement does not match the ledger (unsettled x1, no-settlement-event x4). "
        "First: unsettled: account m0@pay, cents 14776.",
        witness=[{"kind": "unsettled", "account": "m0@pay", "cents": 14776}] * 9
        + [{"kind": "no-settlement-event", "payment": p} for p in ("client-1-108", *_LOST)],
    )
    index = {op: 900 + i for i, op in enumerate(_LOST)}
    delivery = Verdict(
        "delivery",
        False,
        "4 delivery violations (lost x4). First: message client-3-48 in group loyalty: "
        f"committed at index {index['client-3-48']}, never delivered.",
        witness=[_lost(op, index[op]) for op in _LOST],
    )
    history: list[Event] = []
    for op in ("client-1-108", *_LOST):
        history += [Event("invoke", 1, f, {"id": op}, 10.0 * len(history), len(history))
                    for f in ("transfer", "send")]  # fmt: skip
        at = index.get(op, len(history))
        history += [Event("ok", 1, "commit", {"id": op}, 10.0 * len(history), at)]
        history += [Event("ok", 1, "check-max", {"id": op}, 9_000.0, len(history) + 2_000)]
    result = SimpleNamespace(verdicts={"settlement": settlement, "delivery": delivery},
                             history=history)  # fmt: skip
    return cast(TestResult, result)


def test_the_excerpt_is_of_the_operations_the_shown_lines_name() -> None:
    result = _result()
    shown = "\n".join(verdict_lines(result, ["settlement", "delivery"]))
    lines = history_lines(result, ("settlement", "delivery"))
    assert (
        lines[1]
        == "The history of the operations it names (client-3-48, client-1-42, client-1-44):"
    )
    events = [line for line in lines[2:] if line.startswith("  t=")]
    assert "client-1-108" not in "\n".join(lines) and "client-1-108" not in shown
    assert "client-2-46" not in "\n".join(lines)  # named only past the bullets shown
    for op in _LOST[:3]:
        assert op in shown
        assert any(f" {op} commit" in e for e in events), op  # the event its index names
        assert any(f" {op} check-max" in e for e in events), op  # how its story ends
    assert len(events) <= HISTORY_LINES_MAX


def test_a_violations_bullet_says_what_is_wrong() -> None:
    lines = verdict_lines(_result(), ["delivery"])
    bullets = [line.strip() for line in lines if line.strip().startswith("- ")]
    assert bullets == [
        "- lost: id client-1-42, group loyalty: committed at index 901, never delivered",
        "- lost: id client-1-44, group loyalty: committed at index 902, never delivered",
    ]  # the first violation is the summary's "First:", not repeated
