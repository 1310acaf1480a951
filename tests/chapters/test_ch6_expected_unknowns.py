"""Chapter 6 without controls: the bank and ledger checks' UNKNOWN is what the chapter
expects (the store still drowning at the final read), and the report says so; an
UNKNOWN nobody expected is named too. The spike's end is not told in its start's words."""

from __future__ import annotations

import io

from rich.console import Console

from chapters.ch6_degrade.stage import STAGE
from chapters.report import _checks


def _said(checks: dict[str, object]) -> str:
    out = io.StringIO()
    Console(file=out, width=300, no_color=True).print(_checks({"checks": checks}))
    return " ".join(out.getvalue().split())


def test_the_chapter_expects_the_unknowns_of_a_run_without_controls() -> None:
    expected = STAGE.expected[("none", "overload-10x")]
    assert expected["bank"].valid == "unknown" and expected["ledger"].valid == "unknown"
    assert not expected["bank"].always  # may: overload-3x's store answers in time


def test_the_report_marks_an_expected_unknown_and_an_unexpected_one() -> None:
    why = "The store may still be overloaded at the end."
    text = _said({
        "bank": {"valid": "unknown", "outcome": "unknown", "summary": "No complete read.",
                 "expected": {"valid": "unknown", "why": why}},
        "lin": {"valid": "unknown", "outcome": "unknown", "summary": "Too big."},
    })  # fmt: skip
    assert f"bank │ EXPECTED UNKNOWN │ No complete read. │ │ Expected: {why}" in text, text
    assert "lin │ UNKNOWN │ Too big. │ │ Unexpected: the chapter says this check holds here" in text


def test_the_spike_end_says_what_comes_back() -> None:
    from chapters.run import simulate

    run = simulate("ch6", "overload-10x", variant="none", duration_s=1.0, checks=())
    notes = {kind: detail for _, kind, detail in run.summary["timeline"]}
    assert notes["spike-start"] == "offered 10x capacity"
    assert notes["spike-end"] == "offered 0.5x capacity again"


def test_a_caller_naming_only_the_start_gets_an_end_in_other_words() -> None:
    """The TUI marks its live midnight with `event(start, end, "midnight")`."""
    from chapters.ch6_degrade.stage import DegradeDeployment
    from chapters.run import simulate

    run = simulate("ch6", "steady", duration_s=0.5, checks=())
    dep = run.deployment
    assert isinstance(dep, DegradeDeployment)
    now = dep.rt.now_ms
    dep.event(now + 1.0, now + 2.0, "midnight")
    dep.rt.run_until(now + 3.0)
    assert [d for _, k, d in dep.timeline if k.startswith("spike")] == [
        "midnight",
        "midnight: over",
    ]
