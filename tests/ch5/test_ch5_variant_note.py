"""`d11 run ch5 --variant naive-after` on the steady default passes every check:
its bug needs a fault steady does not bring. The run says which scenario shows it."""

from __future__ import annotations

import pytest

from chapters.ch5_mq.plan import VARIANT_BREAKS
from chapters.ch5_mq.stage import MqStage


@pytest.mark.parametrize("variant", ["naive-after", "no-dedup"])
def test_a_variant_whose_break_needs_a_fault_names_the_scenarios_that_bring_one(
    variant: str,
) -> None:
    note = MqStage().variant_note(variant, "steady")
    assert note is not None and note.startswith(f"{variant} breaks under --scenario crash")
    assert "steady brings no fault" in note
    for scenario in VARIANT_BREAKS[variant]:
        assert f"--scenario {scenario}" in note
        assert MqStage().variant_note(variant, scenario) is None  # it shows there


def test_nothing_to_say_where_the_break_shows_everywhere_or_nowhere() -> None:
    stage = MqStage()
    assert stage.variant_note("naive-before", "steady") is None  # declines: every scenario
    assert stage.variant_note("transactional", "steady") is None  # no break at all
