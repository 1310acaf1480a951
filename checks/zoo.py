"""The bug zoo: every planted mutation of the Paxos group, hunted by the explorer.

Each mutation (reference/paxos/mutations.py) comes with the small scenario
the explorer searches for it: three replicas (or two and an arbiter), a
couple of client requests, and tight budgets of timer firings and crashes.
The same scenario without the mutation must be safe, which the tests check;
with the mutation, breadth-first search must reach a state that breaks
agreement, validity or a lease read, and hands back the shortest schedule
that gets there.

`d11 zoo --list` names them, `d11 zoo` hunts them all, `d11 zoo NAME` one.
The last line is `caught: X/N`; the exit status is 0 only if all were caught.
"""

from __future__ import annotations

from dataclasses import dataclass

import typer

from checks.explore import Result, Scenario, explore
from reference.paxos.messages import Membership, Propose, Read
from reference.paxos.mutations import MUTATIONS

THREE = Membership(1, ("n1", "n2", "n3"))
TWO_AND_ARBITER = Membership(1, ("n1", "n2"), "a")


def _put(request_id: str, value: int) -> Propose:
    return Propose(request_id, ("put", "x", value))


# The scenario each mutation is hunted in. Two proposers (n1 campaigns at
# t=150 ms, n2 at 200 ms, n3 at 250 ms), one client request per proposer.
SCENARIOS: dict[str, Scenario] = {
    "forget-promise": Scenario(
        "forget-promise",
        THREE,
        requests=(("n1", _put("r1", 1)), ("n2", _put("r2", 2))),
        timer_budget={"n1": 1, "n2": 1, "n3": 0},
        crashes=1,
        crashable=("n2",),
        cut=(("n1", "n3"),),
    ),
    "no-adopt": Scenario(
        "no-adopt",
        THREE,
        requests=(("n1", _put("r1", 1)), ("n3", _put("r3", 3))),
        timer_budget={"n1": 1, "n2": 0, "n3": 1},
        cut=(("n2", "n3"),),
    ),
    "minority-commit": Scenario(
        "minority-commit",
        THREE,
        requests=(("n1", _put("r1", 1)), ("n2", _put("r2", 2))),
        timer_budget={"n1": 1, "n2": 1, "n3": 0},
        cut=(("n1", "n3"),),
    ),
    "ack-before-sync": Scenario(
        "ack-before-sync",
        THREE,
        requests=(("n1", _put("r1", 1)), ("n3", _put("r3", 3))),
        timer_budget={"n1": 1, "n2": 0, "n3": 2},
        crashes=1,
        crashable=("n2",),
        cut=(("n1", "n3"),),
    ),
    "truncate-before-apply": Scenario(
        "truncate-before-apply",
        THREE,
        requests=(("n1", _put("r1", 1)), ("n1", _put("r2", 2))),
        timer_budget={"n1": 1, "n2": 0, "n3": 1},
        cut=(("n1", "n3"),),
        config={"window_slots": 1},
    ),
    "arbiter-accepts": Scenario(
        "arbiter-accepts",
        TWO_AND_ARBITER,
        requests=(("n1", _put("r1", 1)), ("n2", _put("r2", 2))),
        timer_budget={"n1": 1, "n2": 1, "a": 0},
    ),
    # The old leader n1's clock runs 10 ms slow, n3's 10 ms fast: both inside
    # the 10 ms bound. Election timeouts of 285 ms put n2's campaign (t=380)
    # just after n3's lease promise to n1 (sent at t=285) runs out; n1 and n2
    # are partitioned, n3 hears both.
    "lease-no-skew": Scenario(
        "lease-no-skew",
        THREE,
        requests=(("n2", _put("r2", 2)), ("n1", Read("q1", "x"))),
        timer_budget={"n1": 2, "n2": 1, "n3": 0},
        skew_ms={"n1": -10.0, "n2": 0.0, "n3": 10.0},
        cut=(("n1", "n2"),),
        config={"election_timeout_ms": 285.0},
    ),
    # n1 and n2 cannot see each other; each believes the other is gone. The
    # arbitration timeout is zero: it only decides how soon a leader degrades,
    # so safety must hold for any value, and zero keeps the schedules short.
    "degrade-without-arbiter": Scenario(
        "degrade-without-arbiter",
        TWO_AND_ARBITER,
        requests=(("n1", _put("r1", 1)), ("n2", _put("r2", 2))),
        timer_budget={"n1": 2, "n2": 2, "a": 0},
        cut=(("n1", "n2"),),
        config={"arbitration_timeout_ms": 0.0},
    ),
}

assert SCENARIOS.keys() == MUTATIONS.keys(), "every mutation needs its hunting scenario"


@dataclass
class Hunt:
    """The outcome of hunting one mutation."""

    mutation: str
    result: Result

    @property
    def caught(self) -> bool:
        return self.result.violation is not None

    def line(self) -> str:
        r = self.result
        figures = f"{r.states} states, {r.seconds:.1f} s"
        if self.caught:
            return f"{self.mutation:24} caught  {r.violation} [{len(r.trace)} steps; {figures}]"
        scope = "whole space" if r.complete else "state cap"
        return f"{self.mutation:24} MISSED  no violation in the {scope} [{figures}]"


def hunt(mutation: str) -> Hunt:
    """Explore the mutation's scenario with the mutation switched on."""
    scenario = SCENARIOS[mutation].with_mutations(frozenset({mutation}))
    return Hunt(mutation, explore(scenario))


def register(app: typer.Typer, bench: typer.Typer) -> None:
    @app.command("zoo")
    def zoo_command(
        names: list[str] = typer.Argument(None, help="Mutations to hunt (default: all)."),
        list_only: bool = typer.Option(False, "--list", help="List the mutations and exit."),
        show_trace: bool = typer.Option(
            True, "--trace/--no-trace", help="Print the shortest failing schedule."
        ),
        clean: bool = typer.Option(
            False, "--clean", help="Explore each scenario WITHOUT its mutation (must be safe)."
        ),
        broker: bool = typer.Option(
            False, "--broker", help="The message broker's zoo (chapter 5) instead of Paxos's."
        ),
    ) -> None:
        """Hunt every planted Paxos bug (--broker: the broker's) with the exhaustive explorer.

        The last line is `caught: X/N` (with --clean, `safe: X/N`). Exit status:
        0 every mutation caught (--clean: every scenario safe), 1 one was missed
        (--clean: one was unsafe), 2 an unknown mutation name.
        """
        if broker:
            from checks.mq_zoo import zoo_lines

            status = 0
            for line in zoo_lines(names or [], list_only=list_only, clean=clean, trace=show_trace):
                if isinstance(line, int):
                    status = line
                else:
                    typer.echo(line, err=line.startswith("error:"))
            raise typer.Exit(status)
        if list_only:
            for name, what in MUTATIONS.items():
                typer.echo(f"{name:24} {what}")
            return
        chosen = list(names) if names else list(MUTATIONS)
        unknown = [n for n in chosen if n not in MUTATIONS]
        if unknown:
            typer.echo(
                f"error: unknown mutation {', '.join(unknown)} (see d11 zoo --list)", err=True
            )
            raise typer.Exit(2)
        if clean:
            safe = 0
            for name in chosen:
                result = explore(SCENARIOS[name])
                safe += result.violation is None
                typer.echo(result.summary())
            typer.echo(f"safe: {safe}/{len(chosen)}")
            if safe < len(chosen):
                raise typer.Exit(1)
            return
        caught = 0
        for name in chosen:
            found = hunt(name)
            caught += found.caught
            typer.echo(found.line())
            if found.caught and show_trace:
                for i, step in enumerate(found.result.trace, 1):
                    typer.echo(f"    {i:2}. {step}")
        typer.echo(f"caught: {caught}/{len(chosen)}")
        if caught < len(chosen):
            raise typer.Exit(1)
