"""Chapter 2: capacity grows with shards; naive transfers lose money; TCC does not."""

from __future__ import annotations

import pytest

from tests.chapters.conftest import run

TCC_SEEDS = range(1, 7)
TCC_SEEDS_SLOW = range(7, 41)
NAIVE_SEEDS = range(1, 4)


def test_goodput_grows_with_shards() -> None:
    goodput = {
        n: run("ch2", "saturate", seed=1, shards=n, duration_s=1.0, checks=()).summary[
            "goodput_tps"
        ]
        for n in (1, 2, 4, 8)
    }
    assert goodput[2] < goodput[4] < goodput[8]
    assert goodput[8] > 1.4 * goodput[1]  # TCC costs four transactions where one did


def test_a_hot_merchant_makes_a_hot_shard() -> None:
    s = run("ch2", "steady", seed=1, variant="tcc", duration_s=2.0).summary
    assert s["load"]["hottest_over_mean"] > 1.1  # merchant 0's shard does the most work


def test_the_naive_transfer_is_caught_by_the_bank_checker() -> None:
    caught = []
    for seed in NAIVE_SEEDS:
        result = run("ch2", "crash", seed=seed, variant="naive", duration_s=2.0, checks=("bank",))
        if result.verdicts["bank"].valid is False:
            caught.append(seed)
            assert result.judged["bank"].outcome == "expected-failure"
            assert "wrong-total" in result.summary["checks"]["bank"]["details"]["errors"]
            break
    assert caught, f"the naive transfer survived seeds {list(NAIVE_SEEDS)}"


@pytest.mark.parametrize("seed", TCC_SEEDS)
def test_tcc_with_the_fence_keeps_the_bank_whole_through_crashes(seed: int) -> None:
    result = run("ch2", "crash", seed=seed, variant="tcc", duration_s=2.0, checks=("bank",))
    assert result.verdicts["bank"].valid is True, result.verdicts["bank"].summary
    kinds = [kind for _, kind, _ in result.summary["timeline"]]
    assert kinds.count("crash") == 2  # a participant and a coordinator


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["crash", "partition"])
@pytest.mark.parametrize("seed", TCC_SEEDS_SLOW)
def test_tcc_holds_over_many_seeds(seed: int, scenario: str) -> None:
    result = run("ch2", scenario, seed=seed, variant="tcc", duration_s=2.0)
    assert result.verdicts["bank"].valid is True, result.verdicts["bank"].summary
    assert result.verdicts["ledger"].valid is not False, result.verdicts["ledger"].summary
