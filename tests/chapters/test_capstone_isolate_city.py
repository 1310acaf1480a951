"""The capstone under `--nemesis isolate-city`: two failover controllers, one cut city.

Before the rules log (`reference/cells/rules_log.py`), the cut-off controller
failed the other cities' cells over while the other controller failed the cut
city's over, both as "version 2": `double11:one-owner` INVALID, 67 times a
range had two owners at seed 1 and 61 at seed 2. The cheap run below has the
same schedule as seed 1's first cut (Shanghai, 464 to 1,253 ms) and failed
the same way on the old code (66 times); the full runs are `-m slow`.
"""

from __future__ import annotations

import pytest

from checks.harness.runner import TestSpec, run_test
from tests.chapters.conftest import not_valid


@pytest.mark.slow
def test_a_cheap_seed_under_isolate_city_has_one_owner_per_range() -> None:
    spec = TestSpec(
        chapter="double11", nemeses=("isolate-city",), time_s=2.0, seed=1, scale=1 / 4000
    )
    result = run_test(spec)
    assert [a.op for a in result.schedule.actions] == ["isolate", "heal"]
    assert result.valid is True, not_valid(result.verdicts)
    owner = result.verdicts["double11:one-owner"]
    assert owner.valid is True, owner.summary


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_isolate_city_seeds_that_had_two_owners_are_valid(seed: int) -> None:
    """`d11 test double11 --nemesis isolate-city --seed 1` (and 2), as the CLI runs them."""
    result = run_test(TestSpec(chapter="double11", nemeses=("isolate-city",), seed=seed))
    assert result.valid is True, not_valid(result.verdicts)
