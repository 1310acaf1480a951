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
