"""The event log wraps a detail that does not fit under its line, instead of cutting it."""

from __future__ import annotations

from rich.text import Text

from tui.widgets.events import DETAIL_INDENT, DETAIL_LINES_MAX, EventText

VERDICT = (
    "slo BROKEN: goodput back to normal never (allowed 5000 ms); p99 1650 ms; "
    "a payment failed while best-effort work was still on"
)
HEAD = Text("    18.550 s ✖ check             ")


def test_a_long_detail_goes_under_its_line_whole_and_a_short_one_stays_on_it() -> None:
    width = 45  # the log's width at 160 columns, beside the chapter's panel
    long = EventText(HEAD, VERDICT).lines(width)
    assert len(long) > 2 and all(t.cell_len <= width for t in long)
    assert " ".join(t.plain.strip() for t in long[1:]) == VERDICT  # every word, none cut
    assert all(t.plain.startswith(" " * DETAIL_INDENT) for t in long[1:])
    short = EventText(Text("     1.000 s ✖ kill              gw-0 "), "crashed").lines(width)
    assert len(short) == 1 and short[0].plain.endswith("gw-0 crashed")
    many = EventText(HEAD, VERDICT * 5).lines(width)
    assert len(many) == 1 + DETAIL_LINES_MAX and many[-1].plain.endswith("…")
    assert len(EventText(HEAD, VERDICT).lines(200)) == 1  # wide enough: one line


def test_events_written_while_v_shows_the_chapters_panel_are_whole_when_shown() -> None:
    """Trial: `d11 tui ch5` at 120x40, after `v`, four real lines then rows of "…"
    only: the lines written while the log was hidden had been laid out at no width,
    and showing it again at its old width laid nothing out again."""
    import asyncio

    from tui.app import D11App
    from tui.session import Session, SessionConfig
    from tui.widgets.events import EventsPanel

    session = Session(SessionConfig(chapter="ch5", seed=1))
    session.step(500.0)
    app = D11App(session, autorun=False)

    def texts(log: EventsPanel) -> list[str]:
        return [strip.text.rstrip() for strip in log.lines]

    async def run() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            log = app.screen.query_one(EventsPanel)
            assert not log.display  # below 140 columns ch5's panel is shown, not the log
            for _ in range(4):  # events arrive while the log is hidden
                session.step(500.0)
                app.show_frame()
                await pilot.pause()
            for _toggle in range(3):  # shown, hidden, shown again: whole every time shown
                await pilot.press("v")
                await pilot.pause()
                if not log.display:
                    continue
                shown = texts(log)
                assert not [t for t in shown if t.strip() in ("…", "")], shown
                assert any("rebalance" in t for t in shown), shown  # written at 2 s, hidden

    asyncio.run(run())
