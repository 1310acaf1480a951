"""A long session: the header follows the traffic, the money circulates, j again."""

from __future__ import annotations

import asyncio

from tui.app import D11App
from tui.session import SPIKE_WINDOW_MS, Session, SessionConfig
from tui.widgets import StatusBar

SIZE = (160, 45)


def header(app: D11App) -> str:
    return app.screen.query_one(StatusBar).render().plain  # type: ignore[union-attr]


def test_the_header_says_spike_until_the_spike_ends_then_steady() -> None:
    """The re-arm plans steady traffic a second before the spike's window ends: the
    header said "steady" while the spike still ran (and stayed on the last plan)."""
    session = Session(SessionConfig(chapter="ch6", seed=1))
    session.step(1_000.0)
    app = D11App(session, autorun=False)

    async def run() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert "traffic steady" in header(app), header(app)
            await pilot.press("m")
            await pilot.pause()
            assert "traffic double11 spike" in header(app), header(app)
            session.step(SPIKE_WINDOW_MS - 500.0)  # past the re-arm, inside the spike
            app.show_frame()
            await pilot.pause()
            assert "traffic double11 spike" in header(app), header(app)
            session.step(1_000.0)  # the spike's window is over
            app.show_frame()
            await pilot.pause()
            assert "traffic steady" in header(app), header(app)

    asyncio.run(run())
