"""The live checks of chapter 4: never on a state that moves under them.

Chapter 4's double-entry and lost-payments checks read the ledger replicas'
books, not only the history. The check worker runs beside the simulation, so
such a check must run under the session's lock (the simulation waits between
two slices); before it did, `d11 tui ch4` died within seconds with
"dictionary changed size during iteration" and, before that, flashed a false
"double-entry BROKEN".
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace
from typing import Any
from unittest import mock

import pytest

import tui.app
from chapters.ch4_paxos.wallets import check_wallets_linearizable
from checks.history import Event
from checks.verdict import Verdict
from tests.tui.test_tui_app import SIZE, aio
from tui.app import D11App
from tui.model import CheckView
from tui.session import LiveWalletLin, ReadsLiveState, Session, SessionConfig


@pytest.fixture(scope="module")
def ch4() -> Session:
    s = Session(SessionConfig(chapter="ch4", seed=3))
    s.step(1_500.0)
    return s


def test_the_guard_stops_a_history_only_run_that_reads_a_node(ch4: Session) -> None:
    replica = next(iter(ch4.dep.groups.values())).replicas[0]
    assert ch4.dep.rt.node(replica) is ch4.rt.node(replica), "outside a check: the node itself"
    with ch4._guard.history_only(), pytest.raises(ReadsLiveState):
        ch4.dep.rt.node(replica)
    with ch4._guard.history_only(), pytest.raises(ReadsLiveState):
        ch4.dep.rt.status(replica)
    assert ch4.dep.rt.status(replica) == "up", "the guard is lifted after the block"


def test_chapter_4_state_checks_are_found_and_the_others_stay_free(ch4: Session) -> None:
    views = {c.name: c for c in ch4.run_checks()}
    assert ch4.state_checks == {"double-entry", "lost-payments"}
    assert views["double-entry"].valid is True, views["double-entry"]
    assert views["lost-payments"].valid is True, views["lost-payments"]
    assert views["lin"].valid is True, views["lin"]


def test_a_check_reading_node_state_runs_while_the_simulation_waits(ch4: Session) -> None:
    """While a check reads a node, no other thread (the simulation's) gets the lock."""
    replica = next(iter(ch4.dep.groups.values())).replicas[0]
    others_got_the_lock: list[bool] = []

    def probe(history: list[Any]) -> Verdict:
        ch4.dep.rt.node(replica)

        def other() -> None:
            got = ch4.lock.acquire(blocking=False)
            if got:
                ch4.lock.release()
            others_got_the_lock.append(got)

        t = threading.Thread(target=other)
        t.start()
        t.join()
        return Verdict("probe", True, "read a replica")

    checks = ch4.dep.checks
    ch4.dep.checks = {**checks, "probe": probe}
    try:
        worker = threading.Thread(target=ch4.run_checks)  # as the app's check worker does
        worker.start()
        worker.join()
    finally:
        ch4.dep.checks = checks
    assert others_got_the_lock == [False], "a state check ran beside the simulation"


def test_a_check_that_raises_is_shown_not_fatal(ch4: Session) -> None:
    def broken(history: list[Any]) -> Verdict:
        raise KeyError("wallet 7")

    checks = ch4.dep.checks
    ch4.dep.checks = {"broken": broken}
    try:
        views = ch4.run_checks()
    finally:
        ch4.dep.checks = checks
    assert views[0].valid == "unknown"
    assert views[0].summary == "the check failed: KeyError: 'wallet 7'"


def live_rounds(seed: int) -> tuple[Session, list[tuple[list[Event], Any]]]:
    """Chapter 4 through the spike and a city cut, its live lin judged every 300 ms."""
    s = Session(SessionConfig(chapter="ch4", seed=seed, speed=100.0))
    s.spike()
    rounds = []
    for at_ms, act in ((600.0, "cut"), (1_200.0, "heal"), (2_100.0, "")):
        while s.rt.now_ms < at_ms:
            s.step(300.0)
            history = list(s.dep.history)
            rounds.append((history, s.live_checks["lin"](history)))
        if act == "cut":
            s.cut_off(s.servers()[0])
        elif act == "heal":
            s.heal()
    return s, rounds


@pytest.fixture(scope="module")
def rounds_seed_1() -> tuple[Session, list[tuple[list[Event], Any]]]:
    return live_rounds(1)


def agree_every_round(session: Session, rounds: list[tuple[list[Event], Any]]) -> None:
    assert len(rounds) == 7
    for history, verdict in rounds:
        if "judged_to_event" not in verdict.details:
            # A round before any client operation completed (seed 2 at 300 ms): nothing
            # to judge, said so rather than judged valid.
            assert verdict.valid == "unknown" and verdict.summary == "no client operations"
            continue
        horizon = verdict.details["judged_to_event"]
        whole = check_wallets_linearizable(history[:horizon], session.dep.initial)
        assert verdict.valid == whole.valid, (verdict, whole)
    assert [v.valid for _, v in rounds[-2:]] == [True] * 2
    last, verdict = rounds[-1]
    assert 0 < verdict.details["events_new"] < 2 * verdict.details["operations"], "what is new"
    assert session.live_checks["lin"].whole(last).valid is True


def test_live_lin_agrees_with_the_whole_checker_every_round(
    rounds_seed_1: tuple[Session, list[tuple[list[Event], Any]]],
) -> None:
    agree_every_round(*rounds_seed_1)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2, 3, 4])
def test_live_lin_agrees_with_the_whole_checker_on_more_seeds(seed: int) -> None:
    agree_every_round(*live_rounds(seed))


def plant_wrong_read(history: list[Event], after: int, before: int) -> tuple[list[Event], str]:
    """The history with one wallet balance in one read (ending between two events) a cent high."""
    for i, e in enumerate(history):
        if after < i < before and e.type == "ok" and e.f == "read" and isinstance(e.value, dict):
            wallet = next(a for a in e.value if str(a).startswith("u"))
            value = {**e.value, wallet: e.value[wallet] + 1}
            return [*history[:i], replace(e, value=value), *history[i + 1 :]], wallet
    raise AssertionError("no read to plant in")


@pytest.mark.parametrize("where", ["new", "judged"])
def test_live_lin_catches_a_planted_wrong_read_in_a_later_round(
    rounds_seed_1: tuple[Session, list[tuple[list[Event], Any]]], where: str
) -> None:
    """Planted among the events the last round reads first, or in a past already judged."""
    session, rounds = rounds_seed_1
    last = rounds[-1][0]
    horizon = rounds[-1][1].details["judged_to_event"]
    reads_end = [e.index for e in last[:horizon] if e.type == "ok" and e.f == "read"]
    assert len(reads_end) >= 2
    live = LiveWalletLin(dict(session.dep.initial))
    earlier = live(last[: reads_end[-1]])  # a round that saw all but the last read's end
    assert earlier.valid is True, earlier
    judged = earlier.details["judged_to_event"]
    assert reads_end[0] < judged, "the first read was judged in that round"
    after, before = (judged, horizon) if where == "new" else (0, judged)
    planted, wallet = plant_wrong_read(last, after, before)
    verdict = live(planted)
    assert verdict.valid is False, verdict
    assert f"wallet {wallet} is not linearizable" in verdict.summary
    assert verdict.witness
    assert check_wallets_linearizable(planted, session.dep.initial).valid is False
    assert live.whole(planted).valid is False


async def wait(pilot: Any, app: D11App, wall_s: float) -> None:
    """Let the workers run for `wall_s`; fail (never hang) if the app has died meanwhile."""
    await asyncio.wait_for(pilot.pause(wall_s), timeout=60.0)
    assert app.return_code is None, "the app crashed (see the traceback above)"


async def drive_ch4(sim_s: float, cut_at_s: float, heal_at_s: float, wall_s_max: float) -> None:
    """`d11 tui ch4` at full speed: the midnight spike, a city cut and healed, then
    the final reads; every check round is recorded and none may go red."""
    seen: list[CheckView] = []
    rounds_seen: list[float] = []  # simulated time at the end of each check round
    app = D11App(config=SessionConfig(chapter="ch4", seed=1, speed=100.0))
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(100):  # the worker imports the chapter and builds the stage first
            if isinstance(app.source, Session):
                break
            await wait(pilot, app, 0.1)
        session = app.source
        assert isinstance(session, Session)
        set_checks = session._set_checks

        def recording(views: list[CheckView]) -> None:
            seen.extend(views)
            rounds_seen.append(session.rt.now_ms)
            set_checks(views)

        session._set_checks = recording  # type: ignore[method-assign]
        await pilot.press("m")  # the midnight spike
        started = time.monotonic()
        pressed: set[str] = set()
        while session.rt.now_ms < sim_s * 1000.0:
            assert time.monotonic() - started < wall_s_max, f"stuck at {session.rt.now_ms} ms"
            if session.rt.now_ms >= cut_at_s * 1000.0 and "c" not in pressed:
                await pilot.press("c")  # cut the selected node's city off
                pressed.add("c")
            if session.rt.now_ms >= heal_at_s * 1000.0 and "h" not in pressed:
                await pilot.press("h")
                pressed.add("h")
            await wait(pilot, app, 0.2)
        await pilot.press("j")  # stop traffic, heal, recover, final reads
        while not session.judged:
            await wait(pilot, app, 0.1)
        with session.lock:
            done_ms = session.dep.end_ms
        while session.rt.now_ms < done_ms + 200.0:
            assert time.monotonic() - started < wall_s_max, "the final reads never came"
            await wait(pilot, app, 0.2)
        rounds = len(rounds_seen)
        while len(rounds_seen) < rounds + 2:  # the first may have copied before the reads
            assert time.monotonic() - started < wall_s_max, "no check round after the final reads"
            await wait(pilot, app, 0.2)
        final = {c.name: c for c in session.checks}
        with session.lock:
            cut = [
                e.value for e in session.dep.history if e.process == "nemesis" and e.f == "isolate"
            ]
        assert cut and cut[0]["target"] in session.topology.cities(), cut
        assert app.return_code is None, "the app is still running"
    assert {"double-entry", "lost-payments", "lin", "bank", "ledger"} <= set(final)
    assert all(c.valid is True for c in final.values()), final
    red = [c for c in seen if c.valid is False or c.summary.startswith("the check failed")]
    assert not red, red[:3]
    assert "c" in pressed and "h" in pressed
    assert any(c.name == "double-entry" for c in seen) and len(seen) > len(final)


@pytest.mark.slow
@aio
async def test_live_ch4_spike_and_city_cut_every_check_green() -> None:
    await drive_ch4(sim_s=8.0, cut_at_s=3.0, heal_at_s=6.0, wall_s_max=600.0)


@pytest.mark.slow
@pytest.mark.timeout(3600)
@aio
async def test_live_ch4_sixty_simulated_seconds_every_check_green() -> None:
    # lin follows each wallet round by round (tui.session.LiveWalletLin); the
    # other checks still judge the whole history each round, so rounds are
    # spaced out here: fewer of them, each as strict.
    with mock.patch.object(tui.app, "CHECK_EVERY_S", 10.0):
        await drive_ch4(sim_s=60.0, cut_at_s=20.0, heal_at_s=35.0, wall_s_max=3600.0)
