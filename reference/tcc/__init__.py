"""TCC (try-confirm-cancel) with Seata's fence: coordinator, participant, fence."""

from reference.tcc.coordinator import Branch, TccCoordinator
from reference.tcc.fence import (
    FENCE_SCHEMA,
    STATUS_COMMITTED,
    STATUS_ROLLBACKED,
    STATUS_SUSPENDED,
    STATUS_TRIED,
    FenceRefused,
    fence_commit,
    fence_prepare,
    fence_rollback,
)
from reference.tcc.messages import TccPhase2, TccPhase2Reply, TccTry, TccTryReply
from reference.tcc.participant import TCC_PROCEDURES

__all__ = [
    "FENCE_SCHEMA",
    "STATUS_COMMITTED",
    "STATUS_ROLLBACKED",
    "STATUS_SUSPENDED",
    "STATUS_TRIED",
    "TCC_PROCEDURES",
    "Branch",
    "FenceRefused",
    "TccCoordinator",
    "TccPhase2",
    "TccPhase2Reply",
    "TccTry",
    "TccTryReply",
    "fence_commit",
    "fence_prepare",
    "fence_rollback",
]
