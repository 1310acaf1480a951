"""Every chapter holds to what it declares, scenario by scenario (seed 1, short runs)."""

from __future__ import annotations

import pytest

from tests.chapters.conftest import run

CASES = (
    [("ch1", "monolith", scenario) for scenario in ("steady", "double11", "crash", "partition")]
    + [
        ("ch2", variant, scenario)
        for variant in ("tcc", "naive")
        for scenario in ("steady", "crash", "partition")
    ]
    + [("ch2", "tcc", "double11")]
    + [("ch3", "async", scenario) for scenario in ("steady", "double11", "crash", "partition")]
)


@pytest.mark.parametrize(("chapter", "variant", "scenario"), CASES)
def test_the_stage_behaves_as_its_chapter_says(chapter: str, variant: str, scenario: str) -> None:
    result = run(chapter, scenario, seed=1, variant=variant, duration_s=2.0)
    bad = {n: (j.outcome, result.verdicts[n].summary) for n, j in result.judged.items() if not j.ok}
    assert not bad, bad
    summary = result.summary
    assert summary["payments"] > 100 and summary["offered_tps"] > 0
    for key in ("chapter", "scenario", "seed", "goodput_tps", "p50_ms", "p99_ms", "error_rate"):
        assert key in summary
