"""What a newcomer trial found misleading in the TUI, each pinned by a test.

Chapter 5's `x` said "r restarts it" while `r` restarted the topology's
selection, another node.
"""

from __future__ import annotations

import asyncio

from tui.app import D11App
from tui.session import Session, SessionConfig
from tui.widgets.topology import TopologyPanel

SIZE = (200, 50)


def test_ch5_x_selects_the_killed_producer_so_r_restarts_it() -> None:
    session = Session(SessionConfig(chapter="ch5", seed=1))
    session.step(2_000.0)
    app = D11App(session, autorun=False)

    async def run() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            before = app.screen.query_one(TopologyPanel).selected
            assert before not in session.dep.producers, before  # the trial's case
            await pilot.press("x")
            await pilot.pause()
            victim = next(p for p in session.dep.producers if session.rt.status(p) == "crashed")
            assert "r restarts it" in session.message, session.message
            app.show_frame()
            await pilot.pause()
            assert app.screen.query_one(TopologyPanel).selected == victim
            await pilot.press("r")
            await pilot.pause()
            assert session.rt.status(victim) == "up", session.message
            assert session.rt.status(before) == "up"

    asyncio.run(run())


# -- the capstone's pipeline check on a prefix ------------------------------------------
def test_double11_pipeline_live_calls_paid_not_yet_settled_in_flight() -> None:
    """Seen: `double11:pipeline` INVALID "paid-not-settled" 10 s into a live run, no
    final reads: the settlements of the latest payments were still in the queue."""
    from chapters.capstone.pipeline import check_pipeline

    s = Session(SessionConfig(chapter="double11", scenario="steady", seed=1))
    assert "double11:pipeline" in s.live_checks
    s.step(1_400.0)
    raw = check_pipeline(s.check_input()[0])  # the end-of-run form, on this prefix
    assert raw.valid is False and set(raw.details["problems"]) == {"paid-not-settled"}, raw
    live = next(c for c in s.run_checks() if c.name == "double11:pipeline")
    assert live.valid is True and "in flight" in live.summary, live


def test_double11_pipeline_live_stays_red_for_a_settlement_twice() -> None:
    from checks.verdict import Verdict
    from tui.views.capstone import live_pipeline

    problems = [{"kind": "paid-not-settled", "payment": "p1"},
                {"kind": "settled-twice", "payment": "p2", "times": 2}]  # fmt: skip
    counts = {"paid-not-settled": 1, "settled-twice": 1}
    broken = Verdict("pipeline", False, "disagree", {"paid": 2, "problems": counts}, problems)
    verdict = live_pipeline(lambda h: broken)([])
    assert verdict.valid is False and "settled-twice x1" in verdict.summary, verdict
    assert verdict.witness == problems[1:]
