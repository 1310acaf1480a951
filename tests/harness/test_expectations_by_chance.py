"""A nemesis strikes at random: what a chapter's aimed fault must break, a random one may.

`d11 test` judges a run with kills by the chapter's "crash" expectations. The
scripted crash kills chapter 5's producer between its transfer and its event,
so naive-after must fail settlement there; a random kill may land elsewhere,
and a settlement that holds is then no news (it was reported "UNEXPECTED
PASS", exit 1).
"""

from __future__ import annotations

from checks.harness.contract import Expectation, by_chance, judge
from checks.harness.report import run_outcome
from checks.harness.runner import TestSpec, run_test
from checks.verdict import Verdict


def test_expected_failures_become_may_fail_and_nothing_else_moves() -> None:
    expected = {
        "settlement": Expectation(False, "the lesson"),
        "bank": Expectation(True, "must hold"),
        "delivery": Expectation(False, "a consequence", always=False),
    }
    held = {name: Verdict(name, True, "held") for name in expected}
    assert judge(held, expected)["settlement"].outcome == "unexpected-pass"
    chance = by_chance(expected)
    assert {n: j.outcome for n, j in judge(held, chance).items()} == dict.fromkeys(expected, "pass")
    assert chance["bank"] == expected["bank"] and chance["delivery"] == expected["delivery"]
    broken = {name: Verdict(name, False, "broke") for name in expected}
    outcomes = {n: j.outcome for n, j in judge(broken, chance).items()}
    assert outcomes == {
        "settlement": "expected-failure",
        "bank": "unexpected-failure",  # a must-hold check still must hold
        "delivery": "expected-failure",
    }


def test_a_random_kill_that_misses_naive_afters_window_is_not_an_alarm() -> None:
    # Seed 1's kills miss the producers: every payment's event is published.
    res = run_test(
        TestSpec(chapter="ch5", variant="naive-after", nemeses=("kill",), time_s=8.0, seed=1)
    )
    assert res.verdicts["settlement"].valid is True
    assert res.judged["settlement"].outcome == "pass"
    # naive-after sends no half message: no "nothing to judge" verdict either.
    assert "half-messages" not in res.verdicts
    assert run_outcome(res) == "as-expected-valid"
