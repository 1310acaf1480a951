"""Drivers that run sans-IO nodes: `SimRuntime` (virtual time, one process)."""

from reference.runtime.sim import DiskConfig, SimContext, SimRuntime, first_divergence

__all__ = ["DiskConfig", "SimContext", "SimRuntime", "first_divergence"]
