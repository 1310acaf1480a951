"""`d11 tui double11` rolls its traffic window by window, and the next window's
pay-back planning does not crash on the capstone's accounts.

Before: about 3 s in, the steady night raised KeyError 'm1@sz-1@settled' in
the pay-back (chapter 5's settled accounts, counted for the capstone's ch5
part, whose cells settle into accounts it does not hold).
"""

from __future__ import annotations

import pytest

from tui.session import Session, SessionConfig


# 12.3 s of CPU (the capstone at its default scale for 4.5 s simulated; a session
# takes no --scale): out of the default suite, run by name in .ci/run.
@pytest.mark.slow
def test_the_capstone_rolls_into_its_next_traffic_window() -> None:
    s = Session(SessionConfig(chapter="double11", scenario="steady", seed=1))
    while s.rt.now_ms < 3_000.0:
        s.step(100.0)
    events = s.history_len()
    while s.rt.now_ms < 4_500.0:  # the next window is planned in here
        s.step(100.0)
    assert s.history_len() > events + 1_000  # still paying
