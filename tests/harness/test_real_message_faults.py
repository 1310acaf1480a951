"""`d11 test --backend process --nemesis loss|duplicate|reorder`: message faults on real nodes.

The transports inject them at the sender (reference/runtime/transport.py);
chapter 4's Paxos ledger retries what is lost and ignores what is repeated,
so the verdict stays valid, as on the simulator. Real runs take real
seconds (a 3-second run is about 20 s with the boot), hence `slow`.
"""

from __future__ import annotations

from typing import Any

import pytest

import checks.harness.real as real_module
from checks.harness.runner import TestSpec, run_test
from checks.nemesis import Action, Schedule


def _spy_on_the_heal(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """The clients' link counters, summed, read just before the harness heals everything."""
    seen: dict[str, int] = {}
    heal = real_module.heal_everything

    def spy(backend: Any, nodes: Any) -> None:
        for node_id, member in backend.members.items():
            if member.kind == "local" and member.host is not None:
                for counts in backend.stats(node_id)["links"].values():
                    for name, n in counts.items():
                        seen[name] = seen.get(name, 0) + n
        heal(backend, nodes)

    monkeypatch.setattr(real_module, "heal_everything", spy)
    return seen


def _verdicts(result: Any) -> dict[str, str]:
    return {name: v.summary for name, v in result.verdicts.items()}


@pytest.mark.slow
def test_ch4_paxos_ledger_under_message_loss_on_processes_is_valid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counts = _spy_on_the_heal(monkeypatch)
    result = run_test(TestSpec("ch4", nemeses=("loss",), time_s=3.0, seed=1, backend="process"))
    assert result.valid is True, _verdicts(result)
    assert result.verdicts["lost-payments"].valid is True
    rates = [e.value for e in result.history if e.process == "nemesis" and e.f == "net"]
    assert rates and rates[0]["loss"] > 0 and rates[-1]["loss"] == 0.0
    assert counts["dropped_loss"] > 0  # the clients' own requests were lost too


# Half of all messages doubled, then half held back, each for 1.2 s.
DUPLICATE_THEN_REORDER = Schedule(
    (
        Action(300.0, "net", {"loss": 0.0, "duplicate": 0.5, "reorder": 0.0}, "f1"),
        Action(1_500.0, "net", {"loss": 0.0, "duplicate": 0.0, "reorder": 0.0}, "f1"),
        Action(2_000.0, "net", {"loss": 0.0, "duplicate": 0.0, "reorder": 0.5}, "f2"),
        Action(3_200.0, "net", {"loss": 0.0, "duplicate": 0.0, "reorder": 0.0}, "f2"),
    ),
    seed=1,
    nemeses=("duplicate", "reorder"),
)


@pytest.mark.slow
def test_ch4_paxos_ledger_under_duplication_and_reordering_on_processes_is_valid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counts = _spy_on_the_heal(monkeypatch)
    spec = TestSpec("ch4", nemeses=("duplicate", "reorder"), time_s=4.0, backend="process")
    result = run_test(spec, DUPLICATE_THEN_REORDER)
    assert result.valid is True, _verdicts(result)
    faults = [e.value["fault"] for e in result.history if e.process == "nemesis" and e.f == "net"]
    assert faults == ["f1", "f1", "f2", "f2"]
    assert counts["duplicated"] > 0 and counts["reordered"] > 0
