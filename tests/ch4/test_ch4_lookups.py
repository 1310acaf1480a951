"""Final lookups by id: every payment that ended unknown is settled in the history.

Under composed faults many payments end "info" (their every attempt timed
out). Before the final reads, each client looks every such payment up by id
through its group's log (front.py's fence): the ledger answers "applied", or
fences the id and answers "absent". The answers are history events, so the
ledger checker resolves every indefinite transfer from the history alone,
however many there are.
"""

from __future__ import annotations

import pytest

from checks.harness.runner import TestResult, TestSpec, run_test
from checks.history import pair_operations
from checks.transfers import check_ledger

EVERY_FAULT = (
    "partition-halves",
    "partition-ring",
    "isolate-city",
    "kill",
    "pause",
    "skew",
    "lose-unsynced",
    "loss",
    "duplicate",
    "reorder",
)


def failing(result: TestResult) -> dict[str, str]:
    return {n: f"{v.valid}: {v.summary}" for n, v in result.verdicts.items() if v.valid is not True}


def test_lookups_alone_settle_every_unknown_payment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reconciliation switched off: the lookups settle every payment that
    ended unknown, both ways, and the run is valid. Without the lookup events
    the same history leaves them indefinite."""
    monkeypatch.setattr("reference.clients.node.RECONCILE_MAX", 0)
    spec = TestSpec(chapter="ch4", nemeses=EVERY_FAULT, seed=11, time_s=6.0)
    result = run_test(spec)
    assert result.valid is True, failing(result)
    ops = pair_operations(list(result.history))
    unknown = {
        str(op.invoke.value["id"])
        for op in ops
        if op.f == "transfer" and op.type == "info" and isinstance(op.invoke.value, dict)
    }
    answers: dict[str, str] = {}
    for op in ops:
        if op.f == "lookup-transfer" and op.type == "ok":
            assert op.completion is not None
            answers.update(op.completion.value)
    assert unknown and unknown <= answers.keys()
    assert set(answers.values()) == {"applied", "absent"}  # both outcomes occur
    ledger = result.verdicts["ledger"].details
    assert ledger["transfers"]["indefinite"] == 0
    settled = ledger["lookups"]["settled_applied"] + ledger["lookups"]["settled_absent"]
    assert settled == len(unknown)
    # The lookups are what resolved them.
    bare = [e for e in result.history if e.f != "lookup-transfer"]
    without = check_ledger(bare, realtime=False)
    assert without.details["transfers"]["indefinite"] == len(unknown)


@pytest.mark.slow
def test_every_fault_for_a_minute_ends_valid() -> None:
    """The run issue 11 reported "unknown" (3,785 indefinite transfers)."""
    spec = TestSpec(chapter="ch4", nemeses=EVERY_FAULT, seed=11, time_s=60.0)
    result = run_test(spec)
    assert result.valid is True, failing(result)
    assert result.verdicts["ledger"].details["transfers"]["indefinite"] == 0
