"""Capacity: the Universal Scalability Law fit, and open-model replay of recorded traffic."""

from __future__ import annotations

from reference.capacity.replay import recorded_arrivals, replay_arrivals
from reference.capacity.usl import UslFit, fit_usl, usl_capacity

__all__ = ["UslFit", "fit_usl", "recorded_arrivals", "replay_arrivals", "usl_capacity"]
