"""Replaying a saved live session: the hook the program's top installs.

A store folder saved from `d11 tui` holds `session.json`: the session's
config and the script of what the person did (each control at its simulated
instant). Run again on the same seed it gives the same run, event for event:
the simulator's digest does not depend on how the live view sliced time.
The harness cannot run a session itself (sessions live in `tui/`, a floor
above), so the top hands it the function that does (`use_session_replay`),
as it hands it the chapters' stages (`checks.harness.contract.use_stages`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["SESSION_FILE", "session_replay", "use_session_replay"]

SESSION_FILE = "session.json"

SessionReplay = Callable[[Path], Any]
"""folder -> the replayed run's `TestResult` (HarnessError if the folder cannot be run)."""

_replay: list[SessionReplay] = []


def use_session_replay(replay: SessionReplay) -> None:
    """Install how a saved session is run again (once, at the program's top)."""
    _replay[:] = [replay]


def session_replay(folder: Path) -> SessionReplay | None:
    """The replay for `folder` if it is a saved session and one is installed, else None."""
    if not (folder / SESSION_FILE).is_file() or not _replay:
        return None
    return _replay[0]
