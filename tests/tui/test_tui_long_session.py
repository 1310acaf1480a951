"""A long session: the header follows the traffic, the money circulates, j again."""

from __future__ import annotations

import asyncio

import pytest

from checks.history import Event
from tui.app import D11App
from tui.model import CheckView
from tui.session import SPIKE_WINDOW_MS, Session, SessionConfig
from tui.widgets import StatusBar

SIZE = (160, 45)


def header(app: D11App) -> str:
    return str(app.screen.query_one(StatusBar).render())


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


def _judged(s: Session) -> dict[str, CheckView]:
    done_ms = s.judge()
    s.step(done_ms - s.rt.now_ms + 100.0)
    return {c.name: c for c in s.run_checks()}


def test_j_judges_again_after_more_traffic() -> None:
    """j, g, more traffic (and a crash), j again: new final reads, and the checks judge
    the whole run against them (the first judge's reads are ordinary reads now)."""
    s = Session(SessionConfig(chapter="ch1", scenario="steady", seed=3))
    s.step(2_000.0)
    first = _judged(s)
    assert all(c.valid is True for c in first.values()), first
    s.resume_traffic()
    s.step(1_500.0)
    s.kill("monolith")
    s.step(400.0)
    s.restart("monolith")
    s.step(1_500.0)
    second = _judged(s)
    ledger = second["ledger"]
    assert ledger.valid is True and ledger.outcome == "pass", ledger
    assert "traffic went on" not in ledger.summary
    finals = [e for e in s.check_input()[0] if e.type == "ok" and e.extra.get("final")]
    assert len(finals) == 1 and finals[0].time_ms > s.actions[-1].at_ms, finals
    paid_after = [
        e for e in s.dep.history
        if e.type == "ok" and e.f == "transfer" and e.time_ms > first["ledger"].at_ms
    ]  # fmt: skip
    assert paid_after, "the second judge covers payments made after the first"
    saved = s.result()  # a save judges the same final reads the live view does
    assert saved.verdicts["ledger"].valid is True, saved.verdicts["ledger"]
    assert sum(1 for e in saved.history if e.extra.get("final")) == 1


def test_steady_traffic_runs_for_minutes_without_draining_the_buyers() -> None:
    """Each window drew the same buyers again and money only flowed to merchants:
    declines passed a fifth of the traffic within half a minute ("buyers' money ran
    out"). Now each window draws fresh buyers and merchants pay their takings back."""
    s = Session(SessionConfig(chapter="ch1", scenario="steady", seed=1))
    s.step(45_000.0)
    recent = [e for e in s.dep.history if e.f == "transfer" and e.time_ms > 40_000.0]
    done = [e for e in recent if e.type in ("ok", "fail")]
    declined = [e for e in done if e.type == "fail" and e.extra.get("error") == "declined"]
    assert len(done) > 300 and len(declined) < 0.05 * len(done), (len(declined), len(done))
    payouts = [
        e for e in recent if e.type == "ok" and str(e.value["from"]).startswith("m")
    ]  # merchants paid users back, and the judged run holds
    assert payouts and all(c.valid is True for c in _judged(s).values())


def test_a_check_round_takes_at_most_a_quarter_of_the_time() -> None:
    from tui.app import CHECK_EVERY_S, check_wait_s

    assert check_wait_s(0.1) == CHECK_EVERY_S
    wait_s = check_wait_s(3.0)  # a long run's round: the simulation gets the rest
    assert 3.0 / (3.0 + wait_s) <= 0.25 + 1e-9


def test_the_capstone_ticks_without_merging_its_parts_histories(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A tick read the capstone's `history`, a merge of its four parts' rebuilt whenever
    one grew: nine tenths of a tick, growing with the run (x0.06 of real time)."""
    from chapters.capstone.stage import CapstoneDeployment

    s = Session(SessionConfig(chapter="double11", scenario="steady", seed=1))
    s.step(600.0)
    merges = 0
    merged: property = vars(CapstoneDeployment)["history"]
    merge = merged.fget
    assert merge is not None

    def counted(dep: CapstoneDeployment) -> list[Event]:
        nonlocal merges
        merges += 1
        history: list[Event] = merge(dep)
        return history

    monkeypatch.setattr(CapstoneDeployment, "history", property(counted, merged.fset))
    for _ in range(5):
        s.step(100.0)
        s.frame()
    assert merges == 0
    monkeypatch.undo()
    ok = sum(1 for e in s.dep.history if e.f == "transfer" and e.type == "ok")
    assert s.meter.ok_total == ok > 0, "every part's payments are metered, once"


def test_saturation_comes_back_after_a_judge() -> None:
    """j cleared the closed loops; g appended a new one in the first one's place, which
    the client knew as started: no traffic at all after g in the saturate scenario."""
    s = Session(SessionConfig(chapter="ch1", scenario="saturate", seed=1))
    s.step(1_000.0)
    assert s.frame().offered_tps > 100
    done_ms = s.judge()
    s.step(done_ms - s.rt.now_ms + 100.0)
    s.resume_traffic()
    s.step(2_000.0)
    assert s.frame().offered_tps > 100
