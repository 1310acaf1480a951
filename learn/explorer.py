"""The explorer for the consensus exercises: every schedule of small scenarios, searched
exhaustively, and the shortest trace to a violation if one is reached."""

from __future__ import annotations

from learn.catalog import Exercise
from learn.outcome import CheckRequest, Outcome

__all__ = ["explore"]


def explore(ex: Exercise, req: CheckRequest) -> Outcome:
    """Every schedule of each named small scenario, exhaustively (no mutation switched on)."""
    from checks.explore import SMALL_SCOPE, explore
    from checks.zoo import SCENARIOS

    names: list[str] = list(ex.params["scenarios"])
    done: list[str] = []
    for name in names:
        scenario = SMALL_SCOPE if name == "small-scope" else SCENARIOS[name]
        result = explore(scenario)
        if result.violation is not None:
            lines = [
                f"In the scenario {scenario.name!r}, breadth-first search reached a state "
                f"that breaks {result.violation.split(':', 1)[0]}:",
                f"  {result.violation}",
                "",
                f"The shortest schedule that gets there ({len(result.trace)} steps):",
                *(f"  {i:2}. {step}" for i, step in enumerate(result.trace, 1)),
            ]
            return Outcome(False, f"the explorer found a violation in {scenario.name!r}", lines)
        if not result.complete:
            return Outcome(
                False,
                f"{scenario.name!r}: the search hit its state cap ({result.states} states)",
                ["Your change makes the state space much bigger; a node keeps state it need not."],
            )
        done.append(f"{scenario.name} ({result.states} states)")
    lines = ["(--seeds does not apply: the search covers every schedule)"] if req.seeds > 1 else []
    return Outcome(True, "no violation in any schedule of: " + "; ".join(done), lines)
