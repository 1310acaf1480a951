"""The app through the Pilot: keys change the simulation and the screen."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from tui.app import MIN_HEIGHT, MIN_WIDTH, D11App, TooSmall
from tui.replay import Replay
from tui.session import Session, SessionConfig
from tui.widgets import ChecksPanel, EventsPanel, StatusBar, TopologyPanel, TrafficPanel

SIZE = (160, 45)


def aio(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on a fresh event loop (no async pytest plugin needed)."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))

    return run


def text_of(app: D11App, widget: type) -> str:
    w = app.screen.query_one(widget)
    if isinstance(w, EventsPanel):
        return "\n".join("".join(seg.text for seg in line) for line in w.lines)
    if hasattr(w, "plain"):
        return w.plain()
    return w.render().plain  # type: ignore[union-attr]


@aio
async def test_kill_marks_the_node_down_and_logs_it(session: Session) -> None:
    app = D11App(session, autorun=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("k")
        await pilot.pause()
        assert session.rt.status("monolith") == "crashed"
        assert "✖ monolith" in text_of(app, TopologyPanel)
        assert "down" in text_of(app, TopologyPanel)
        log = text_of(app, EventsPanel)
        assert "crash" in log and "monolith" in log
        await pilot.press("r")
        await pilot.pause()
        assert session.rt.status("monolith") == "up"
        assert "restart" in text_of(app, EventsPanel)


@aio
async def test_cut_and_heal_show_in_topology_events_and_traffic(session: Session) -> None:
    app = D11App(session, autorun=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c")
        session.step(1_500.0)
        app.show_frame()
        await pilot.pause()
        topo = text_of(app, TopologyPanel)
        assert "hz-1 ✂ hz-users" in topo
        assert "cut off" in text_of(app, EventsPanel)
        assert "timeout" in text_of(app, TrafficPanel), "the users cannot reach the monolith"
        await pilot.press("h")
        await pilot.pause()
        assert "links all up" in text_of(app, TopologyPanel)
        # A partitioned monolith is an outage, never an inconsistency: judged, it holds.
        await pilot.press("j")
        session.step(session.dep.end_ms - session.rt.now_ms + 100.0)
        session.run_checks()
        app.show_frame()
        await pilot.pause()
        checks = text_of(app, ChecksPanel)
        assert "✔ bank" in checks and "✔ ledger" in checks, checks


@aio
async def test_the_header_keeps_the_clock_and_the_speed_at_the_smallest_size() -> None:
    """At 100 columns chapter 5's title pushed t= and the speed off the header."""
    app = D11App(Session(SessionConfig(chapter="ch5", seed=1)), autorun=False)
    async with app.run_test(size=(MIN_WIDTH, MIN_HEIGHT)) as pilot:
        app.show_frame()
        await pilot.pause()
        drawn = app.screen.query_one(StatusBar).render_line(0)  # what is on screen
        line = "".join(segment.text for segment in drawn)
        assert "t=0:00.000" in line and "▶ x1" in line, line
    app = D11App(Session(SessionConfig(chapter="ch5", seed=1)), autorun=False)
    async with app.run_test(size=(200, 40)) as pilot:
        app.show_frame()
        await pilot.pause()
        assert "The transactional message queue" in text_of(app, StatusBar)


@aio
async def test_speed_pause_and_step_keys(session: Session) -> None:
    app = D11App(session, autorun=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("plus", "plus")
        assert session.speed == 5.0
        assert "x5" in text_of(app, StatusBar)
        await pilot.press("minus")
        assert session.speed == 2.0
        await pilot.press("space")
        assert session.paused and "paused" in text_of(app, StatusBar)
        before = session.rt.now_ms
        await pilot.press("full_stop")
        assert session.rt.now_ms == pytest.approx(before + 100.0)


@aio
async def test_arrow_keys_pick_the_node_the_fault_keys_hit() -> None:
    app = D11App(config=SessionConfig(chapter="ch1", seed=1), autorun=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        topo = app.screen.query_one(TopologyPanel)
        assert topo.selected == "monolith", "clients are never selectable"
        await pilot.press("down")
        assert topo.selected == "monolith"


@aio
async def test_a_terminal_too_small_gets_a_message() -> None:
    app = D11App(config=SessionConfig(chapter="ch1", seed=1), autorun=False)
    async with app.run_test(size=(80, 20)) as pilot:
        await pilot.pause()
        note = app.screen.query_one(TooSmall)
        assert note.display and not app.screen.query_one("#body").display
        assert "too small" in str(note.render()).lower()
        await pilot.resize_terminal(160, 45)
        await pilot.pause()
        assert not note.display and app.screen.query_one("#body").display


@aio
async def test_theme_key_switches_dark_and_light(session: Session) -> None:
    app = D11App(session, autorun=False)
    async with app.run_test(size=SIZE) as pilot:
        assert app.theme == "textual-dark"
        await pilot.press("t")
        assert app.theme == "textual-light"


@aio
async def test_switch_rebuilds_the_run(session: Session) -> None:
    app = D11App(session, autorun=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await pilot.pause()
        # The option list lists every (chapter, scenario); pick ch1 double11.
        from textual.widgets import OptionList

        options = app.screen.query_one(OptionList)
        index = next(
            i
            for i in range(options.option_count)
            if options.get_option_at_index(i).id == "ch1|double11"
        )
        options.highlighted = index
        await pilot.press("enter")
        await pilot.pause()
        assert app.source is not session and app.source.config.scenario == "double11"
        assert app.source.rt.now_ms == 0.0


@aio
async def test_switch_dialog_starts_on_the_run_and_arrows_move_it(session: Session) -> None:
    from textual.widgets import OptionList

    app = D11App(session, autorun=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await pilot.pause()
        options = app.screen.query_one(OptionList)
        now = options.highlighted
        assert now is not None
        here = options.get_option_at_index(now)
        assert here.id == f"{session.stage.id}|{session.config.scenario}"
        await pilot.press("down", "down")
        assert options.highlighted == now + 2  # the trial's arrows did not move it
        for i in range(options.option_count):  # no line wider than the box's 100 columns
            lines = str(options.get_option_at_index(i).prompt).splitlines()
            assert len(lines) == 2 and all(len(ln) <= 100 for ln in lines), lines
        await pilot.press("escape")


@aio
async def test_save_then_attach(session: Session, tmp_path: Path) -> None:
    app = D11App(session, autorun=False, store_root=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("k", "w")
        # Said at once: a long run's save takes a while (90 s, a double11 trial).
        assert any("saving: every check judges" in str(n.message) for n in app._notifications)
        await app.workers.wait_for_complete()
        await pilot.pause()
    folders = list(tmp_path.glob("*/*"))
    assert len(folders) == 1 and (folders[0] / "history.jsonl").exists()
    assert Replay(folders[0]).end_ms > 1_000.0


@aio
async def test_attach_scrubs_back_and_forth(stored_run: Path) -> None:
    replay = Replay(stored_run)
    app = D11App(replay, autorun=False)
    async with app.run_test(size=SIZE) as pilot:
        assert replay.at_ms == 0.0
        await pilot.press("right", "right")
        assert replay.at_ms == 2_000.0
        assert "0:02.000" in text_of(app, StatusBar)
        await pilot.press("left")
        assert replay.at_ms == 1_000.0
        await pilot.press("end")
        assert replay.at_ms == replay.end_ms
        assert "ledger (end)" in text_of(app, ChecksPanel)
        # Find a moment inside the kill fault and look at it.
        crash_ms = next(
            e.time_ms for e in replay.history if e.process == "nemesis" and e.f == "crash"
        )
        replay.scrub_to(crash_ms + 1.0)
        app.show_frame()
        await pilot.pause()
        assert "✖" in text_of(app, TopologyPanel)
        assert "crash" in text_of(app, EventsPanel)
        await pilot.press("home")
        assert replay.at_ms == 0.0
        assert "crash" not in text_of(app, EventsPanel)


@aio
async def test_live_keys_are_in_the_command_palette(session: Session) -> None:
    app = D11App(session, autorun=False)
    async with app.run_test(size=SIZE):
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for wanted in ("spike [m]", "kill [k]", "cut city [c]", "save [w]"):
            assert wanted in titles


@aio
async def test_the_simulation_worker_runs_and_stops(tmp_path: Path) -> None:
    """Autorun: the worker builds the session, advances it, and the screen refreshes."""
    app = D11App(config=SessionConfig(chapter="ch1", seed=1, speed=10.0), store_root=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(50):  # the worker imports the chapters and builds the stage first
            if app.source is not None and app.frames_shown:
                break
            await pilot.pause(0.1)
        assert app.source is not None
        before, at_ms = app.frames_shown, app.source.rt.now_ms
        # The screen refreshes as the worker runs. No rate is asked: on a busy
        # machine (late in a full suite, 4 frames came in the first second) it
        # draws fewer; 20 a second alone (TICK_S). Bounded: 5 s.
        for _ in range(50):
            if app.frames_shown - before >= 5:
                break
            await pilot.pause(0.1)
        shown = app.frames_shown - before
        assert shown >= 5, f"only {shown} frames in 5 s"
        for _ in range(40):  # x10: a simulated second within 1 s, unless the machine is busy
            if app.source.rt.now_ms > at_ms + 1_000.0:
                break
            await pilot.pause(0.25)
        assert app.source.rt.now_ms > at_ms + 1_000.0, "x10: more than a simulated second"
        await pilot.press("k")
        await pilot.pause(0.3)
        assert app.source.rt.status("monolith") == "crashed"
        await pilot.press("space")
        await pilot.pause(0.3)
        at_ms = app.source.rt.now_ms
        await pilot.pause(0.5)
        assert app.source.rt.now_ms == at_ms, "paused: simulated time stands still"


@aio
async def test_cutting_a_city_in_chapter_3_loses_payments_as_the_chapter_expects() -> None:
    """Asynchronous replication: cut a city off, its cells fail over, the final
    reads find acknowledged payments gone, and the checks say so (in red, as expected)."""
    session = Session(SessionConfig(chapter="ch3", seed=1))
    session.step(1_000.0)
    app = D11App(session, autorun=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.screen.query_one(TopologyPanel).selected == "db-rz0"
        await pilot.press("c")
        session.step(2_000.0)
        app.show_frame()
        await pilot.pause()
        assert "hangzhou ✂ shanghai" in text_of(app, TopologyPanel)
        assert "failover" in text_of(app, EventsPanel)
        await pilot.press("h", "j")
        session.step(session.dep.end_ms - session.rt.now_ms + 200.0)
        views = {c.name: c for c in session.run_checks()}
        app.show_frame()
        await pilot.pause()
        lost = views["lost-payments"]
        assert lost.valid is False and lost.outcome == "expected-failure", lost
        assert "BROKEN (as the chapter expects)" in text_of(app, ChecksPanel)
