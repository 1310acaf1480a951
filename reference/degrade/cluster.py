"""Cluster flow control: one token server counts a global limit for every node.

A node that holds a cluster rule asks the token server for a token before
each call (`TokenRequest`); the server answers from its own sliding window
(Sentinel's server: 10 buckets over a second), so the limit holds across
all the nodes together however the traffic is spread between them.

When the server does not answer within `token_timeout_ms` (Sentinel's
client waits 20 ms), or says it is itself overloaded, the node falls back
to a local rule. Sentinel falls back to the *whole* cluster threshold on
every node (its issue #2660), so N nodes admit N times the limit exactly
when the server is gone; here each node falls back to count / N, the share
it would have had.

Failover: a rule may name standby servers. After `failover_after` token
requests in a row without an answer, a node moves to the next server and
stays there. The servers share no state, and need none worth a consensus
group: a server's state is the spacing of the last tokens it handed out,
under a second of it, so a standby that starts empty admits at most one
queueing window too many. The cost is split brain under a partition: a
node that still reaches the old server and one that has moved each get the
whole count, so the limit can double while the partition lasts (a Paxos
group with a leader lease, chapter 4, would close that; it is not built).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

from reference.codec import Message, message
from reference.degrade.flow import RateLimiter
from reference.degrade.window import SlidingWindow
from reference.node import Context, Node, NodeId

__all__ = ["ClusterRule", "TokenReply", "TokenRequest", "TokenServer", "TokenServerConfig"]

TOKEN_TIMEOUT_MS = 20.0  # Sentinel: the cluster client's request timeout
SERVER_QPS_MAX = 30_000.0  # Sentinel: ServerFlowConfig maxAllowedQps (self-protection)
SERVER_WORK_MS = 0.02  # busy time per token request


@message
class TokenRequest(Message):
    req_id: str
    flow_id: str  # the cluster rule (its resource)
    acquire: int


@message
class TokenReply(Message):
    req_id: str
    flow_id: str
    status: str  # "ok" | "blocked" | "too-many" (the server protects itself) | "no-rule"
    wait_ms: float  # "ok": how long the call must wait before it goes (Sentinel's SHOULD_WAIT)
    node: str


# --8<-- [start:cluster-rule]
@dataclass(frozen=True)
class ClusterRule:
    resource: str
    count: float  # calls per second across every node together
    server: NodeId  # the token server
    nodes: int  # how many nodes share the limit: each falls back to count / nodes
    token_timeout_ms: float = TOKEN_TIMEOUT_MS
    fallback_whole: bool = False  # True: Sentinel's fallback (the whole count on every node)
    max_queueing_time_ms: float = 100.0  # calls leave evenly spaced, as the rate limiter does
    standbys: tuple[NodeId, ...] = ()  # token servers to move to, in order
    failover_after: int = 3  # token requests in a row without an answer

    def server_at(self, index: int) -> NodeId:
        servers = (self.server, *self.standbys)
        return servers[index % len(servers)]

    def __post_init__(self) -> None:
        assert self.count >= 0 and self.nodes >= 1 and self.token_timeout_ms > 0, self
        assert self.failover_after >= 1 and self.server not in self.standbys, self

    @property
    def fallback_count(self) -> float:
        return self.count if self.fallback_whole else self.count / self.nodes


# --8<-- [end:cluster-rule]


@dataclass(frozen=True)
class TokenServerConfig:
    limits: dict[str, float] = field(default_factory=dict)  # flow id -> calls per second
    max_queueing_time_ms: float = 100.0
    qps_max: float = SERVER_QPS_MAX
    interval_ms: float = 1_000.0
    buckets: int = 10  # Sentinel's server: sampleCount 10


class TokenServer(Node):
    """Hands out tokens, evenly spaced, per flow id; keeps no state worth a disk.

    Beyond Sentinel's server, which counts a window and says yes or no (or
    SHOULD_WAIT for prioritized calls), every token here comes from a rate
    limiter: "ok, after wait_ms", so N nodes together send the database an
    even stream instead of a burst at the start of each window.
    """

    def __init__(self, config: TokenServerConfig) -> None:
        self.config = config
        self.limiters = {
            f: RateLimiter(count, config.max_queueing_time_ms) for f, count in config.limits.items()
        }
        self.load = SlidingWindow(config.interval_ms, config.buckets)

    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        if not isinstance(msg, TokenRequest):
            super().on_message(ctx, src, msg)
            return
        ctx.work(SERVER_WORK_MS)
        now_ms = ctx.now_ms()
        self.load.add_pass(now_ms)
        limiter = self.limiters.get(msg.flow_id)
        wait_ms = 0.0
        if self.load.pass_qps(now_ms) > self.config.qps_max:
            status = "too-many"
        elif limiter is None:
            status = "no-rule"
        else:
            decision = limiter.check(now_ms, msg.acquire)
            status, wait_ms = ("ok", decision.wait_ms) if decision.passed else ("blocked", 0.0)
        ctx.count(f"tokens_{status}")
        ctx.send(src, TokenReply(msg.req_id, msg.flow_id, status, wait_ms, ctx.node_id))

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        super().on_timer(ctx, tag)
