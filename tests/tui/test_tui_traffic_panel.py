"""The traffic panel's words: its legend, and what it says when buyers run out of money."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from rich.text import Text

from tui.widgets.palette import Palette
from tui.widgets.traffic import DRAINED_NOTE, _errors, _load_chart

P = Palette(ok="green", bad="red", warn="yellow", accent="magenta", primary="blue", info="cyan",
            dim="grey50")  # fmt: skip


def _frame(**kw: Any) -> Any:
    base = {"offered": [80.0] * 200, "served": [70.0] * 200, "bucket_ms": 250.0,
            "errors": {}, "errors_total": {}, "offered_tps": 80.0}  # fmt: skip
    return SimpleNamespace(**(base | kw))


def test_the_legend_never_runs_into_now() -> None:
    for width in range(40, 160):
        out = Text()
        _load_chart(out, _frame(), P, width, 3)
        legend = out.plain.splitlines()[-1]
        assert legend.endswith(" now"), (width, legend)
        assert "not oknow" not in legend, (width, legend)


def test_declines_that_drain_the_buyers_are_said_in_words() -> None:
    drained, out = Text(), Text()
    _errors(drained, _frame(errors={"declined": 60}, errors_total={"declined": 900}), P)
    assert DRAINED_NOTE in drained.plain
    _errors(out, _frame(errors={"declined": 2}, errors_total={"declined": 9}), P)
    assert DRAINED_NOTE not in out.plain and "whole run" in out.plain


def test_the_drained_note_follows_the_declined_count_wherever_it_is_listed() -> None:
    """Seen: "timeout 43  declined 40 (buyers' money ran out)" read right, but with
    declined first the note landed after the timeouts."""
    for errors in ({"timeout": 43, "declined": 40}, {"declined": 40, "timeout": 43}):
        out = Text()
        _errors(out, _frame(errors=errors), P)
        assert f"declined 40 ({DRAINED_NOTE})" in out.plain, out.plain
        assert f"timeout 43 ({DRAINED_NOTE})" not in out.plain, out.plain
