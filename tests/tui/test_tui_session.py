"""The session without a terminal: controls change the simulation and the frames."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui.session import Session, SessionConfig, SessionError, recent_window


def test_frame_shows_traffic_and_every_node(session: Session) -> None:
    frame = session.frame()
    assert {n.id for n in frame.nodes} == {"monolith", "client-1", "client-2"}
    assert frame.offered_tps > 50 and frame.served_tps > 50
    assert 0 < frame.p50_ms <= frame.p99_ms < 100
    assert frame.events and frame.events[0].kind == "run"
    assert session.frame().events == [], "events are handed out once"


def test_kill_and_restart_are_recorded_in_the_history(session: Session) -> None:
    session.kill("monolith")
    session.step(500.0)
    assert session.rt.status("monolith") == "crashed"
    frame = session.frame()
    assert next(n for n in frame.nodes if n.id == "monolith").status == "crashed"
    assert any(e.kind == "crash" and e.node == "monolith" for e in frame.events)
    session.step(1_200.0)
    assert (
        "timeout" in session.frame().errors_total or "unavailable" in session.frame().errors_total
    )
    session.restart("monolith")
    assert session.rt.status("monolith") == "up"
    ops = [
        (e.f, e.value.get("node"))
        for e in session.dep.history
        if e.process == "nemesis" and isinstance(e.value, dict)
    ]
    assert ("crash", "monolith") in ops and ("restart", "monolith") in ops


def test_clients_cannot_be_broken(session: Session) -> None:
    with pytest.raises(SessionError, match="client"):
        session.kill("client-1")
    with pytest.raises(SessionError, match="is up"):
        session.restart("monolith")


def test_pause_skew_and_cut(session: Session) -> None:
    session.toggle_node_pause("monolith")
    assert session.rt.status("monolith") == "paused"
    session.toggle_node_pause("monolith")
    assert session.skew("monolith") == 500.0
    assert session.frame().nodes[0].skew_ms == 500.0
    target = session.cut_off("monolith")
    assert target == "hz-1", "one city holds everything: the cell is cut instead"
    frame = session.frame()
    assert frame.cuts == ["hz-1 ✂ hz-users"]
    assert next(n for n in frame.nodes if n.id == "monolith").cut == "isolated"
    session.heal()
    assert session.frame().cuts == []


def test_the_spike_overloads_the_monolith() -> None:
    s = Session(SessionConfig(chapter="ch1", seed=2))
    s.step(1_000.0)
    s.spike()
    s.step(2_500.0)
    frame = s.frame()
    assert frame.profile == "double11"
    assert frame.offered_tps > 2 * 220, "the spike offers more than one store can serve"
    assert frame.p99_ms > 200
    assert any(e.kind == "spike" for e in frame.events)


def test_traffic_rolls_on_past_the_first_window() -> None:
    s = Session(SessionConfig(chapter="ch1", seed=4))
    s.step(12_000.0)  # three windows of 4 s
    frame = s.frame()
    assert frame.offered_tps > 50 and frame.served_tps > 50


def test_judge_takes_final_reads_and_the_checks_decide(session: Session) -> None:
    session.kill("monolith")
    session.step(300.0)
    session.restart("monolith")
    session.step(500.0)
    done_ms = session.judge()
    session.step(done_ms - session.rt.now_ms + 100.0)
    views = {c.name: c for c in session.run_checks()}
    assert views["bank"].valid is True
    assert views["ledger"].valid is True, views["ledger"].summary
    assert views["ledger"].outcome == "pass"
    with pytest.raises(SessionError):
        session.judge()


def test_judge_while_paused_runs_the_simulation_its_final_reads_need(session: Session) -> None:
    """A newcomer paused (space), pressed j, and waited three minutes on "judging…":
    paused, simulated time stands still and the final reads never come."""
    session.step(500.0)
    session.toggle_pause()
    assert session.paused and session.advance(1.0) == 0.0
    session.judge()
    assert not session.paused
    assert session.advance(0.5) > 0.0  # wall time moves simulated time again


def test_speed_ladder_and_single_step(session: Session) -> None:
    assert session.set_speed(1) == 2.0
    assert session.set_speed(-1) == 1.0
    before = session.rt.now_ms
    session.pause_and_step()
    assert session.paused and session.rt.now_ms == pytest.approx(before + 100.0)
    assert session.advance(1.0) == 0.0, "paused: wall time moves nothing"


def test_bad_config_is_one_line() -> None:
    with pytest.raises(SessionError, match="no chapter 'nope'"):
        SessionConfig(chapter="nope").validate()
    with pytest.raises(SessionError, match="no scenario"):
        SessionConfig(scenario="sunny").validate()


def test_recent_window_keeps_whole_operations(session: Session) -> None:
    history = session.dep.history
    window = recent_window(history, 101)
    from checks.history import pair_operations

    pair_operations(window)  # a well-formed history: raises if a completion lost its invoke
    assert window[0].f == "init" and [e.index for e in window] == list(range(len(window)))


def test_save_writes_a_store_folder_attach_can_read(session: Session, tmp_path: Path) -> None:
    from tui.replay import Replay

    session.kill("monolith")
    session.step(200.0)
    folder = session.save(tmp_path)
    assert (folder / "history.jsonl").exists() and (folder / "schedule.json").exists()
    replay = Replay(folder)
    replay.scrub_to(-1)
    frame = replay.frame()
    assert next(n for n in frame.nodes if n.id == "monolith").status == "crashed"


def test_leaders_come_from_trace_events() -> None:
    from chapters import STAGES

    if "ch4" not in STAGES:
        pytest.skip("chapter 4 is not in this checkout")
    s = Session(SessionConfig(chapter="ch4", seed=1))
    s.step(1_000.0)  # every group has its boot leader by then (seed 1: as at 3 s)
    leaders = {n.id for n in s.frame().nodes if n.leader}
    assert len(leaders) == 3, "one leader per ledger group"
    victim = sorted(leaders)[0]
    s.kill(victim)
    s.step(2_000.0)
    after = {n.id for n in s.frame().nodes if n.leader}
    assert victim not in after and len(after) == 3, "its group elected another"


def test_memory_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A session left open trims its history and judges the recent window."""
    import tui.session as session_module

    monkeypatch.setattr(session_module, "HISTORY_MAX", 3_000)
    monkeypatch.setattr(session_module, "CHECK_EVENTS_MAX", 1_000)
    s = Session(SessionConfig(chapter="ch1", seed=5))
    s.step(20_000.0)  # about 5,000 events at steady load
    assert len(s.dep.history) <= 3_000
    assert any(e.kind == "trim" for e in s.events)
    views = {c.name: c for c in s.run_checks()}
    assert views["bank"].valid is True and views["bank"].events <= 1_000 + 2
    assert views["ledger"].valid == "unknown", "the opening balances are gone: no ledger"
    assert len(s.meter.series(s.rt.now_ms, 500)["offered"]) == s.meter.buckets_max
