"""Networks between nodes: the topology and the simulated network."""

from reference.net.sim import LinkStats, NetConfig, Port, SimNet
from reference.net.topology import Topology

__all__ = ["LinkStats", "NetConfig", "Port", "SimNet", "Topology"]
