"""`d11 test`'s closing line counts the scenario's scripted faults beside the nemesis's."""

from __future__ import annotations

import dataclasses

from checks.harness.cli import _faults_words, _outcome_json
from checks.harness.spec import TestResult, TestSpec
from checks.nemesis import Action, Schedule


def result(actions: tuple[Action, ...], timeline: list[tuple[float, str, str]]) -> TestResult:
    return TestResult(
        spec=TestSpec(chapter="ch5", scenario="crash"),
        schedule=Schedule(actions),
        history=[],
        verdicts={},
        judged={},
        valid=True,
        digest="",
        end_ms=0.0,
        timeline=timeline,
        node_logs={},
        summary={},
    )


def test_a_scenarios_own_crash_is_counted() -> None:
    """Seen: `d11 test ch5 --scenario crash` printed "4841 events, 0 faults"."""
    timeline = [
        (900.0, "crash", "producer-hz: mid-transaction"),
        (1_000.0, "check-back", "3 half messages asked about"),
        (2_000.0, "pause", "settlement-hz"),
        (3_000.0, "final-phase", "heal"),
    ]
    r = result((), timeline)
    assert _faults_words(r) == "0 nemesis faults (the scenario's script: crash x1, pause x1)"
    assert _outcome_json(r, None)["scenario_faults"] == {"crash": 1, "pause": 1}


def test_a_nemesis_alone_is_counted_as_before() -> None:
    actions = (
        Action(100.0, "crash", {"node": "n1"}, "f1"),
        Action(900.0, "restart", {"node": "n1"}, "f1"),
    )
    r = result(actions, [])
    assert _faults_words(r) == "1 nemesis fault"
    assert _outcome_json(r, None)["faults"] == 1


def test_a_live_sessions_faults_are_the_keys_pressed_not_a_script() -> None:
    """Seen: a TUI save's replay called its key presses "the scenario's script"."""
    r = dataclasses.replace(result((), [(900.0, "crash", "pay-hz")]), origin="tui")
    assert _faults_words(r) == "0 nemesis faults (keys pressed in the live view: crash x1)"
