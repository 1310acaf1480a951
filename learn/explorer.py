"""The explorer for the consensus exercises: every schedule of small scenarios, searched
exhaustively, and the shortest trace to a violation if one is reached."""

from __future__ import annotations

from typing import TYPE_CHECKING

from learn.catalog import Exercise
from learn.outcome import CheckRequest, Outcome

if TYPE_CHECKING:  # at run time it comes from the learner's workspace, imported late
    from checks.explore import Scenario

__all__ = ["explore"]


def explore(ex: Exercise, req: CheckRequest) -> Outcome:
    """Every schedule of each named small scenario, exhaustively (no mutation switched on)."""
    from checks.explore import SMALL_SCOPE, explore
    from checks.zoo import SCENARIOS

    names: list[str] = list(ex.params["scenarios"])
    done: list[str] = []
    for name in names:
        scenario = SMALL_SCOPE if name == "small-scope" else SCENARIOS[name]
        # A zoo scenario is named after the mutation it hunts: a find-bug exercise's
        # answer. There it is told by its shape instead.
        shape = _shape(scenario) if ex.kind == "find-bug" else scenario.name
        called = f"of {shape}" if ex.kind == "find-bug" else repr(scenario.name)
        result = explore(scenario)
        if result.violation is not None:
            lines = [
                f"In the scenario {called}, breadth-first search reached a state "
                f"that breaks {result.violation.split(':', 1)[0]}:",
                f"  {result.violation}",
                "",
                f"The shortest schedule that gets there ({len(result.trace)} steps):",
                *(f"  {i:2}. {step}" for i, step in enumerate(result.trace, 1)),
            ]
            where = "the exercise's scenario" if ex.kind == "find-bug" else repr(scenario.name)
            return Outcome(False, f"the explorer found a violation in {where}", lines)
        if not result.complete:
            return Outcome(
                False,
                f"the scenario {called}: the search hit its state cap ({result.states} states)",
                ["Your change makes the state space much bigger; a node keeps state it need not."],
            )
        done.append(f"{shape} ({result.states} states)")
    lines = ["(--seeds does not apply: the search covers every schedule)"] if req.seeds > 1 else []
    return Outcome(True, "no violation in any schedule of: " + "; ".join(done), lines)


def _shape(scenario: Scenario) -> str:
    """A small scenario by what is in it: "n1, n2, n3 (requests at n1, n2; n1-n3 cut)"."""
    members = scenario.membership
    arbiter = f" and arbiter {members.arbiter}" if members.arbiter else ""
    nodes = ", ".join(members.data) + arbiter
    parts = ["requests at " + ", ".join(dict.fromkeys(n for n, _ in scenario.requests))]
    if scenario.cut:
        parts.append(", ".join(f"{a}-{b}" for a, b in scenario.cut) + " cut")
    if scenario.crashes:
        parts.append(f"{scenario.crashes} crash(es)")
    return f"{nodes} ({'; '.join(parts)})"
