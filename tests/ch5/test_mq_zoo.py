"""The broker's bug zoo (reference/mq/mutations.py): every planted bug is caught."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from chapters.run import simulate
from chapters.stage import StageError
from checks import zoo
from checks.mq_zoo import SCENARIOS, hunt
from reference.mq.broker import BrokerReplica
from reference.mq.machine import BrokerConfig, BrokerMachine
from reference.mq.messages import CheckPass, EndTransaction, Payload, SendHalf
from reference.mq.mutations import MUTATIONS
from reference.paxos.config import PaxosConfig
from reference.paxos.messages import Membership, ProposeResult

GROUP, TOPIC = "payment-service", "payments"


def _broker(*mutations: str) -> BrokerMachine:
    b = BrokerMachine(BrokerConfig(mutations=frozenset(mutations)))
    b.apply(SendHalf(GROUP, TOPIC, "p1", "u1", Payload("p1", "u1", "m1@pay", 5), 0))
    return b


def test_every_mutation_has_a_test_here() -> None:
    tested = {
        "recommit",
        "commit-after-rollback",
        "count-young",
        "unbounded-checks",
        "stuck-check-cursor",
    }
    assert tested == MUTATIONS.keys()


@pytest.mark.parametrize(
    ("mutation", "first", "words"),
    [
        ("recommit", True, "twice"),
        ("commit-after-rollback", False, "op record says rolled-back"),
    ],
)
def test_a_second_verdict_is_caught_by_the_broker_audit(
    mutation: str, first: bool, words: str
) -> None:
    clean, planted = _broker(), _broker(mutation)
    for b in (clean, planted):
        b.apply(EndTransaction(GROUP, "p1", first, True, 1))  # the check-back's verdict
        b.apply(EndTransaction(GROUP, "p1", True, False, 2))  # the producer's own, late
    assert clean.audit() == []
    problems = planted.audit()
    assert problems and words in problems[0]


def test_counting_young_halves_discards_them_unchecked_and_loses_events() -> None:
    extra = {"check_interval_ms": 1_000, "check_max": 3}
    clean = simulate("ch5", "crash", seed=1, duration_s=2.0, extra=extra)
    planted = simulate(
        "ch5", "crash", seed=1, duration_s=2.0, extra={**extra, "mutations": "count-young"}
    )
    assert all(v.valid is True for v in clean.verdicts.values())
    assert planted.verdicts["settlement"].valid is False
    assert planted.verdicts["delivery"].details["problems"].get("lost", 0) > 0
    # The run is judged knowing what was planted: its failures are expected ones
    # (`d11 run ch5 --set mutations=...` said UNEXPECTED FAILURE, keyed by variant).
    assert planted.judged["settlement"].outcome == "expected-failure"
    assert planted.as_expected, {n: j.outcome for n, j in planted.judged.items()}
    assert clean.deployment.expectations() == {}  # nothing planted: every check must pass


def test_an_unbounded_check_pass_is_a_crash_not_a_storm() -> None:
    config = BrokerConfig(checks_per_pass_max=3, mutations=frozenset({"unbounded-checks"}))
    b = BrokerMachine(config)
    for i in range(5):
        b.apply(SendHalf(GROUP, TOPIC, f"p{i}", f"u{i}", Payload(f"p{i}", "u", "m1@pay", 1), 0))
    result = b.apply(CheckPass(10_000))
    assert len(result[0]) == 5  # the bound ignored
    replica = BrokerReplica("b1", PaxosConfig(Membership(1, ("b1",))), config, {GROUP: ("p",)})
    with pytest.raises(AssertionError):
        replica._on_check_pass(None, ProposeResult("check/b1/1/1", True, result))  # type: ignore[arg-type]


def test_an_unknown_mutation_is_one_line_for_the_user() -> None:
    with pytest.raises(StageError, match="unknown mutation nope"):
        simulate("ch5", "steady", extra={"mutations": "nope"})


# -- the explorer (checks/mq_zoo.py): each mutation's shortest failing schedule ------

SHORTEST = {
    "recommit": ("half m1", "decide m1 commit", "tick", "tick", "answer m1", "end m1"),
    "commit-after-rollback": (
        "half m1", "tick", "tick", "answer m1", "decide m1 commit", "end m1",
    ),
    "count-young": ("half m1", "tick", "tick"),
    "unbounded-checks": ("half m1", "half m2", "tick", "tick"),
    "stuck-check-cursor": ("half m1", "half m2", "tick", "tick", "tick"),
}  # fmt: skip


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_the_explorer_finds_each_mutations_shortest_failing_schedule(mutation: str) -> None:
    found = hunt(mutation)
    assert found.schedule == SHORTEST[mutation], found.problem
    # The same world unplanted keeps every promise, a step deeper than the bug needs.
    clean = hunt(mutation, planted=False, depth=SCENARIOS[mutation].depth + 1)
    assert not clean.caught, (clean.schedule, clean.problem)


@pytest.mark.slow
@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_the_unplanted_broker_keeps_its_promises_nine_steps_deep(mutation: str) -> None:
    clean = hunt(mutation, planted=False, depth=9)
    assert not clean.caught, (clean.schedule, clean.problem)


def test_bounded_check_passes_take_turns() -> None:
    """A pass cut short by its bound resumes where it stopped (RocketMQ's half offset)."""
    b = BrokerMachine(BrokerConfig(checks_per_pass_max=2))
    for i in range(5):
        b.apply(SendHalf(GROUP, TOPIC, f"p{i}", f"u{i}", Payload(f"p{i}", "u", "m1@pay", 1), 0))
    asked = [[c.msg_id for c in b.apply(CheckPass(10_000 * n))[0]] for n in (1, 2, 3)]
    assert asked == [["p0", "p1"], ["p2", "p3"], ["p4", "p0"]]
    assert b.clone().check_cursor == b.check_cursor  # in the snapshot


def test_d11_zoo_broker_prints_each_schedule_and_the_tally_last() -> None:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test root."""

    zoo.register(app, typer.Typer())
    out = CliRunner().invoke(app, ["zoo", "--broker", "count-young"])
    assert out.exit_code == 0, out.output
    lines = out.output.strip().splitlines()
    assert lines[0].startswith("count-young") and "caught" in lines[0]
    assert [line.split(". ")[1] for line in lines[1:-1]] == list(SHORTEST["count-young"])
    assert lines[-1] == "caught: 1/1"
    out = CliRunner().invoke(app, ["zoo", "--broker", "nope"])
    assert out.exit_code == 2 and "unknown mutation nope" in out.output
