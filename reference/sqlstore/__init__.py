"""A SQL store node: SQLite transactions, a synced commit log, a capacity."""

from reference.sqlstore.messages import (
    Promote,
    PromoteAck,
    ReplicateAck,
    ReplicateBatch,
    StoreRejected,
)
from reference.sqlstore.node import COMMIT_LOG, Call, Procedure, SqlStore, StoreConfig
from reference.sqlstore.service_time import ServiceTime
from reference.sqlstore.txn import Abort, Txn, apply_writes

__all__ = [
    "COMMIT_LOG",
    "Abort",
    "Call",
    "Procedure",
    "Promote",
    "PromoteAck",
    "ReplicateAck",
    "ReplicateBatch",
    "ServiceTime",
    "SqlStore",
    "StoreConfig",
    "StoreRejected",
    "Txn",
    "apply_writes",
]
