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
