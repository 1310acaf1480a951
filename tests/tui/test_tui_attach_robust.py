"""`d11 tui --attach` on a history of odd shapes: shown, never a crash.

The store loader refuses a folder whose files are broken or edited; what it
lets through (a nemesis event of a shape no nemesis writes, opening balances
that are not numbers) must still scrub: the odd event is shown as unreadable,
the bank check says it cannot check. And if the app ever dies all the same,
`d11 tui` says so in one line and exits 2, never 0 after a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from textual.worker import WorkerFailed

from checks.history import Event
from tests.tui.test_tui_app import SIZE, aio, text_of
from tui.app import D11App
from tui.replay import Replay
from tui.widgets import ChecksPanel, EventsPanel

ODD_NEMESIS = [
    Event("info", "nemesis", "skew", {"node": "monolith", "skew_ms": "abc"}, 300.0),
    Event("info", "nemesis", "skew", {"node": "monolith", "skew_ms": 10**400}, 310.0),
    Event("info", "nemesis", "crash", {"target": 5}, 320.0),
    Event("info", "nemesis", "partition", {"groups": 5}, 330.0),
    Event("info", "nemesis", "cut", {"links": [["monolith"]]}, 340.0),
    Event("info", "nemesis", "isolate", {"node": ["x"]}, 350.0),
]


def odd_replay(stored_run: Path) -> Replay:
    replay = Replay(stored_run)
    replay.history = sorted([*replay.history, *ODD_NEMESIS], key=lambda e: e.time_ms)
    return replay


def test_odd_nemesis_events_are_shown_not_obeyed(stored_run: Path) -> None:
    replay = odd_replay(stored_run)
    for at_ms in (0.0, 305.0, 335.0, 1_000.0, -1.0):
        replay.scrub_to(at_ms)
        frame = replay.frame()
    unreadable = [e for e in frame.events if e.kind == "unreadable"]
    assert len(unreadable) == len(ODD_NEMESIS), [e.detail for e in frame.events]
    assert all(e.severity == "warn" for e in unreadable)
    assert "skew_ms" in unreadable[0].detail and "'abc'" in unreadable[0].detail
    assert all(n.skew_ms == 0.0 for n in frame.nodes), "an unreadable skew moves no clock"


def test_opening_balances_that_are_not_numbers_leave_the_bank_check_unknown(
    stored_run: Path,
) -> None:
    replay = Replay(stored_run)
    replay._initial = {"u1": "abc", "u2": None}
    replay.scrub_to(-1.0)
    bank = next(c for c in replay.frame().checks if c.name == "bank now")
    assert bank.valid == "unknown"
    assert bank.summary.startswith("cannot check this history: ")


@aio
async def test_scrubbing_an_odd_history_keeps_the_app_running(stored_run: Path) -> None:
    app = D11App(odd_replay(stored_run))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("right", "right", "shift+right", "left", "end", "home", "right")
        await pilot.pause(0.3)
        assert app.return_code is None and app.crash is None
        assert "unreadable" in text_of(app, EventsPanel)
        assert "bank now" in text_of(app, ChecksPanel)


@aio
async def test_an_app_that_dies_keeps_its_error_and_shows_no_traceback(stored_run: Path) -> None:
    replay = Replay(stored_run)
    app = D11App(replay)

    def broken(points: int = 120) -> None:
        raise RuntimeError("the frame could not be built")

    with pytest.raises(WorkerFailed, match="could not be built"):  # Pilot re-raises it
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(0.2)
            replay.frame = broken  # type: ignore[assignment,method-assign]
            await pilot.press("right")
            await pilot.pause(0.5)
    assert isinstance(app.crash, RuntimeError)
    assert app.return_code == 1
    assert not app._exit_renderables, "Textual's traceback screen is not shown"


def test_d11_tui_exits_2_with_one_line_when_the_app_died(
    stored_run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import tui.cli

    def died(self: D11App) -> None:
        self.crash = KeyError("wallet 7")

    monkeypatch.setattr(D11App, "run", died)
    monkeypatch.delenv("D11_DEBUG", raising=False)
    monkeypatch.setattr(sys, "argv", ["d11", "tui", "--attach", str(stored_run)])
    with pytest.raises(SystemExit) as exited:
        tui.cli.main()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "KeyError" in err and "wallet 7" in err and "Traceback" not in err
