"""LDC cells: every request served wholly inside its user's cell.

Two cities hold N RZone cells. Each cell owns a range of uid buckets
(uid % 100; the table is data, in the GZone) and holds everything a payment
of its users needs: the users' accounts *and* a sub-account of every
merchant (`m7@rz2`), so a payment is one local transaction in one cell,
and cells share nothing. That is why capacity grows linearly with cells
(`d11 bench cells`). A request that lands in the wrong cell is forwarded to
the right one and counted; a payment between users of two cells is the one
defined cross-cell path (TCC, as in chapter 2).

One GZone (Hangzhou) holds what cannot be split by user: the routing rules
and the merchant directory; each city's CZone is a read copy of it.

Each cell replicates asynchronously to a standby cell in the other city.
When a city dies, the controller promotes the standbys and rewrites the
rules: the dead cells' users are served again within seconds. But what the
dead primaries had committed and not yet shipped is gone, although each of
those payments was acknowledged: RPO > 0. The checkers list them. Chapter 4
replaces the asynchronous copy with a Paxos group.
"""

from __future__ import annotations

import random
from typing import Any

from chapters.ch3_cells.lost import check_lost_payments
from chapters.common import SERVICE, SYNC_MS, PaymentDeployment, expect
from chapters.scenarios import SCENARIOS
from chapters.stage import Deployment, Runtime, Stage, StageError, StageOptions
from reference.cells import CellPair, CZone, FailoverController, GZone
from reference.clients import Payment
from reference.gateway import GatewayConfig, PaymentGateway
from reference.gateway.router import BUCKETS, CellRouter, RoutingRules, even_buckets
from reference.net.topology import Topology
from reference.node import NodeId
from reference.payment import (
    PAYMENT_PROCEDURES,
    PAYMENT_SCHEMA,
    merchant_account,
    open_accounts,
    user_account,
)
from reference.sqlstore import SqlStore, StoreConfig
from reference.tcc import FENCE_SCHEMA, TCC_PROCEDURES
from reference.traffic.plan import DEFAULT_SCALE

__all__ = ["STAGE", "CellsStage"]

CITIES = ("hangzhou", "shanghai")
DEFAULT_CELLS = 4
CELLS_MAX = 32
CLIENTS_PER_CITY = 2
USERS = 1_000
OPENING_CENTS = 4_000_000
CROSS_CELL_RATIO = 0.02  # payments from a user to a user of another cell
MISROUTE_RATIO = 0.05  # requests that reach a gateway of the wrong cell
SHIP_INTERVAL_MS = 20.0  # asynchronous replication: how often the log is shipped
SUSPECT_AFTER_MS = 1_500.0  # the controller declares a silent cell dead after this
CRASHED_CITY = "shanghai"  # the GZone lives in Hangzhou: its own failover is chapter 4's
LOCAL_PAY_MS = SERVICE.cost_ms(6) + SYNC_MS

WHY_RPO = (
    "Asynchronous replication: the primary acknowledges a payment before shipping it to "
    "the standby. When the city dies, the payments committed in the last shipping window "
    "are acknowledged but gone from the promoted standby (RPO > 0). Chapter 4 fixes it."
)
WHY_SPLIT_BRAIN = (
    "A partition longer than the controller's suspicion time fails over cells that are "
    "still alive on the other side: for a while both copies take payments (split brain), "
    "and what the cut-off primary acknowledged is not in the standby it was replaced by. "
    "The partition scenario's cut (1 s) is shorter than the suspicion time (1.5 s) and "
    "passes; a harness's longer cuts need chapter 4."
)
WHY_RPO_BANK = (
    "A cross-cell payment whose debit or credit was in the lost window is half-applied "
    "after failover, so the total can move too (only when such a payment was in flight)."
)


def cell_name(i: int) -> str:
    return f"rz{i}"


def standby_name(i: int) -> str:
    return f"rz{i}s"


def city_of_cell(i: int) -> str:
    return CITIES[i % len(CITIES)]


def other_city(city: str) -> str:
    return CITIES[1 - CITIES.index(city)]


class CellsDeployment(PaymentDeployment):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.n_cells = 0
        self.boot_rules: RoutingRules | None = None
        self.failovers: list[dict[str, Any]] = []
        self.crash_ms: float | None = None

    def capacity_tps(self) -> float:
        return self.n_cells * 1000.0 / LOCAL_PAY_MS

    def crash_victims(self) -> list[NodeId]:
        clients = set(self.roles["client"])
        return [n for n in self.topology.nodes_in(CRASHED_CITY) if n not in clients]

    def restart_after_ms(self) -> float | None:
        return None  # a city does not come back in seconds: its cells fail over

    def crash(self, nodes: list[NodeId], why: str = "") -> None:
        if self.crash_ms is None:
            self.crash_ms = self.rt.now_ms
        super().crash(nodes, why or f"the city of {CRASHED_CITY}")

    def partition_groups(self) -> list[set[str]]:
        return [{CITIES[0]}, {CITIES[1]}]

    def wants_payments_read(self) -> bool:
        return True

    def payment_for(
        self, rng: random.Random, time_ms: float, uid: int, mid: int, amount_cents: int
    ) -> Payment:
        assert self.boot_rules is not None
        home = self.boot_rules.buckets[uid % BUCKETS]
        ratio = float(self.options.extra.get("cross_cell_ratio", CROSS_CELL_RATIO))
        if self.n_cells > 1 and rng.random() < ratio:
            # The defined cross-cell path: a transfer to a user of another cell.
            for _ in range(16):
                payee = rng.randrange(self.population.users)
                if self.boot_rules.buckets[payee % BUCKETS] != home:
                    return Payment(time_ms, user_account(uid), user_account(payee), amount_cents)
        # A merchant payment: to the merchant's sub-account in the buyer's own cell.
        return Payment(time_ms, user_account(uid), merchant_account(mid, home), amount_cents)

    def make_payment(self, rng: random.Random, now_ms: float, slot: int) -> Payment:
        """Saturation: slot k keeps cell k % n busy, so every cell has work queued."""
        assert self.boot_rules is not None
        cell = cell_name(slot % self.n_cells)
        buckets = [b for b, owner in enumerate(self.boot_rules.buckets) if owner == cell]
        rounds = max(1, self.population.users // BUCKETS)
        uid = rng.choice(buckets) + BUCKETS * rng.randrange(rounds)
        pop = self.population
        return self.payment_for(rng, now_ms, uid, pop.merchant(rng), pop.amount_cents(rng))

    def merchant_balances(self) -> dict[str, int]:
        return {
            merchant_account(m, cell_name(i)): 0
            for m in range(self.population.merchants)
            for i in range(self.n_cells)
        }

    def on_trace(self, event: Any) -> None:
        """Telemetry subscriber: turn the controller's failover events into notes."""
        if event.kind == "failover-complete":
            since = self.crash_ms if self.crash_ms is not None else event.fields["declared_ms"]
            self.failovers.append(
                {
                    "cell": event.fields["cell"],
                    "declared_ms": event.fields["declared_ms"],
                    "complete_ms": event.time_ms,
                    "failover_ms": event.time_ms - since,
                }
            )
            self.note("failover", f"{event.fields['cell']} -> its standby cell")

    def figures(self) -> dict[str, Any]:
        worst = max((f["failover_ms"] for f in self.failovers), default=None)
        return {
            "failovers": self.failovers,
            "failover_ms": None if worst is None else round(worst, 3),
            "suspect_after_ms": SUSPECT_AFTER_MS,
        }


# --8<-- [start:cells-build]
class CellsStage(Stage):
    id = "ch3"
    title = "LDC cells"
    aliases = ("cells", "ldc")
    variants = {  # noqa: RUF012
        "async": "each cell replicates asynchronously to a standby cell in the other city",
    }
    default_variant = "async"
    default_scale = DEFAULT_SCALE
    scenarios = SCENARIOS
    expected = {  # noqa: RUF012
        ("async", "crash"): {
            "lost-payments": expect(False, WHY_RPO, always=False),
            "ledger": expect(False, WHY_RPO, always=False),
            "bank": expect(False, WHY_RPO_BANK, always=False),
        },
        ("async", "partition"): {
            name: expect(False, WHY_SPLIT_BRAIN, always=False)
            for name in ("lost-payments", "ledger", "bank")
        },
    }

    def validate(self, options: StageOptions) -> None:
        super().validate(options)
        if not 0 <= options.cells <= CELLS_MAX:
            raise StageError(f"--cells must be between 1 and {CELLS_MAX}, not {options.cells}")
        if options.shards:
            raise StageError("chapter 3 has cells, not shards: use --cells")

    def options(self, **overrides: Any) -> StageOptions:
        opts = super().options(**overrides)
        extra = {"users": USERS, "opening_cents": OPENING_CENTS, **opts.extra}
        return opts.with_(cells=opts.cells or DEFAULT_CELLS, extra=extra)

    def topology(self, options: StageOptions) -> Topology:
        n = options.cells or DEFAULT_CELLS
        layout: dict[str, dict[str, list[str]]] = {city: {} for city in CITIES}
        for i in range(n):
            home = city_of_cell(i)
            layout[home][cell_name(i)] = [f"gw-{cell_name(i)}", f"db-{cell_name(i)}"]
            away = other_city(home)
            layout[away][standby_name(i)] = [f"gw-{standby_name(i)}", f"db-{standby_name(i)}"]
        layout[CITIES[0]]["gz"] = ["gzone", "controller"]
        for city in CITIES:
            layout[city][f"cz-{city[:2]}"] = [f"czone-{city[:2]}"]
            layout[city][f"users-{city[:2]}"] = [
                f"client-{city[:2]}-{k + 1}" for k in range(CLIENTS_PER_CITY)
            ]
        return Topology.build(layout)

    def build(self, rt: Runtime, options: StageOptions) -> Deployment:
        topo = self.topology(options)
        dep = CellsDeployment(self, rt, options, topo)
        n = options.cells or DEFAULT_CELLS
        dep.n_cells = n
        primaries = [cell_name(i) for i in range(n)]
        rules = even_buckets(primaries)  # the routing table: data, not code
        dep.boot_rules = rules
        all_cells = primaries + [standby_name(i) for i in range(n)]
        gateways = {c: f"gw-{c}" for c in all_cells}
        stores = {c: f"db-{c}" for c in all_cells}
        balances = dep.opening_balances()
        boot_router = CellRouter(rules, gateways, stores)
        merchants = tuple(range(dep.population.merchants))
        for i, cell in enumerate(primaries):
            mine = {a: b for a, b in balances.items() if boot_router.cell_of_account(a) == cell}
            self._add_cell(rt, dep, cell, standby_name(i), mine, rules, gateways, stores)
        czones = [f"czone-{city[:2]}" for city in CITIES]
        client_ids = [n for n in topo.nodes() if n.startswith("client-")]
        for city, czone in zip(CITIES, czones, strict=True):
            subs = [g for c, g in gateways.items() if topo.city_of(g) == city] + client_ids
            rt.add_node(czone, lambda _nid, subs=subs: CZone(rules, merchants, subs))
        rt.add_node("gzone", lambda _nid: GZone(rules, merchants, czones))
        pairs = {
            cell: CellPair(cell, gateways[cell], standby_name(i), stores[standby_name(i)])
            for i, cell in enumerate(primaries)
        }
        rt.add_node(
            "controller",
            lambda _nid: FailoverController(
                pairs, rules, "gzone", suspect_after_ms=SUSPECT_AFTER_MS
            ),
        )
        dep.roles["config"].extend(["gzone", *czones])
        dep.roles["controller"].append("controller")
        dep.roles["cell"].extend(primaries)
        dep.record_init(balances)
        misroute = float(options.extra.get("misroute_ratio", MISROUTE_RATIO))

        def route(buyer: str, pid: str, rng: random.Random, router: CellRouter | None) -> NodeId:
            assert router is not None
            uid = int(buyer[1:])
            if rng.random() < misroute:  # a stale cookie: any cell that serves users
                return router.gateways[rng.choice(sorted(set(router.rules.buckets)))]
            return router.gateway_of_user(uid)

        dep.add_clients(
            client_ids, route, gateways[primaries[0]],
            rules=lambda: CellRouter(rules, dict(gateways), dict(stores)),
        )  # fmt: skip
        dep.standard_checks()
        dep.checks["lost-payments"] = check_lost_payments
        telemetry = getattr(rt, "telemetry", None)
        if telemetry is not None:
            telemetry.subscribe(dep.on_trace)
        return dep

    def _add_cell(
        self,
        rt: Runtime,
        dep: CellsDeployment,
        cell: str,
        standby: str,
        accounts: dict[str, int],
        rules: RoutingRules,
        gateways: dict[str, NodeId],
        stores: dict[str, NodeId],
    ) -> None:
        """A primary cell (gateway + store) and its standby cell in the other city."""
        schema = PAYMENT_SCHEMA + FENCE_SCHEMA
        procedures = {**PAYMENT_PROCEDURES, **TCC_PROCEDURES}
        primary = StoreConfig(
            schema=schema, procedures=procedures, service=SERVICE,
            init=lambda txn: open_accounts(txn, accounts),
            standby=stores[standby], ship_interval_ms=SHIP_INTERVAL_MS,
        )  # fmt: skip
        follower = StoreConfig(
            schema=schema, procedures=procedures, service=SERVICE, is_standby=True
        )
        rt.add_node(stores[cell], lambda _nid: SqlStore(primary))
        rt.add_node(stores[standby], lambda _nid: SqlStore(follower))
        for c in (cell, standby):
            config = GatewayConfig(
                cross="tcc", cell=c, rules=rules,
                cell_gateways=dict(gateways), cell_stores=dict(stores),
            )  # fmt: skip
            rt.add_node(gateways[c], lambda _nid, config=config: PaymentGateway(config))
            dep.roles["gateway"].append(gateways[c])
        dep.roles["shard"].append(stores[cell])
        dep.roles["replica"].append(stores[standby])

    # --8<-- [end:cells-build]


STAGE = CellsStage()
