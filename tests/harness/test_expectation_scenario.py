"""One rule judges a run's faults, whoever caused them: a spec's nemeses or a person in the TUI."""

from __future__ import annotations

from dataclasses import replace

import pytest

from checks.harness.spec import TestSpec, expectation_scenario, scenario_of_faults


@pytest.mark.parametrize(
    ("kinds", "scenario"),
    [
        ({"kill"}, "crash"),
        ({"lose-unsynced", "pause"}, "crash"),
        ({"crash"}, "crash"),  # the TUI's crash key
        ({"kill", "partition-halves"}, "crash"),  # a crash outweighs a cut
        ({"partition-halves"}, "partition"),
        ({"isolate-city"}, "partition"),
        ({"partition"}, "partition"),  # the TUI's cut keys
        ({"pause", "skew"}, None),
        (set(), None),
    ],
)
def test_the_faults_pick_the_scenario(kinds: set[str], scenario: str | None) -> None:
    assert scenario_of_faults(kinds) == scenario


def test_a_spec_without_such_faults_is_judged_by_its_workload() -> None:
    spec = TestSpec(chapter="ch1", nemeses=("pause",))
    assert expectation_scenario(spec) == "steady"
    assert expectation_scenario(replace(spec, workload="double11")) == "double11"
    assert expectation_scenario(replace(spec, nemeses=("kill",))) == "crash"
