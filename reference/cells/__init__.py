"""LDC cells: RZone routing, GZone/CZone configuration, failover to standby cells.

The cell router itself lives with the other routers (`reference.gateway.router`);
asynchronous replication is the SQL store's (`reference.sqlstore.node`).
"""

from reference.cells.failover import CellPair, FailoverController
from reference.cells.messages import (
    ConfigAck,
    ConfigUpdate,
    DirectoryRead,
    DirectoryReply,
    MoveRange,
    RulesAck,
    SetRules,
)
from reference.cells.zones import CZone, GZone

__all__ = [
    "CZone",
    "CellPair",
    "ConfigAck",
    "ConfigUpdate",
    "DirectoryRead",
    "DirectoryReply",
    "FailoverController",
    "GZone",
    "MoveRange",
    "RulesAck",
    "SetRules",
]
