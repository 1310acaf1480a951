"""The node processes' collector policy: young collections rarer while it holds, then as before."""

from __future__ import annotations

import asyncio
import gc

from reference.runtime.gcpolicy import keep_frozen
from reference.sim.kernel import GC_THRESHOLDS


def test_keep_frozen_collects_at_the_simulators_thresholds_and_gives_them_back() -> None:
    before = gc.get_threshold()
    loop = asyncio.new_event_loop()
    try:
        cancel = keep_frozen(loop)
        assert gc.get_threshold() == GC_THRESHOLDS != before
        cancel()
        assert gc.get_threshold() == before  # a harness (or pytest) process gets its own back
    finally:
        loop.close()
        gc.set_threshold(*before)
