"""What a newcomer trial found misleading in the TUI, each pinned by a test.

Chapter 5's `x` said "r restarts it" while `r` restarted the topology's
selection, another node.
"""

from __future__ import annotations

import asyncio

import pytest

from tui.app import D11App
from tui.session import SPIKE_WINDOW_MS, Session, SessionConfig
from tui.widgets.topology import TopologyPanel

SIZE = (200, 50)


def test_ch5_x_selects_the_killed_producer_so_r_restarts_it() -> None:
    session = Session(SessionConfig(chapter="ch5", seed=1))
    session.step(2_000.0)
    app = D11App(session, autorun=False)

    async def run() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            before = app.screen.query_one(TopologyPanel).selected
            assert before not in session.dep.producers, before  # the trial's case
            await pilot.press("x")
            await pilot.pause()
            victim = next(p for p in session.dep.producers if session.rt.status(p) == "crashed")
            assert "r restarts it" in session.message, session.message
            app.show_frame()
            await pilot.pause()
            assert app.screen.query_one(TopologyPanel).selected == victim
            await pilot.press("r")
            await pilot.pause()
            assert session.rt.status(victim) == "up", session.message
            assert session.rt.status(before) == "up"

    asyncio.run(run())


# -- the capstone's pipeline check on a prefix ------------------------------------------
@pytest.mark.slow
def test_double11_pipeline_live_calls_paid_not_yet_settled_in_flight() -> None:
    """Seen: `double11:pipeline` INVALID "paid-not-settled" 10 s into a live run, no
    final reads: the settlements of the latest payments were still in the queue."""
    from chapters.capstone.pipeline import check_pipeline

    s = Session(SessionConfig(chapter="double11", scenario="steady", seed=1))
    assert "double11:pipeline" in s.live_checks
    s.step(1_400.0)
    raw = check_pipeline(s.check_input()[0])  # the end-of-run form, on this prefix
    assert raw.valid is False and set(raw.details["problems"]) == {"paid-not-settled"}, raw
    live = next(c for c in s.run_checks() if c.name == "double11:pipeline")
    assert live.valid is True and "in flight" in live.summary, live


def test_double11_pipeline_live_stays_red_for_a_settlement_twice() -> None:
    from checks.verdict import Verdict
    from tui.views.capstone import live_pipeline

    problems = [{"kind": "paid-not-settled", "payment": "p1"},
                {"kind": "settled-twice", "payment": "p2", "times": 2}]  # fmt: skip
    counts = {"paid-not-settled": 1, "settled-twice": 1}
    broken = Verdict("pipeline", False, "disagree", {"paid": 2, "problems": counts}, problems)
    verdict = live_pipeline(lambda h: broken)([])
    assert verdict.valid is False and "settled-twice x1" in verdict.summary, verdict
    assert verdict.witness == problems[1:]


# -- chapter 6: the plan's switches ------------------------------------------------------
def test_ch6_the_plans_own_switch_flips_are_events_and_f_flips_what_is_shown() -> None:
    """Seen: "recommend OFF" with no event saying why, and `f` on a switch the plan had
    turned OFF pinned it "OFF·you": the flip changed nothing on screen."""
    s = Session(SessionConfig(chapter="ch6", seed=1))
    s.step(2_000.0)
    s.frame()
    board = s.rt.node("gw-pay").board
    assert not board.is_on("recommend") and "recommend" in board.off  # the plan's doing
    lines = [e.detail for e in s.events if e.kind == "degrade:switch"]
    assert lines == ["plan turned recommend OFF: load on pay reached 70% of its capacity"]
    s.chapter_action("flip", "recommend")
    assert "recommend: on by hand (the plan has it OFF)" in s.message, s.message
    s.step(300.0)
    assert board.is_on("recommend")
    assert "recommend on·you" in " ".join(_panel_text(s).split()), _panel_text(s)
    s.chapter_action("flip", "recommend")  # shown on -> OFF, which is the plan's: back to it
    assert "back to the plan, which has it OFF" in s.message, s.message
    s.step(300.0)
    assert not board.is_on("recommend") and "recommend" not in board.forced
    assert [e.value["switch"] for e in s.dep.history if e.f == "degrade:change"] == [
        ("recommend", "on"), ("recommend", "plan")]  # fmt: skip


def _panel_text(s: Session) -> str:
    panel = s.view.panel(s)
    return "\n".join("".join(text for text, _ in line) for line in panel.lines)


def test_ch6_slo_broken_after_a_rule_tightened_by_hand_says_so() -> None:
    """Seen: `[` (58 -> 46/s), a spike, j: "slo BROKEN (the chapter says it holds)",
    goodput 75%: the operator's own rule, not the platform's failure."""
    s = Session(SessionConfig(chapter="ch6", seed=1))
    s.step(1_000.0)
    s.chapter_action("tighten", "")
    s.step(500.0)
    s.spike()
    s.step(SPIKE_WINDOW_MS + 7_000.0)
    s.step(s.judge() - s.rt.now_ms + 100.0)
    slo = next(c for c in s.run_checks() if c.name == "slo")
    assert slo.valid is False and slo.outcome == "by-hand", slo
    assert "after changes by hand (flow rule down to 46/s = 76% of capacity)" in slo.summary


def test_ch6_slo_without_changes_by_hand_is_not_labelled() -> None:
    from checks.verdict import Verdict
    from tui.views.degrade import live_slo

    broken = Verdict("slo", False, "goodput 50%", {"capacity_tps": 60.0})
    assert live_slo(lambda h: broken)([]) == broken


def test_double11_x_selects_the_killed_producer_too() -> None:
    s = Session(SessionConfig(chapter="double11", scenario="steady", seed=1))
    s.step(500.0)
    s.chapter_action("kill-producer", "")
    victim = s.select_request[1]
    assert s.rt.status(victim) == "crashed", (victim, s.message)
    assert f"{victim} is selected: r restarts it" in s.message or "selected: r" in s.message
    s.restart(victim)
    assert s.rt.status(victim) == "up"


# -- chapter 7: one screen, one count of each thing ---------------------------------------
def _figure(text: str, before: str) -> str:
    """The figure that follows `before` in `text` ("offered 170 tx/s" -> "170")."""
    return text.split(before, 1)[1].split()[0]


def test_ch7_one_screen_counts_each_figure_once_and_says_what_it_counts() -> None:
    """Trial (120x40): Traffic "offered 170 tx/s goodput 171" beside the Rehearsal panel's
    "production 182 / 183" (the traffic panel divided a window still filling by a whole
    second); "shard-0 store 213 tx/s" in the topology vs "goodput by store ... shard-0
    18 tx/s", and "gw-0 123 tx/s" listed as a store."""
    from tui.widgets.chapter import ChapterPanel
    from tui.widgets.traffic import TrafficPanel

    session = Session(SessionConfig(chapter="ch7", seed=1))
    session.step(1_000.0)
    app = D11App(session, autorun=False)

    def text(widget: type) -> str:
        w = app.screen.query_one(widget)
        return str(w.plain() if hasattr(w, "plain") else w.render().plain)

    async def run() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            for step_ms in (330.0, 410.0, 170.0, 600.0):  # bucket edges and between them
                session.step(step_ms)
                app.show_frame()
                await pilot.pause()
                traffic, rehearsal = text(TrafficPanel), text(ChapterPanel)
                prod = next(li for li in rehearsal.splitlines() if "production" in li).split()
                shown = [_figure(traffic, w) for w in ("offered ", "goodput ", "failed ")]
                assert [float(x) for x in shown] == [float(x) for x in prod[1:4]], (traffic, prod)
                assert traffic.startswith("production offered "), traffic  # the lane counted
                rows = traffic.split("goodput by deciding node\n")[1].splitlines()
                by_node = {
                    r.split()[0]: int(r.split(" tx/s")[0].split()[-1]) for r in rows if "tx/s" in r
                }
                gateway = next(r for r in rows if r.startswith("gw-0"))
                assert gateway.startswith("gw-0 cross-shard"), gateway  # not a store
                assert abs(sum(by_node.values()) - float(prod[2])) <= len(by_node), by_node
            topology = text(TopologyPanel)
            assert "load " in topology and "txn/s: transactions it ran" in topology, topology

    asyncio.run(run())


# -- each node by its role; an unknown chapter as every command says it ------------------
def test_producers_and_fronts_are_labelled_by_their_role_not_as_stores() -> None:
    """Trial: "selected pay-sh store in sh", "front-hz-1 store in hz-1"."""
    ch5 = Session(SessionConfig(chapter="ch5", seed=1))
    assert {n: ch5.role_of(n) for n in ("pay-hz", "pay-sh", "front", "settlement-hz")} == {
        "pay-hz": "producer", "pay-sh": "producer", "front": "front", "settlement-hz": "consumer"
    }  # fmt: skip
    ch4 = Session(SessionConfig(chapter="ch4", seed=1))
    assert ch4.role_of("front-hz-1") == "front" and ch4.role_of("led-hz-1-hz") == "replica"
    app = D11App(ch5, autorun=False)

    async def run() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            panel = app.screen.query_one(TopologyPanel)
            panel.selected = "pay-sh"
            app.show_frame()
            await pilot.pause()
            assert "pay-sh  producer in sh" in panel.plain(), panel.plain()

    asyncio.run(run())


def test_d11_tui_an_unknown_chapter_is_an_error_line_like_every_command() -> None:
    from typer.testing import CliRunner

    from tui.cli import app as cli

    result = CliRunner().invoke(cli, ["tui", "ch9"])
    assert result.exit_code == 2
    assert result.output.startswith("error: no chapter 'ch9'"), result.output


def test_a_checks_event_line_ends_its_summary_on_a_whole_word(session: Session) -> None:
    """Seen in ch5's Events: "... (0 set aside after their last check); 1 still within
    their c", the summary cut at 120 characters mid-word, as if it ended there."""
    from tui.model import CheckView

    summary = (
        "All 195 sent messages were resolved, delivered, or reported (0 set aside after "
        "their last check); 1 still within their check-back window"
    )
    session._set_checks([CheckView("half-messages", True, summary)])
    line = session.events[-1]
    assert line.kind == "check half-messages", line
    assert line.detail.endswith("their …"), line.detail
    assert summary.startswith(line.detail.removeprefix("holds: ").removesuffix(" …"))


# -- the second trial: the capstone's Events panel (its F12) ---------------------------
def test_a_row_dated_before_the_last_one_read_is_shown_once_and_nothing_twice() -> None:
    """The capstone's timeline is its parts' merged and sorted by time: a row dated in
    the past goes in before the end. A cursor into it read the row it pushed along a
    second time and never the new one."""
    from tui.session import TimelineReader

    reader = TimelineReader()
    merged = [(100.0, "leader", "cells: a leads"), (1_500.0, "degrade:change", "degrade: v1")]
    assert reader.new_rows(merged) == merged
    merged.insert(1, (1_468.0, "degrade:switch", "degrade: plan turned recommend OFF"))
    assert reader.new_rows(merged) == [merged[1]]  # the cursor's answer was merged[2] again
    assert reader.new_rows(merged) == []
    merged.append((1_500.0, "degrade:change", "degrade: v1"))  # the same row, really twice
    assert reader.new_rows(merged) == [merged[-1]]
    del merged[:2]  # a plain timeline cut from its front (the session bounds it)
    reader.cut(merged)
    merged.append((2_000.0, "heal", "every link restored"))
    assert reader.new_rows(merged) == [merged[-1]]


@pytest.mark.slow
def test_double11_tighten_shows_once_in_the_events_panel() -> None:
    """Trial: after `[` the Events panel showed "degrade: flow rule on pay: 58 -> 46/s
    (change v1)" twice at the same instant, and lost the plan's own switch flip that
    the panel dated just before it."""
    from tui.widgets.events import EventsPanel

    session = Session(SessionConfig(chapter="double11", scenario="steady", seed=1))
    session.step(1_000.0)
    app = D11App(session, autorun=False)

    async def run() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            session.step(500.0)  # the plan turns recommend OFF at 1.468 s: no frame since
            # `[` as the running app does it: the key between two ticks, then the
            # tick's step (which reads the new row), then its frame (whose panel
            # dates the plan's flip at 1.468 s, before the row read).
            session.chapter_action("tighten", "")
            session.step(1_500.0)
            app.show_frame()
            await pilot.pause()
            shown = "\n".join(strip.text for strip in app.screen.query_one(EventsPanel).lines)
            assert shown.count("flow rule on pay: 58 -> 46/s (change v1)") == 1, shown
            rows = [(e.time_ms, e.kind, e.detail) for e in session.events if not e.node]
            assert len(rows) == len(set(rows)), rows  # the timeline's rows: none twice
            assert any("plan turned recommend OFF" in d for _, _, d in rows), rows

    asyncio.run(run())


def test_the_status_line_gives_the_scale_as_the_reports_do(session: Session) -> None:
    """The header said "scale 1:453" while every report says "1/453"."""
    from reference.traffic.plan import format_scale
    from tui.widgets.status import StatusBar, scale_words

    assert scale_words(1 / 453.3) == "1/453" == format_scale(1 / 453.3)
    assert scale_words(1.0) == "1" and scale_words(0.0) == "?"
    app = D11App(session, autorun=False)

    async def run() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            line = str(app.screen.query_one(StatusBar).render())
            assert f"scale {format_scale(session.dep.scale)}" in line, line
            assert "1:" not in line.split("scale")[1], line

    asyncio.run(run())
