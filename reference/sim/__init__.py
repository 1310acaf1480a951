"""The deterministic simulation kernel: virtual clock, event queue, seeded streams."""

from reference.sim.kernel import Kernel
from reference.sim.rng import derive_seed, stream

__all__ = ["Kernel", "derive_seed", "stream"]
