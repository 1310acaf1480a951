"""The checks panel says how old its verdicts are when the rounds fall behind the run.

Trial F1: under load the header stayed at "judged at t=7.5 s" while the run went
on to t=18 s, and red verdicts sat on screen with nothing saying they were old.
"""

from __future__ import annotations

from tests.tui.test_tui_app import SIZE, aio, text_of
from tui.app import D11App
from tui.session import Session
from tui.widgets import ChecksPanel


@aio
async def test_old_verdicts_say_their_age_and_a_running_round_says_judging(
    session: Session,
) -> None:
    session.run_checks()
    app = D11App(session, autorun=False)
    async with app.run_test(size=SIZE) as pilot:
        app.show_frame()
        await pilot.pause()
        fresh = text_of(app, ChecksPanel)
        assert "judged at t=1.5 s on" in fresh and "ago" not in fresh, fresh
        session.step(10_000.0)  # the run goes on; no round judges it
        session.checks_running = True  # one is under way
        app.show_frame()
        await pilot.pause()
        old = text_of(app, ChecksPanel).splitlines()[0]
        assert old.startswith("judged at t=1.5 s (10 s ago) on"), old
        assert old.endswith("; judging…"), old
