"""Sharding by user id: N SQL stores, gateways that route, two ways across.

Accounts are spread over N shards by a hash of the user (or merchant) id, so
N stores serve N times the transactions of one. A payment whose buyer and
merchant hash to the same shard is one local transaction, as in chapter 1.
Most do not: the buyer is on one shard and the merchant on another, and the
payment becomes a distributed transaction, coordinated by a gateway:

- variant "naive": debit the buyer's shard, then credit the merchant's.
  Under a crash or a partition the credit fails after the debit committed,
  and the money is gone: the bank checker sees the total drop.
- variant "tcc": try / confirm / cancel with a durable decision and Seata's
  fence. Crashes and partitions delay payments; none loses a cent.

Merchants are Zipf-popular, and a merchant's account lives on one shard: the
hottest merchant makes its shard the hottest (see `load` in the report).
"""

from __future__ import annotations

import hashlib
import random

from chapters.common import SERVICE, SYNC_MS, PaymentDeployment, expect
from chapters.scenarios import SCENARIOS
from chapters.stage import Deployment, Runtime, Stage, StageError, StageOptions
from reference.gateway import GatewayConfig, PaymentGateway
from reference.gateway.router import CellRouter, ShardRouter
from reference.net.topology import Topology
from reference.node import NodeId
from reference.payment import PAYMENT_PROCEDURES, PAYMENT_SCHEMA, open_accounts
from reference.sqlstore import SqlStore, StoreConfig
from reference.tcc import FENCE_SCHEMA, TCC_PROCEDURES
from reference.traffic.plan import DEFAULT_SCALE

__all__ = ["STAGE", "ShardingStage"]

DEFAULT_SHARDS = 4
SHARDS_MAX = 32
SHARDS_PER_GATEWAY = 4
CLIENTS = 2
GATEWAY_CRASH_AFTER_MS = 600.0  # after the naive credit timeout (300 ms) has fired
# Busy time per payment, in ms of store time, from the service-time model:
LOCAL_PAY_MS = SERVICE.cost_ms(6) + SYNC_MS  # one local transaction
TCC_PAY_MS = 2 * (SERVICE.cost_ms(3) + SYNC_MS) + 2 * (SERVICE.cost_ms(4) + SYNC_MS)
NAIVE_PAY_MS = 2 * (SERVICE.cost_ms(3) + SYNC_MS)

WHY_NAIVE = (
    "The naive transfer debits the buyer's shard, then credits the merchant's; "
    "when the credit times out (a crashed or cut-off shard) the debit stays and the "
    "money is gone. Whether a crash lands between the two steps depends on the seed."
)


def _shard_ids(n: int) -> list[NodeId]:
    return [f"shard-{i}" for i in range(n)]


def _gateway_ids(n_shards: int) -> list[NodeId]:
    return [f"gw-{i}" for i in range(max(1, -(-n_shards // SHARDS_PER_GATEWAY)))]


class ShardingDeployment(PaymentDeployment):
    def capacity_tps(self) -> float:
        n = len(self.roles["shard"])
        cross_ms = TCC_PAY_MS if self.options.variant == "tcc" else NAIVE_PAY_MS
        per_payment_ms = (1 / n) * LOCAL_PAY_MS + (1 - 1 / n) * cross_ms
        return n * 1000.0 / per_payment_ms

    def crash_victims(self) -> list[NodeId]:
        return [self.roles["shard"][-1], self.roles["gateway"][0]]

    def crash_plan(self) -> list[tuple[float, list[NodeId]]]:
        # A participant first (credits to it time out after the debit committed),
        # then a coordinator (transfers in flight lose the one who knew of them).
        shard, gateway = self.crash_victims()
        return [(0.0, [shard]), (GATEWAY_CRASH_AFTER_MS, [gateway])]

    def partition_groups(self) -> list[set[str]]:
        cut = self.roles["shard"][-1]
        return [{cut}, set(self.roles["gateway"])]


# --8<-- [start:sharding-build]
class ShardingStage(Stage):
    id = "ch2"
    title = "Sharding by user id"
    aliases = ("sharding",)
    variants = {  # noqa: RUF012
        "tcc": "cross-shard payments by TCC with Seata's fence",
        "naive": "cross-shard payments as debit-then-credit, no recovery",
    }
    default_variant = "tcc"
    default_scale = DEFAULT_SCALE
    scenarios = SCENARIOS
    expected = {  # noqa: RUF012
        ("naive", scenario): {
            "bank": expect(False, WHY_NAIVE, always=False),
            "ledger": expect(False, WHY_NAIVE, always=False),
        }
        for scenario in ("crash", "partition", "double11")
    }

    def validate(self, options: StageOptions) -> None:
        super().validate(options)
        if not 0 <= options.shards <= SHARDS_MAX:
            raise StageError(f"--shards must be between 1 and {SHARDS_MAX}, not {options.shards}")
        if options.cells:
            raise StageError("chapter 2 has shards, not cells: use --shards")

    def options(self, **overrides: object) -> StageOptions:
        opts = super().options(**overrides)
        return opts if opts.shards else opts.with_(shards=DEFAULT_SHARDS)

    def topology(self, options: StageOptions) -> Topology:
        n = options.shards or DEFAULT_SHARDS
        clients = [f"client-{i + 1}" for i in range(CLIENTS)]
        return Topology.build(
            {
                "hangzhou": {
                    "hz-app": _gateway_ids(n),
                    "hz-db": _shard_ids(n),
                    "hz-users": clients,
                }
            }
        )

    def build(self, rt: Runtime, options: StageOptions) -> Deployment:
        topo = self.topology(options)
        dep = ShardingDeployment(self, rt, options, topo)
        shards = _shard_ids(options.shards or DEFAULT_SHARDS)
        gateways = _gateway_ids(len(shards))
        balances = dep.opening_balances()
        router_config = GatewayConfig(shards=tuple(shards), cross=options.variant)
        router = ShardRouter(shards)
        for shard in shards:
            mine = {a: b for a, b in balances.items() if router.shard_of(a) == shard}
            config = StoreConfig(
                schema=PAYMENT_SCHEMA + FENCE_SCHEMA,
                procedures={**PAYMENT_PROCEDURES, **TCC_PROCEDURES},
                init=lambda txn, mine=mine: open_accounts(txn, mine),
                service=SERVICE,
            )
            rt.add_node(shard, lambda _nid, config=config: SqlStore(config))
        for gw in gateways:
            rt.add_node(gw, lambda _nid: PaymentGateway(router_config))
        dep.roles["shard"].extend(shards)
        dep.roles["gateway"].extend(gateways)
        dep.record_init(balances)

        def route(buyer: str, pid: str, rng: random.Random, rules: CellRouter | None) -> NodeId:
            # The same gateway for every retry of a payment: it coordinates it.
            digest = hashlib.blake2b(pid.encode(), digest_size=4).digest()
            return gateways[int.from_bytes(digest, "big") % len(gateways)]

        clients = topo.nodes_in("hz-users")
        dep.add_clients(clients, route, gateways[0])
        dep.standard_checks()
        return dep

    # --8<-- [end:sharding-build]


STAGE = ShardingStage()
