"""TCC (try-confirm-cancel) with Seata's fence: coordinator, participant, fence."""

from reference.tcc.coordinator import UNBOUNDED_PHASE2, Branch, Phase2Limits, TccCoordinator
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
    "UNBOUNDED_PHASE2",
    "Branch",
    "FenceRefused",
    "Phase2Limits",
    "TccCoordinator",
    "TccPhase2",
    "TccPhase2Reply",
    "TccTry",
    "TccTryReply",
    "fence_commit",
    "fence_prepare",
    "fence_rollback",
]
