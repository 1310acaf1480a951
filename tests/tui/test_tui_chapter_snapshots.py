"""SVG snapshots of chapters 5-7's panels (`--snapshot-update` rewrites them).

Fixed scenes (`tui.scenes`): a fixed seed, fixed simulated time advanced
with the worker off, each chapter key pressed at a fixed moment; nothing on
screen depends on the wall clock.
"""

from __future__ import annotations

from typing import Any

import pytest

from tui.scenes import SCENES, SIZE


async def _drawn(pilot: Any) -> None:
    await pilot.pause()
    pilot.app.show_frame()
    await pilot.pause()


@pytest.mark.parametrize("name", ["tui-queues", "tui-controls", "tui-rehearsal"])
def test_chapter_panels(snap_compare: Any, name: str) -> None:
    assert snap_compare(SCENES[name].make(), terminal_size=SIZE, run_before=_drawn)
