"""The report `d11 run` prints leads with what a user waited, and says what errors count."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from chapters.report import render
from chapters.run import simulate


@pytest.fixture(scope="module")
def midnight() -> dict:
    """The monolith at midnight, short: most payments time out, then are settled."""
    return simulate("ch1", "double11", seed=1, duration_s=2.0).summary


def rendered(summary: dict) -> str:
    out = io.StringIO()
    render(summary, Console(file=out, width=200, no_color=True))
    return " ".join(out.getvalue().split())


def test_per_payment_latency_is_first_attempt_to_acknowledgement(midnight: dict) -> None:
    # A payment's latency counts its retries: never less than its last attempt's reply.
    assert midnight["payment_p99_ms"] == midnight["ok_p99_ms"]
    assert 0 < midnight["payment_p50_ms"] <= midnight["payment_p99_ms"] <= midnight["deadline_ms"]
    text = rendered(midnight)
    payment = f"p99 {midnight['payment_p99_ms']:,.1f} ms"
    attempt = f"p99 {midnight['p99_ms']:,.1f} ms"
    assert text.index("latency") < text.index(payment) < text.index("per payment")
    assert text.index("per payment") < text.index("attempts") < text.index(attempt)


def test_errors_say_what_they_count_and_what_became_of_the_timeouts(midnight: dict) -> None:
    timeouts = midnight["timeouts"]
    assert timeouts > 0, "the spike must time some payments out for this test to mean anything"
    settled = midnight["settled"]
    assert settled["applied"] + settled["not_applied"] + settled["unknown"] == timeouts
    # What the ledger checker calls acknowledged: in time, or settled after the run.
    ledger = midnight["checks"]["ledger"]["summary"]
    assert f"{midnight['ok'] + settled['applied']} acknowledged" in ledger
    text = rendered(midnight)
    assert "payments got no acknowledgement in time" in text
    applied = settled["applied"]
    assert f"the final phase settled the {timeouts:,} timeouts: {applied:,} applied" in text


def test_declined_payments_are_answers_counted_on_their_own() -> None:
    """Chapter 5's small wallets decline payments by design: their users got an
    answer, so they are not 'no acknowledgement in time' (a newcomer's trial read
    66 declines, and nothing else, as 18.1% of payments unanswered)."""
    from chapters.report import _errors_line

    only = {"payments": 364, "error_rate": 0.1813, "errors": {"declined": 66}}
    line = _errors_line(only)
    assert "no acknowledgement" not in line
    assert line.startswith("none of 364 payments went unanswered; 66 declined (18.1%)")
    mixed = {"payments": 1000, "error_rate": 0.05, "errors": {"timeout": 30, "declined": 20}}
    line = _errors_line(mixed)
    assert line.startswith("3.0% of 1,000 payments got no acknowledgement in time (timeout 30)")
    assert "; 20 declined (2.0%): answered no" in line
