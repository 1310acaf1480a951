"""The USL fit recovers a known system; the replay is open-model and scales."""

from __future__ import annotations

import random

import pytest

from checks.history import Event
from reference.capacity import fit_usl, recorded_arrivals, replay_arrivals, usl_capacity

CONCURRENCY = (1, 2, 4, 8, 16, 24, 32, 48, 64)


# Where κN dwarfs σ over the whole range (σ=0.02, κ=0.01), 1% noise hides σ:
# no fit can tell it, so the cases keep both effects visible in the points.
@pytest.mark.parametrize(("sigma", "kappa"), [(0.05, 0.002), (0.2, 0.0005), (0.1, 0.001)])
def test_usl_fit_recovers_known_sigma_and_kappa_within_10_percent(
    sigma: float, kappa: float
) -> None:
    rng = random.Random(7)
    lam = 120.0
    # A synthetic system: the law, plus 1% measurement noise on every point.
    x = [lam * usl_capacity(n, sigma, kappa) * (1 + rng.uniform(-0.01, 0.01)) for n in CONCURRENCY]
    fit = fit_usl(CONCURRENCY, x)
    assert fit.sigma == pytest.approx(sigma, rel=0.10)
    assert fit.kappa == pytest.approx(kappa, rel=0.10)
    assert fit.lam == pytest.approx(lam, rel=0.05)
    true_peak = (1 - sigma) ** 0.5 / kappa**0.5
    assert fit.peak_concurrency == pytest.approx(true_peak, rel=0.10)


def test_usl_fit_refuses_too_few_points() -> None:
    with pytest.raises(ValueError, match="at least 6"):
        fit_usl([1, 2, 4, 8, 16], [1, 2, 3, 4, 5])


def test_replay_is_open_model_and_scaled() -> None:
    history = [
        Event("invoke", i, "transfer", {"from": f"u{i}", "to": "m1", "amount_cents": 100},
              float(i * 10), i)
        for i in range(100)
    ]  # fmt: skip
    rec = recorded_arrivals(history)
    assert len(rec) == 100 and rec[0].buyer == "u0"
    for factor in (1.0, 1.1, 2.0):
        out = replay_arrivals(rec, factor, 0.0, 2_000.0)
        # 100 arrivals per second recorded: factor x that, over 2 s, within one arrival.
        assert abs(len(out) - 200 * factor) <= 2, (factor, len(out))
        assert all(p.load_test for p in out)
        assert [p.time_ms for p in out] == sorted(p.time_ms for p in out)
    # The schedule is fixed in advance: nothing about replies is an input.
    assert replay_arrivals(rec, 2.0, 0.0, 500.0) == replay_arrivals(rec, 2.0, 0.0, 500.0)
