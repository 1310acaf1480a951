"""A run's digest does not depend on how `run_until` slices it.

The TUI moves a run 20 ms at a time (and reads the digest when it saves);
`d11 run` and `d11 replay` run a scenario in one piece. The digest folds its
trail at fixed counts of the whole run's events and reading it folds nothing,
so both give one digest: before, a TUI save replayed with exit 1.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chapters import get_stage
from reference.runtime.sim import SimRuntime

END_MS = 2_000.0  # past chapter 4's crash (at 1.8 s): some 20,000 events


def ch4_crash(seed: int) -> tuple[SimRuntime, Any]:
    stage = get_stage("ch4")
    options = stage.options(seed=seed)
    rt = SimRuntime(topology=stage.topology(options), seed=seed)
    dep = stage.build(rt, options)
    rt.start()
    dep.apply_scenario("crash")
    return rt, dep


@cache
def in_one_piece(seed: int) -> tuple[str, int]:
    rt, _ = ch4_crash(seed)
    rt.run_until(END_MS)
    return rt.trace_digest(), rt.events_processed


@pytest.mark.slow
@settings(max_examples=4, deadline=None, derandomize=True, database=None)
@given(
    cuts_ms=st.lists(st.floats(0.0, END_MS, allow_nan=False), min_size=1, max_size=60),
    read_digest=st.booleans(),
)
def test_a_run_in_random_slices_digests_as_the_run_in_one_piece(
    cuts_ms: list[float], read_digest: bool
) -> None:
    rt, _ = ch4_crash(3)
    for cut_ms in sorted(cuts_ms):
        rt.run_until(max(cut_ms, rt.now_ms))
        if read_digest:
            rt.trace_digest()  # a save mid-run reads it
    rt.run_until(END_MS)
    assert (rt.trace_digest(), rt.events_processed) == in_one_piece(3)


def test_tui_sized_slices_digest_as_one_piece() -> None:
    rt, _ = ch4_crash(3)
    while rt.now_ms < END_MS:
        rt.run_until(min(END_MS, rt.now_ms + 20.0))  # the TUI's SLICE_MS
    assert (rt.trace_digest(), rt.events_processed) == in_one_piece(3)
    assert in_one_piece(3)[1] > 4_096 * 2, "enough events for the trail to fold more than once"
