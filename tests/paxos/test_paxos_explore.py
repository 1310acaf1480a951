"""The explorer and the bug zoo: the correct protocol survives every schedule
of a small scope, and every planted mutation is caught with a shortest trace."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from checks import zoo
from checks.explore import (
    ARBITER_DEGRADE,
    SMALL_SCOPE,
    SMALL_SCOPE_WITH_LOSS,
    Scenario,
    World,
    _Ctx,
    explore,
)
from reference.paxos.mutations import MUTATIONS

FAST_SAFE = [n for n in zoo.SCENARIOS if n != "forget-promise"]  # forget-promise: ~30 s


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test root."""

    zoo.register(app, typer.Typer())
    return app


@pytest.mark.slow
def test_small_scope_is_explored_exhaustively_without_violation() -> None:
    result = explore(SMALL_SCOPE)
    print(result.summary())
    assert result.complete and result.violation is None
    assert result.states > 10_000  # a real space, not a trivial one


@pytest.mark.slow
def test_degrade_to_one_replica_is_safe_in_every_schedule() -> None:
    result = explore(ARBITER_DEGRADE)
    print(result.summary())
    assert result.complete and result.violation is None


@pytest.mark.slow
@pytest.mark.parametrize("name", FAST_SAFE)
def test_zoo_scenario_is_safe_without_its_mutation(name: str) -> None:
    result = explore(zoo.SCENARIOS[name])
    assert result.complete and result.violation is None, result.summary()


@pytest.mark.parametrize(
    ("name", "steps", "kind"),
    [
        ("minority-commit", 8, "agreement"),
        ("truncate-before-apply", 12, "agreement"),
        ("lease-no-skew", 13, "stale read"),
    ],
)
def test_zoo_catches_mutation_with_shortest_trace(name: str, steps: int, kind: str) -> None:
    found = zoo.hunt(name)
    assert found.caught and found.result.violation is not None
    assert found.result.violation.startswith(kind)
    assert len(found.result.trace) == steps  # breadth-first: no shorter schedule exists
    assert found.result.trace[0].startswith("fire      n1 timer 'election'")


def test_lease_read_needs_the_skew_bound_exactly() -> None:
    """Move n3's clock one millisecond back inside the window: the bug hides."""
    scenario = zoo.SCENARIOS["lease-no-skew"]
    skews = {**scenario.skew_ms, "n3": 0.0}  # clocks only 10 ms apart: no window
    mild = Scenario(**{**scenario.__dict__, "skew_ms": skews})
    assert explore(mild.with_mutations(frozenset({"lease-no-skew"}))).violation is None


def test_every_mutation_has_a_scenario_and_a_site_in_the_code() -> None:
    assert set(zoo.SCENARIOS) == set(MUTATIONS) and len(MUTATIONS) >= 6
    from pathlib import Path

    import reference.paxos

    source = "".join(p.read_text() for p in Path(reference.paxos.__file__).parent.glob("*.py"))
    for name in MUTATIONS:
        assert f"mutation: {name}" in source, f"no marked site for {name}"


def test_explored_nodes_may_not_draw_randomness() -> None:
    """A draw would make a node's step depend on more than its state."""
    world = World(SMALL_SCOPE)
    with pytest.raises(AssertionError, match=r"ctx\.random"):
        _ = _Ctx(world, "n1").random


def test_cli_lists_the_zoo() -> None:
    out = CliRunner().invoke(_app(), ["zoo", "--list"])
    assert out.exit_code == 0
    assert [line.split()[0] for line in out.output.splitlines()] == list(MUTATIONS)


def test_cli_hunts_named_mutations_and_prints_the_tally_last() -> None:
    out = CliRunner().invoke(_app(), ["zoo", "minority-commit", "lease-no-skew"])
    assert out.exit_code == 0, out.output
    lines = out.output.strip().splitlines()
    assert lines[-1] == "caught: 2/2"
    assert any(line.startswith("minority-commit") and "caught" in line for line in lines)


def test_cli_rejects_an_unknown_mutation() -> None:
    out = CliRunner().invoke(_app(), ["zoo", "no-such-bug"])
    assert out.exit_code == 2
    assert "unknown mutation no-such-bug" in out.output


@pytest.mark.slow
def test_zoo_catches_every_mutation() -> None:
    out = CliRunner().invoke(_app(), ["zoo", "--no-trace"])
    lines = out.output.strip().splitlines()
    assert lines[-1] == f"caught: {len(MUTATIONS)}/{len(MUTATIONS)}", out.output
    assert out.exit_code == 0


@pytest.mark.slow
def test_forget_promise_scenario_is_safe_without_the_mutation() -> None:
    result = explore(zoo.SCENARIOS["forget-promise"])
    assert result.complete and result.violation is None, result.summary()


@pytest.mark.slow
def test_small_scope_with_message_loss_is_safe() -> None:
    result = explore(SMALL_SCOPE_WITH_LOSS)
    print(result.summary())
    assert result.complete and result.violation is None
