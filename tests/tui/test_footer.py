"""The footer leaves out whole keys, never cuts one, and never leaves out q."""

from __future__ import annotations

import asyncio

from textual.widgets._footer import FooterKey

from tui.app import MIN_HEIGHT, MIN_WIDTH, D11App
from tui.session import Session, SessionConfig
from tui.widgets.footer import fitted_keys, key_width


def test_fitted_keys_leaves_out_chapter_keys_first_then_by_order_never_quit() -> None:
    keys = [
        ("kill", key_width("k", "kill")),
        ("skew", key_width("s", "skew")),
        ("quit", key_width("q", "quit")),
        ("chapter('stall')", key_width("l", "stall group")),
        ("chapter('kill-producer')", key_width("x", "kill mid-txn")),
    ]
    every = sum(c for _, c in keys)
    assert fitted_keys(keys, every) == {0, 1, 2, 3, 4}
    assert fitted_keys(keys, every - 1) == {0, 1, 2, 3}  # the last chapter key first
    assert fitted_keys(keys, key_width("k", "kill") + key_width("q", "quit")) == {0, 2}
    assert fitted_keys(keys, 1) == {2}  # q stays, even alone and too wide


def _footer_text(app: D11App) -> list[str]:
    return [f"{k.key_display} {k.description}" for k in app.screen.query(FooterKey)]


def test_the_footer_fits_every_width_from_the_smallest_and_keeps_q() -> None:
    session = Session(SessionConfig(chapter="ch5", scenario="steady", seed=1))

    async def run() -> None:
        app = D11App(session, autorun=False)
        async with app.run_test(size=(150, 40)) as pilot:
            await pilot.pause()
            wide = _footer_text(app)
            assert "l stall group" in wide and "q quit" in wide
            for width in (120, MIN_WIDTH):
                await pilot.resize_terminal(width, max(MIN_HEIGHT, 30))
                for _ in range(40):  # bounded (2 s): the footer refits after the resize
                    await pilot.pause(0.05)
                    keys = list(app.screen.query(FooterKey))
                    if sum(key_width(k.key_display, k.description) for k in keys) <= width:
                        break
                shown = _footer_text(app)
                assert "q quit" in shown and "w save" in shown and "j judge" in shown
                assert sum(key_width(*s.split(" ", 1)) for s in shown) <= width + 1, shown
                # Whole keys, some left out, none cut (narrower than 140, v is back).
                assert set(shown) - {"v events"} < set(wide)

    asyncio.run(run())
