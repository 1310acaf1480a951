"""The monolith: the payment service and its database on one node.

It is correct: every payment is one SQLite transaction, synced to disk before
the client hears "paid", so the bank balances and a crash loses nothing. It
is also a ceiling: one node serves about `store_capacity_tps()` payments a
second. At the midnight spike the queue grows faster than it drains, every
request waits longer than its client will, the clients retry, and goodput
falls to nearly nothing while the node stays 100% busy. A crash, or a
partition between the users and the node, is a total outage.
"""

from __future__ import annotations

import random

from chapters.common import SERVICE, PaymentDeployment, expect, store_capacity_tps
from chapters.scenarios import SCENARIOS
from chapters.stage import Deployment, Runtime, Stage, StageError, StageOptions
from reference.gateway.router import CellRouter
from reference.net.topology import Topology
from reference.node import NodeId
from reference.payment import PAYMENT_PROCEDURES, PAYMENT_SCHEMA, open_accounts
from reference.sqlstore import SqlStore, StoreConfig
from reference.traffic.plan import DEFAULT_SCALE

__all__ = ["STAGE", "MonolithStage"]

MONOLITH = "monolith"
CLIENTS = ("client-1", "client-2")
READ_INTERVAL_MS = 500.0  # the monolith reads are one instant: check them mid-run too
REFUND_RATIO = 0.02


class MonolithDeployment(PaymentDeployment):
    def capacity_tps(self) -> float:
        return store_capacity_tps()

    def crash_victims(self) -> list[NodeId]:
        return [MONOLITH]

    def partition_groups(self) -> list[set[str]]:
        return [{MONOLITH}, set(self.roles["client"])]


# --8<-- [start:monolith-build]
class MonolithStage(Stage):
    id = "ch1"
    title = "The monolith"
    aliases = ("monolith",)
    variants = {"monolith": "the payment service and one SQL database on one node"}  # noqa: RUF012
    default_variant = "monolith"
    default_scale = DEFAULT_SCALE
    scenarios = SCENARIOS
    expected = {  # noqa: RUF012
        ("*", "double11"): {
            "ledger": expect(
                "unknown",
                "Thousands of payments end without an answer (info) under the spike; "
                "which subset took effect is too many possibilities to enumerate.",
                always=False,
            ),
        },
    }

    def validate(self, options: StageOptions) -> None:
        super().validate(options)
        if options.shards not in (0, 1) or options.cells not in (0, 1):
            raise StageError("the monolith has one node: --shards and --cells do not apply")

    def topology(self, options: StageOptions) -> Topology:
        return Topology.build({"hangzhou": {"hz-1": [MONOLITH], "hz-users": list(CLIENTS)}})

    def build(self, rt: Runtime, options: StageOptions) -> Deployment:
        dep = MonolithDeployment(self, rt, options, self.topology(options))
        balances = dep.opening_balances()
        config = StoreConfig(
            schema=PAYMENT_SCHEMA,
            procedures=PAYMENT_PROCEDURES,
            init=lambda txn: open_accounts(txn, balances),
            service=SERVICE,
        )
        rt.add_node(MONOLITH, lambda _nid: SqlStore(config))
        dep.roles["shard"].append(MONOLITH)
        dep.roles["gateway"].append(MONOLITH)
        dep.record_init(balances)

        def route(buyer: str, pid: str, rng: random.Random, rules: CellRouter | None) -> NodeId:
            return MONOLITH  # there is nowhere else to go

        dep.add_clients(
            list(CLIENTS), route, MONOLITH,
            read_interval_ms=READ_INTERVAL_MS, refund_ratio=REFUND_RATIO,
        )  # fmt: skip
        dep.standard_checks()
        return dep

    # --8<-- [end:monolith-build]


STAGE = MonolithStage()
