"""Chapter 1: correct, but a ceiling and a single point of failure."""

from __future__ import annotations

from tests.chapters.conftest import run


def test_steady_load_is_served_whole_and_checks_pass() -> None:
    s = run("ch1", "steady", seed=1, variant="monolith", duration_s=2.0).summary
    assert s["goodput_tps"] > 0.95 * s["offered_tps"]
    assert s["p99_ms"] < 100.0
    assert s["checks"]["bank"]["valid"] is True and s["checks"]["ledger"]["valid"] is True


def test_the_midnight_spike_collapses_goodput_and_p99_exceeds_the_deadline() -> None:
    s = run("ch1", "double11", seed=1, variant="monolith", duration_s=3.0).summary
    series = s["series"]
    peak = max(series["offered_tps"])
    assert peak > 3 * s["capacity_tps"]  # the spike is several times what one node serves
    # Goodput collapses: in the last 750 ms of traffic the node is 100% busy and
    # serves almost nobody in time, because every request it answers has waited
    # longer than its client would.
    end_ms = series["t_ms"][0] + 3_000.0
    last = [
        g
        for t, g in zip(series["t_ms"], series["goodput_tps"], strict=True)
        if end_ms - 750 <= t < end_ms
    ]
    assert max(last) < 0.1 * s["capacity_tps"]
    assert s["goodput_tps"] < 0.5 * s["capacity_tps"] < s["offered_tps"]
    assert s["p99_ms"] > s["deadline_ms"]
    assert s["errors"]["timeout"] > 0.5 * s["payments"]
    assert s["checks"]["bank"]["valid"] is True  # slow, but still correct


def test_a_crash_is_an_outage_that_loses_nothing() -> None:
    s = run("ch1", "crash", seed=1, variant="monolith", duration_s=2.0).summary
    kinds = [kind for _, kind, _ in s["timeline"]]
    assert "crash" in kinds and "restart" in kinds
    assert s["errors"].get("timeout", 0) > 0  # nobody is served while it is down
    # The disk was synced before every "paid": every acknowledged payment survives.
    assert s["checks"]["ledger"]["valid"] is True
