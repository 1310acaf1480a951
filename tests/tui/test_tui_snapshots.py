"""SVG snapshots of the main screens at fixed seeds (`--snapshot-update` rewrites them).

Every scene is deterministic: a fixed seed, a fixed amount of simulated
time advanced with the worker off, and no wall-clock text in the frame.
"""

from __future__ import annotations

from typing import Any

import pytest

from tui.app import D11App
from tui.scenes import SCENES, SIZE
from tui.session import SessionConfig


def _before(theme: str) -> Any:
    async def run_before(pilot: Any) -> None:
        pilot.app.theme = theme
        await pilot.pause()
        pilot.app.show_frame()
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("name", ["tui-steady", "tui-crash", "tui-light", "tui-attach"])
def test_main_screens(snap_compare: Any, name: str) -> None:
    scene = SCENES[name]
    assert snap_compare(scene.make(), terminal_size=SIZE, run_before=_before(scene.theme))


def test_too_small_screen(snap_compare: Any) -> None:
    app = D11App(config=SessionConfig(chapter="ch1", seed=1), autorun=False)
    assert snap_compare(app, terminal_size=(80, 20))
