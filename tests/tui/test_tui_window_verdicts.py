"""A live verdict on a window of the history: valid or unknown, never a false failure.

Past LEDGER_EVENTS_MAX events (about 20 simulated seconds of `d11 tui double11`)
the live checks judge a recent window of the run. The capstone's checks were
then held against it as if it were the whole run: chapter 4's lin, chapter 6's
and 7's ledger and the pipeline showed "BROKEN (the chapter says it holds!)"
while the saved run (`w`) and `d11 replay` said all 19 checks pass (trial F1).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import pytest

from checks.history import Event
from checks.verdict import Verdict
from tests.tui.test_tui_app import SIZE, aio, text_of
from tui.live_checks import judge_history, recent_window

if TYPE_CHECKING:
    from chapters.stage import Deployment

Check = Callable[[list[Event]], Verdict]


Kind = Literal["invoke", "ok"]
KINDS: tuple[Kind, ...] = ("invoke", "ok")


def _ev(index: int, process: Any, f: str, kind: Kind = "ok", value: Any = None) -> Event:
    return Event(kind, process, f, value, float(index), index)


def _merged_history() -> list[Event]:
    """A capstone-like history: one part's opening balances, 30 payments, then a
    second part's opening balances (its part started later), 30 more payments."""
    events: list[Event] = []

    def add(process: Any, f: str, kind: Kind, value: Any = None) -> None:
        events.append(_ev(len(events), process, f, kind, value))

    for kind in KINDS:
        add("setup", "init", kind, None if kind == "invoke" else {"a": 10})
    for p in range(30):
        add(p, "transfer", "invoke")
        add(p, "transfer", "ok")
    for kind in KINDS:
        add("setup", "init", kind, None if kind == "invoke" else {"b": 20})
    for p in range(30):
        add(100 + p, "transfer", "invoke")
        add(100 + p, "transfer", "ok")
        if p == 25:
            events.append(Event("info", "trace", "span", {"mark": "T"}, len(events), len(events)))
    return events


def test_a_window_keeps_every_setup_event_wherever_it_fell() -> None:
    """The window kept setup events only from the first 16: a part whose opening
    balances came later lost them, and its checks judged money from nowhere."""
    history = _merged_history()
    window = recent_window(history, 20)
    inits = [e.value for e in window if e.f == "init" and e.type == "ok"]
    assert inits == [{"a": 10}, {"b": 20}], inits
    assert [e.f for e in window if e.process == "trace"] == ["span"], "spans pair with nothing"
    assert [e.index for e in window] == list(range(len(window)))


class _Dep:
    """A stage's deployment as `judge_history` reads it: checks, no expectations."""

    def __init__(self, checks: dict[str, Check]) -> None:
        self.checks = checks

    def expectations(self, scenario: str | None = None) -> dict[str, object]:
        return {}


def test_on_a_window_a_failure_is_unknown_and_whole_run_checks_are_not_run() -> None:
    ran: list[str] = []

    def broken(name: str) -> Check:
        def check(history: list[Event]) -> Verdict:
            ran.append(name)
            return Verdict(name, False, "1 ledger violation (not-exactly-once x1)")

        return check

    names = ("ch4:ledger", "ch4:lin", "double11:pipeline", "ch6:bank", "ch4:double-entry")
    dep = cast("Deployment", _Dep({n: broken(n) for n in names}))
    history = _merged_history()
    on_window = {c.name: c for c in judge_history(dep, history, "steady", window=True)}
    assert sorted(ran) == ["ch4:double-entry", "ch6:bank"], "whole-run checks not run"
    for name in ("ch4:ledger", "ch4:lin", "double11:pipeline", "ch6:bank"):
        c = on_window[name]
        assert c.valid == "unknown" and c.outcome == "unknown", c
        assert "window" in c.summary and "j" in c.summary, c.summary
    assert "not-exactly-once" in on_window["ch6:bank"].summary, "what it saw is kept"
    state = on_window["ch4:double-entry"]  # reads the replicas, not the history: still red
    assert state.valid is False and state.outcome == "unexpected-failure", state
    final = Event("ok", 7, "read", {}, 99.0, len(history), {"final": True})
    judged = judge_history(dep, [*history, final], "steady", window=True)
    after_j = next(c for c in judged if c.name == "ch4:ledger").summary
    assert "Press j" not in after_j, after_j
    assert after_j.endswith("Once j's final reads are in, the whole run is judged (w saves it).")
    whole = {c.name: c for c in judge_history(dep, history, "steady")}
    assert all(c.valid is False for c in whole.values()), "the whole run: red stays red"


def test_a_followed_check_judges_the_whole_run_on_a_window() -> None:
    """Chapter 4's live lin follows the run round by round: past the window it still
    judges every event the session holds (it was unknown there, a whole-run check),
    and says so; once the session trimmed the run's start it is not run at all."""
    seen: list[int] = []

    def lin(valid: bool) -> Check:
        def check(history: list[Event]) -> Verdict:
            seen.append(len(history))
            return Verdict("lin", valid, "Every wallet's history is linearizable.")

        return check

    def ledger(history: list[Event]) -> Verdict:
        raise AssertionError("a whole-run check is not run on a window")

    history = _merged_history()
    window = recent_window(history, 20)
    dep = cast("Deployment", _Dep({"lin": lin(True), "ledger": ledger}))
    follows = frozenset({"lin"})
    views = {
        c.name: c
        for c in judge_history(dep, window, "steady", window=True, whole=history, follows=follows)
    }
    assert seen == [len(history)], "the whole history, not the window"
    assert views["lin"].valid is True and views["lin"].events == len(history), views["lin"]
    assert views["lin"].summary.startswith("The whole run, followed round by round (not the ")
    assert views["ledger"].valid == "unknown" and views["ledger"].events == len(window)
    # Its failure is the whole run's: red stays red (the chapter's claim is broken).
    dep = cast("Deployment", _Dep({"lin": lin(False), "ledger": ledger}))
    red = judge_history(dep, window, "steady", window=True, whole=history, follows=follows)
    assert [c.valid for c in red if c.name == "lin"] == [False]
    # Trimmed: no whole history to follow; unknown, saying why, and not run.
    seen.clear()
    cut = judge_history(dep, window, "steady", window=True, follows=follows, trimmed=True)
    assert seen == [], "not run on what is left"
    for c in cut:
        assert c.valid == "unknown", c
        assert "start was trimmed from memory: no verdict on the whole run" in c.summary


@pytest.mark.slow
def test_the_capstone_past_its_window_shows_no_false_red(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Trial F1, smaller: the window starts at 30,000 events (about 2 simulated s)
    instead of 250,000, so the run crosses it sooner; no fault, steady traffic, j.
    Before: ch4:lin, ch6:ledger, ch7:ledger and double11:pipeline were BROKEN."""
    import tui.session as session_module
    from tui.session import Session, SessionConfig

    monkeypatch.setattr(session_module, "LEDGER_EVENTS_MAX", 30_000)
    monkeypatch.setattr(session_module, "CHECK_EVENTS_MAX", 8_000)
    s = Session(SessionConfig(chapter="double11", scenario="steady", seed=1))
    s.step(3_000.0)
    assert s.history_cut()
    views = s.run_checks()
    red = [f"{c.name}: {c.summary[:100]}" for c in views if c.valid is False]
    assert not red, red
    assert {c.name for c in views if c.valid == "unknown"} >= {"ch4:ledger", "ch4:lin"}
    done_ms = s.judge()
    s.step(done_ms - s.rt.now_ms + 500.0)
    # j's final reads are in: the round judges the whole run too, without w (it
    # stayed unknown until w, the final reads having fallen out of the window).
    views = s.run_checks()
    red = [f"{c.name}: {c.summary[:100]}" for c in views if c.valid is False]
    assert not red, red
    by_name = {c.name: c for c in views}
    for name in ("ch4:ledger", "ch4:lin", "double11:pipeline"):
        assert by_name[name].valid is True, by_name[name].summary
        assert "judged once j's final reads were in" in by_name[name].summary
    # w judges the whole run: its verdicts stand in for the window's unknowns, saying
    # so, and stay through the next round (found in a tmux trial: after w the panel
    # still said unknown while the saved run's verdicts were all valid).
    s.save(tmp_path)
    for shown in (s.checks, s.run_checks()):
        by_name = {c.name: c for c in shown}
        for name in ("ch4:ledger", "ch4:lin"):
            assert by_name[name].valid is True, by_name[name].summary
            assert "judged when w saved it" in by_name[name].summary


@pytest.mark.slow
def test_chapter_4_past_its_window_keeps_judging_lin_and_j_judges_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Chapter 4 alone crosses the window after about 3 simulated minutes; its live
    lin then said unknown until w. It follows the wallets round by round, so it
    keeps judging the whole history past the window; j's final reads, once in,
    judge the rest of the whole run (the ledger) without w. Smaller here: the
    window starts at 4,000 events instead of 250,000."""
    import tui.session as session_module
    from tui.session import Session, SessionConfig

    monkeypatch.setattr(session_module, "LEDGER_EVENTS_MAX", 4_000)
    monkeypatch.setattr(session_module, "CHECK_EVENTS_MAX", 1_500)
    s = Session(SessionConfig(chapter="ch4", scenario="steady", seed=1))
    s.step(4_000.0)
    assert s.history_cut()
    for _round in range(2):
        views = {c.name: c for c in s.run_checks()}
        assert not [c for c in views.values() if c.valid is False], views
        lin = views["lin"]
        assert lin.valid is True and lin.events == s.history_len(), lin
        assert lin.summary.startswith("The whole run, followed round by round (not the window)")
        assert views["ledger"].valid == "unknown" and views["ledger"].events < 2_000
        s.step(1_000.0)
    done_ms = s.judge()
    s.step(done_ms - s.rt.now_ms + 500.0)
    views = {c.name: c for c in s.run_checks()}
    assert not [c for c in views.values() if c.valid is False], views
    assert views["ledger"].valid is True, views["ledger"].summary
    assert "judged once j's final reads were in" in views["ledger"].summary, views["ledger"]
    # lin too, like every check once j's whole run is judged (it judged the whole
    # run before as well, followed round by round: now in the same words as the rest)
    assert views["lin"].valid is True, views["lin"]
    assert "judged once j's final reads were in" in views["lin"].summary, views["lin"]
    assert any(e.kind == "judged" for e in s.events), "the log says the whole run was judged"


@pytest.mark.slow
def test_once_trimmed_no_whole_run_check_is_judged_live_or_saved(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The session trims its history to bound memory: the run's start is gone, and
    each wallet's balance where the kept part begins is not known. Lin is then
    unknown, saying so; nor does w judge what is left as if it were the whole run."""
    import tui.session as session_module
    from tui.session import Session, SessionConfig

    monkeypatch.setattr(session_module, "HISTORY_MAX", 5_000)
    monkeypatch.setattr(session_module, "LEDGER_EVENTS_MAX", 4_000)
    monkeypatch.setattr(session_module, "CHECK_EVENTS_MAX", 1_500)
    s = Session(SessionConfig(chapter="ch4", scenario="steady", seed=1))
    s.step(5_000.0)
    assert s._trimmed
    views = {c.name: c for c in s.run_checks()}
    assert not [c for c in views.values() if c.valid is False], views
    for name in ("ledger", "lin"):
        assert views[name].valid == "unknown", views[name]
        assert "start was trimmed from memory" in views[name].summary, views[name]
    assert not {"ledger", "lin"} & set(s.result().verdicts), "not judged on what is left"


@aio
async def test_the_panel_shows_js_whole_run_verdict_past_the_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through the app: past the window the ledger is unknown; after j, once its final
    reads are in, the checks panel shows the whole run's verdict without w."""
    import tui.session as session_module
    from tui.app import D11App
    from tui.session import Session, SessionConfig
    from tui.widgets import ChecksPanel

    monkeypatch.setattr(session_module, "LEDGER_EVENTS_MAX", 1_000)
    monkeypatch.setattr(session_module, "CHECK_EVENTS_MAX", 400)
    session = Session(SessionConfig(chapter="ch1", scenario="steady", seed=7))
    session.step(5_000.0)
    assert session.history_cut()
    app = D11App(session, autorun=False)
    async with app.run_test(size=SIZE) as pilot:
        session.run_checks()
        app.show_frame()
        await pilot.pause()
        before = text_of(app, ChecksPanel)
        assert "? ledger" in before and "Press j" in before, before
        await pilot.press("j")
        assert not session.whole_due(), "the final reads are not in yet"
        session.step(session._finals_due_ms - session.rt.now_ms + 100.0)
        assert session.whole_due(), "the check worker judges now, not after its wait"
        session.run_checks()
        assert not session.whole_due(), "once per j"
        app.show_frame()
        await pilot.pause()
        after = text_of(app, ChecksPanel)
        assert "✔ ledger" in after and "judged once j's final" in after, after
        assert "BROKEN" not in after, after


def test_once_js_whole_run_is_judged_every_check_shows_it_until_traffic_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Trial: after j, `d11 tui double11` showed ch4:ledger and lin on the whole run
    beside ch4:lost-payments still on the window, "All 6291 acknowledged payments"
    where it had counted 8825 before judging. Here ch1's bank: the window's few
    complete reads beside the ledger's whole run."""
    import tui.session as session_module
    from tui.session import Session, SessionConfig

    monkeypatch.setattr(session_module, "LEDGER_EVENTS_MAX", 1_000)
    monkeypatch.setattr(session_module, "CHECK_EVENTS_MAX", 400)
    s = Session(SessionConfig(chapter="ch1", scenario="steady", seed=7))
    s.step(5_000.0)
    window = {c.name: c for c in s.run_checks()}
    assert window["bank"].valid is True and window["bank"].events < 1_000, window["bank"]
    s.judge()
    s.step(s._finals_due_ms - s.rt.now_ms + 100.0)
    s.run_checks()  # judges the whole run (once per j)
    for _round in range(2):  # and the rounds after it keep showing it
        views = {c.name: c for c in s.run_checks()}
        assert set(views) == set(window), views
        for name, view in views.items():
            assert "judged once j's final reads were in" in view.summary, (name, view.summary)
            assert view.events == views["ledger"].events > window["bank"].events, view
        s.step(200.0)
    s.resume_traffic()
    s.step(500.0)
    bank = next(c for c in s.run_checks() if c.name == "bank")
    assert "judged once j's" not in bank.summary, "traffic again: the window judges again"
