"""Degrade controls: statistics, flow rules, breakers, adaptive limits, retry budgets,
deadlines and degrade switches, on a caller-supplied clock; and the sidecar that
wraps them around the calls of any node (chapter 6)."""

from reference.degrade.adaptive import Gradient2, SystemRule
from reference.degrade.breaker import TRANSITIONS, Breaker, BreakerRule, mermaid
from reference.degrade.cluster import (
    ClusterRule,
    TokenReply,
    TokenRequest,
    TokenServer,
    TokenServerConfig,
)
from reference.degrade.control import ControlDesk, ControlPlane
from reference.degrade.dependency import BestEffortService, DependencyPlan
from reference.degrade.flow import FlowDecision, FlowRule, FlowRules, RateLimiter, WarmUp
from reference.degrade.guard import Blocked, Entry, Guard, GuardConfig
from reference.degrade.hot import ParamFlowRule, ParamLimiter
from reference.degrade.leases import LeaseBook, LeaseRule, TokenLedger
from reference.degrade.messages import ControlAck, ControlUpdate, EffortReply, EffortRequest
from reference.degrade.retry import Deadline, RetryThrottle, backoff_ms
from reference.degrade.sidecar import BestEffortCall, Sidecar, SidecarConfig
from reference.degrade.switches import DEFAULT_PLAN, DegradePlan, Switch, SwitchBoard
from reference.degrade.window import SlidingWindow, Statistics

__all__ = [
    "DEFAULT_PLAN",
    "TRANSITIONS",
    "BestEffortCall",
    "BestEffortService",
    "Blocked",
    "Breaker",
    "BreakerRule",
    "ClusterRule",
    "ControlAck",
    "ControlDesk",
    "ControlPlane",
    "ControlUpdate",
    "Deadline",
    "DegradePlan",
    "DependencyPlan",
    "EffortReply",
    "EffortRequest",
    "Entry",
    "FlowDecision",
    "FlowRule",
    "FlowRules",
    "Gradient2",
    "Guard",
    "GuardConfig",
    "LeaseBook",
    "LeaseRule",
    "ParamFlowRule",
    "ParamLimiter",
    "RateLimiter",
    "RetryThrottle",
    "Sidecar",
    "SidecarConfig",
    "SlidingWindow",
    "Statistics",
    "Switch",
    "SwitchBoard",
    "SystemRule",
    "TokenLedger",
    "TokenReply",
    "TokenRequest",
    "TokenServer",
    "TokenServerConfig",
    "WarmUp",
    "backoff_ms",
    "mermaid",
]
