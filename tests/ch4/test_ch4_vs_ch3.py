"""The headline: chapter 3's lost payments are gone, under the same seed and the same cut.

Chapter 3 replicates each cell asynchronously to a standby in the other city;
when Shanghai is lost, the payments its cells acknowledged in the last
shipping window are gone (RPO > 0). Chapter 4 loses the same city under the
same seed and loses nothing: every acknowledged payment was on disk in two
cities before its client heard "paid".
"""

from __future__ import annotations

import pytest
from ch4_runs import CH3_LOSING_SEEDS, failing, run


def _compare(seed: int) -> None:
    ch3 = run("ch3", "crash", seed=seed)
    lost3 = ch3.verdicts["lost-payments"]
    assert lost3.valid is False, f"seed {seed}: chapter 3 lost nothing ({lost3.summary})"
    assert ch3.verdicts["ledger"].valid is False
    assert ch3.as_expected  # chapter 3 declares the loss as its lesson
    ch4 = run("ch4", "crash", seed=seed)
    assert ch4.verdicts["lost-payments"].valid is True, ch4.verdicts["lost-payments"].summary
    assert not failing(ch4), failing(ch4)
    assert ch4.summary["ok"] > 0.95 * ch4.summary["payments"]


def test_chapter_3_loses_payments_chapter_4_does_not() -> None:
    _compare(3)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [s for s in CH3_LOSING_SEEDS if s != 3])
def test_chapter_3_loses_payments_chapter_4_does_not_more_seeds(seed: int) -> None:
    _compare(seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1, 13))
def test_chapter_4_never_loses_where_chapter_3_may(seed: int) -> None:
    """Over more seeds: whatever chapter 3 does, chapter 4 loses nothing."""
    ch4 = run("ch4", "crash", seed=seed)
    assert not failing(ch4), failing(ch4)
