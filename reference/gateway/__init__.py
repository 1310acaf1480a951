"""Gateways and routers: user-id hash shards (ch2), uid-bucket cells (ch3)."""

from reference.gateway.messages import (
    Forwarded,
    GatewayRejected,
    Ping,
    Pong,
    RulesUpdate,
    RulesUpdateAck,
)
from reference.gateway.node import GatewayConfig, PaymentGateway
from reference.gateway.router import (
    BUCKETS,
    CellRouter,
    OneStore,
    RoutingRules,
    ShardRouter,
    StoreRouting,
    even_buckets,
)

__all__ = [
    "BUCKETS",
    "CellRouter",
    "Forwarded",
    "GatewayConfig",
    "GatewayRejected",
    "OneStore",
    "PaymentGateway",
    "Ping",
    "Pong",
    "RoutingRules",
    "RulesUpdate",
    "RulesUpdateAck",
    "ShardRouter",
    "StoreRouting",
    "even_buckets",
]
