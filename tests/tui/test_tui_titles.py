"""Panel titles are never cut: each panel shows the fullest title its top edge holds.

At the smallest size the view accepts (100 x 28) the traffic panel is 34
columns wide and its full title, 42, came out cut; below that size (an 80 x 24
terminal) the view says it is too small, with the size it is now.
"""

from __future__ import annotations

from rich.cells import cell_len

from tests.tui.test_tui_app import SIZE, aio
from tui.app import MIN_HEIGHT, MIN_WIDTH, TITLE_MARGIN, D11App, MainScreen, TooSmall
from tui.session import Session, SessionConfig
from tui.widgets.titles import fitted_title


async def settled(pilot: object, app: D11App) -> dict[str, tuple[str, int]]:
    """The titles once layout has settled: each the fullest its panel's width holds.

    A loaded machine may need several frames to lay out; bounded (5 s), so a
    title that is never refitted still fails the test.
    """
    now = titles(app)
    for _ in range(100):
        await pilot.pause(0.05)  # type: ignore[attr-defined]
        now = titles(app)
        if all(w > 0 and t == fitted_title(MainScreen.TITLES[p], w) for p, (t, w) in now.items()):
            break
    return now


def titles(app: D11App) -> dict[str, tuple[str, int]]:
    out = {}
    for panel_id in MainScreen.TITLES:
        panel = app.screen.query_one(f"#{panel_id}")
        out[panel_id] = (str(panel.border_title), panel.size.width)
    return out


@aio
async def test_titles_fit_at_the_smallest_size_and_grow_back() -> None:
    session = Session(SessionConfig(chapter="ch4", seed=3))
    app = D11App(session, autorun=False)
    async with app.run_test(size=(MIN_WIDTH, MIN_HEIGHT)) as pilot:
        small = await settled(pilot, app)
        for panel_id, (title, width) in small.items():
            assert cell_len(title) + TITLE_MARGIN <= width, (panel_id, title, width)
            assert title in MainScreen.TITLES[panel_id]
        assert small["traffic"][0] != MainScreen.TITLES["traffic"][0], "it did not fit: shorter"
        await pilot.resize_terminal(*SIZE)
        wide = await settled(pilot, app)
        assert all(wide[p][0] == MainScreen.TITLES[p][0] for p in wide), wide


@aio
async def test_an_80_by_24_terminal_is_told_its_size_on_every_resize() -> None:
    session = Session(SessionConfig(chapter="ch1", seed=3))
    app = D11App(session, autorun=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        message = app.screen.query_one(TooSmall)
        assert message.display
        text = str(message.render())
        assert "Terminal too small: 80 x 24" in text
        assert all(cell_len(line) <= 80 for line in text.splitlines())
        await pilot.resize_terminal(90, 24)
        await pilot.pause()
        assert "Terminal too small: 90 x 24" in str(message.render())
