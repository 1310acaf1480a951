"""The Stage API: registry, options, expectations and judgement."""

from __future__ import annotations

import pytest

from chapters import STAGES, get_stage
from chapters.stage import Expectation, StageError, judge
from checks.verdict import Verdict


def test_the_registry_knows_the_three_chapters_and_their_aliases() -> None:
    for name, alias in (("ch1", "monolith"), ("ch2", "sharding"), ("ch3", "cells")):
        assert STAGES[name] is STAGES[alias] and STAGES[name].id == name
    with pytest.raises(StageError, match="no chapter 'ch9'"):
        get_stage("ch9")


@pytest.mark.parametrize("name", ["ch1", "ch2", "ch3"])
def test_every_stage_declares_the_four_scenarios_and_a_default_variant(name: str) -> None:
    stage = get_stage(name)
    assert {"steady", "double11", "crash", "partition"} <= set(stage.scenarios)
    assert stage.default_variant in stage.variants
    assert 0 < stage.default_scale <= 1


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("ch2", {"variant": "2pc"}, "no variant '2pc'"),
        ("ch2", {"shards": 99}, "--shards must be between"),
        ("ch3", {"shards": 2}, "use --cells"),
        ("ch1", {"shards": 4}, "one node"),
        ("ch1", {"duration_s": 0}, "--duration-s"),
    ],
)
def test_bad_options_are_one_line_errors(name: str, options: dict, message: str) -> None:
    with pytest.raises(StageError, match=message):
        get_stage(name).options(**options)


def test_judge_labels_expected_and_unexpected_outcomes() -> None:
    def v(valid: bool | str) -> Verdict:
        return Verdict("bank", valid, "s")  # type: ignore[arg-type]

    must_fail = {"bank": Expectation(False, "why")}
    may_fail = {"bank": Expectation(False, "why", always=False)}
    assert judge({"bank": v(False)}, must_fail)["bank"].outcome == "expected-failure"
    assert judge({"bank": v(True)}, must_fail)["bank"].outcome == "unexpected-pass"
    assert judge({"bank": v(True)}, may_fail)["bank"].outcome == "pass"
    assert judge({"bank": v(False)}, {})["bank"].outcome == "unexpected-failure"
    assert not judge({"bank": v(False)}, {})["bank"].ok
    assert judge({"bank": v("unknown")}, {})["bank"].ok
