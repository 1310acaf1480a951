"""The Universal Scalability Law (Gunther): how throughput bends as load grows.

    C(N) = N / (1 + σ(N − 1) + κ N (N − 1)),   X(N) = λ C(N)

N is the concurrency (requests in flight), X(N) the throughput measured at
it, λ the throughput of one. σ is contention (the share of work that
queues on something shared: throughput flattens), κ coherency (the cost of
keeping copies in agreement, growing with N²: throughput falls). With κ > 0
throughput peaks at N* = sqrt((1 − σ) / κ), and that peak is the capacity.

The fit: for a given λ the law is linear in σ and κ,
N λ / X − 1 = σ (N − 1) + κ N (N − 1), solved by least squares; λ itself is
found by a golden-section search on the relative error of X. At least six
steady-state points (fewer, and two parameters fit anything).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["MIN_POINTS", "UslFit", "fit_usl", "usl_capacity"]

MIN_POINTS = 6
_GOLDEN_STEPS = 80


def usl_capacity(n: float, sigma: float, kappa: float) -> float:
    """C(N): the relative capacity at concurrency n."""
    return n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))


@dataclass(frozen=True)
class UslFit:
    lam: float  # throughput of one (per second)
    sigma: float  # contention
    kappa: float  # coherency
    rmse_rel: float  # root mean square relative error of the fit on the points
    points: int

    def throughput(self, n: float) -> float:
        return self.lam * usl_capacity(n, self.sigma, self.kappa)

    @property
    def peak_concurrency(self) -> float:
        """N* = sqrt((1 − σ)/κ); inf when κ = 0 (throughput only flattens)."""
        if self.kappa <= 0:
            return math.inf
        return math.sqrt(max(0.0, 1.0 - self.sigma) / self.kappa)

    @property
    def peak_throughput(self) -> float:
        """X(N*), or the asymptote λ/σ when κ = 0."""
        n = self.peak_concurrency
        if math.isinf(n):
            return self.lam / self.sigma if self.sigma > 0 else math.inf
        return self.throughput(n)


def _solve(n: np.ndarray, x: np.ndarray, lam: float) -> tuple[float, float, float]:
    """σ, κ (both >= 0) for a given λ, and the relative error of X."""
    y = n * lam / x - 1.0
    a = np.column_stack([n - 1.0, n * (n - 1.0)])
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    sigma, kappa = max(0.0, float(coef[0])), max(0.0, float(coef[1]))
    if coef[0] < 0 or coef[1] < 0:  # one at its bound: refit the other alone
        col = a[:, 1] if coef[0] < 0 else a[:, 0]
        only = max(0.0, float(col @ y / (col @ col))) if col @ col > 0 else 0.0
        sigma, kappa = (0.0, only) if coef[0] < 0 else (only, 0.0)
    pred = lam * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))
    err = float(np.sqrt(np.mean(((pred - x) / x) ** 2)))
    return sigma, kappa, err


# --8<-- [start:fit]
def fit_usl(concurrency: Sequence[float], throughput: Sequence[float]) -> UslFit:
    """Fit σ, κ and λ to measured (N, X(N)) points. ValueError if it cannot."""
    if len(concurrency) != len(throughput):
        raise ValueError("one throughput per concurrency")
    points = sorted((float(n), float(x)) for n, x in zip(concurrency, throughput, strict=True))
    if len({n for n, _ in points}) < MIN_POINTS:
        raise ValueError(f"a USL fit needs at least {MIN_POINTS} distinct concurrencies")
    if any(n < 1 or x <= 0 for n, x in points):
        raise ValueError("concurrency must be >= 1 and throughput > 0")
    n = np.array([p[0] for p in points])
    x = np.array([p[1] for p in points])
    # λ is at least the best per-request throughput seen (C(N) <= N), and not
    # far above it for any system that scales at all.
    lo = float(np.max(x / n))
    hi = lo * 4.0
    golden = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = lo, hi
    c, d = b - golden * (b - a), a + golden * (b - a)
    fc, fd = _solve(n, x, c)[2], _solve(n, x, d)[2]
    for _ in range(_GOLDEN_STEPS):  # bounded: the interval shrinks by 0.618 a step
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - golden * (b - a)
            fc = _solve(n, x, c)[2]
        else:
            a, c, fc = c, d, fd
            d = a + golden * (b - a)
            fd = _solve(n, x, d)[2]
    lam = (a + b) / 2.0
    sigma, kappa, err = _solve(n, x, lam)
    return UslFit(lam=lam, sigma=sigma, kappa=kappa, rmse_rel=err, points=len(points))


# --8<-- [end:fit]
