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
