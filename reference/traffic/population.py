"""Who pays whom: a user population and merchants whose popularity follows Zipf.

Users are drawn uniformly: on Double 11 almost everyone buys a little.
Merchants are not: a few flagship stores take a large share of all orders,
and those hot merchants are what turns a balanced shard map into one hot
shard. Zipf's law models that: the merchant of rank k (0 = the hottest) is
chosen with probability proportional to 1 / (k + 1) ** exponent.

Ids are plain integers: user ids in [0, users), merchant ids in
[0, merchants) with the merchant id equal to its popularity rank, so
"merchant 0" is always the hottest one.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from dataclasses import dataclass, field

__all__ = ["Population", "Zipf"]


# --8<-- [start:traffic-zipf]
@dataclass(frozen=True)
class Zipf:
    """Ranks 0..n-1, rank k drawn with probability proportional to 1/(k+1)**exponent."""

    n: int
    exponent: float = 1.0
    _cumulative: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"a Zipf law needs at least one rank, not {self.n}")
        if not self.exponent >= 0:
            raise ValueError(f"the Zipf exponent must be >= 0, not {self.exponent}")
        weights = (1.0 / (k + 1) ** self.exponent for k in range(self.n))
        object.__setattr__(self, "_cumulative", tuple(itertools.accumulate(weights)))

    def sample(self, rng: random.Random) -> int:
        """One rank; a binary search over the cumulative weights, O(log n)."""
        u = rng.random() * self._cumulative[-1]
        rank = bisect.bisect_right(self._cumulative, u)
        assert 0 <= rank < self.n  # u < total, since random() < 1
        return rank

    def share(self, rank: int) -> float:
        """The probability of `rank`: the share of orders it receives."""
        assert 0 <= rank < self.n, rank
        return (1.0 / (rank + 1) ** self.exponent) / self._cumulative[-1]

    # --8<-- [end:traffic-zipf]

    def top_share(self, k: int) -> float:
        """The share of the `k` most popular ranks together."""
        assert 1 <= k <= self.n, k
        return self._cumulative[k - 1] / self._cumulative[-1]


@dataclass(frozen=True)
class Population:
    """The users, the merchants, and what an order costs."""

    users: int = 1_000_000
    merchants: int = 10_000
    zipf_exponent: float = 1.0
    amount_median_cents: int = 8_800  # a typical basket, ¥88
    amount_sigma: float = 1.0  # log-normal spread of basket sizes
    amount_max_cents: int = 5_000_000  # a per-order cap, ¥50,000
    _zipf: Zipf = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.users < 1:
            raise ValueError(f"the population needs at least one user, not {self.users}")
        if self.merchants < 1:
            raise ValueError(f"the population needs at least one merchant, not {self.merchants}")
        if not 1 <= self.amount_median_cents <= self.amount_max_cents:
            raise ValueError(
                f"amount_median_cents must be in [1, {self.amount_max_cents}], "
                f"not {self.amount_median_cents}"
            )
        if not self.amount_sigma >= 0:
            raise ValueError(f"amount_sigma must be >= 0, not {self.amount_sigma}")
        object.__setattr__(self, "_zipf", Zipf(self.merchants, self.zipf_exponent))

    @property
    def zipf(self) -> Zipf:
        """The merchants' popularity law."""
        return self._zipf

    def user(self, rng: random.Random) -> int:
        return rng.randrange(self.users)

    def merchant(self, rng: random.Random) -> int:
        return self._zipf.sample(rng)

    def amount_cents(self, rng: random.Random) -> int:
        """A log-normal basket, rounded to whole cents, at least one cent, capped."""
        raw = rng.lognormvariate(math.log(self.amount_median_cents), self.amount_sigma)
        amount_cents = min(self.amount_max_cents, max(1, round(raw)))
        assert 1 <= amount_cents <= self.amount_max_cents
        return amount_cents
