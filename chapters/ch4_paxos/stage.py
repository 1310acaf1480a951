"""Chapter 4: chapter 3's cells, each ledger shard a Paxos group across three cities.

Chapter 3 gave every cell its own store and an asynchronous standby in
another city. Losing a city lost the payments its stores had acknowledged
and not yet shipped: RPO > 0, and the checkers showed it. Chapter 4 keeps
everything of chapter 3 that is about *routing* (uid buckets, the routing
rules as data, GZone/CZone, gateways, the failover controller, imported
from `reference.gateway` and `reference.cells`) and replaces what is about
*data*: each cell's accounts live in a double-entry ledger replicated by
Multi-Paxos on three cities (`group.py`). A payment is acknowledged only
once a majority of cities hold it on disk.

Chapter 3's gateways are given one routing policy: `OneStore`, every
payment to the gateway's own cell's ledger front (`reference.ledger.front`),
which reaches every group. Chapter 3's GZone and CZone are used as they are: they re-send a rule
change until every subscriber acknowledges it, so a city cut while the rules
change catches up when it heals.

When a city is lost, two things move, independently:

- the leader of every group that led from there: the surviving replicas
  elect a new one in another city within a few hundred milliseconds, and it
  holds every acknowledged payment, because every commit reached two cities;
- the uid ranges of the cells that lived there: the failover controller
  remaps them to the standby cells' gateways (chapter 3's mechanism), whose
  fronts reach the groups' new leaders.

Routing can be wrong for a while (stale rules, two gateways serving one
range after a partition heals) and nothing is lost: every path to an
account goes through its group's single log.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from chapters.ch4_paxos.group import GroupPlan, make_member, paxos_config
from chapters.ch4_paxos.recovery import (
    double_entry_check,
    lost_payments_check,
    recovery_figures,
)
from chapters.ch4_paxos.wallets import check_wallets_linearizable
from chapters.common import DEADLINE_MS, PaymentDeployment, planted_mutations
from chapters.scenarios import SCENARIOS, WARMUP_MS
from chapters.stage import Deployment, Runtime, Scenario, Stage, StageError, StageOptions
from reference.cells import CellPair, CZone, FailoverController, GZone
from reference.clients import Payment
from reference.gateway import GatewayConfig, OneStore, PaymentGateway
from reference.gateway.router import CellRouter, RoutingRules, even_buckets
from reference.ledger.directory import Directory
from reference.ledger.front import FrontConfig, LedgerFront
from reference.net.topology import Topology
from reference.node import Node, NodeId
from reference.paxos.mutations import MUTATIONS
from reference.payment import merchant_account, user_account
from reference.traffic.plan import DEFAULT_SCALE

__all__ = ["STAGE", "PaxosDeployment", "PaxosStage"]

CITIES: tuple[tuple[str, str], ...] = (
    ("hangzhou", "hz"),
    ("shanghai", "sh"),
    ("shenzhen", "sz"),
)
USERS_CITY, USERS_CELL = "internet", "users"  # clients reach every city from outside
CLIENTS = 3
USERS = 2_000  # as in chapter 3
OPENING_CENTS = 2_000_000
DEFAULT_CELLS = 3
CELLS_MAX = 9
GZONE, CONTROLLER = "gzone", "failover"
# The cell that the crash and partition scenarios take out: not hangzhou,
# where the GZone and the failover controller live (see the book's chapter).
LOST_CITY = "shanghai"
# Payments a second one group is planned for: a conservative figure, well
# under what `d11 bench ledger` measures for one group with batching (about
# 1,800/s at one cross-city round trip per commit), so the steady scenario
# stays far from saturation and a fault, not a queue, is what a run shows.
GROUP_CAPACITY_TPS = 400.0
READ_INTERVAL_MS = 500.0
PROBE_EVERY_MS = 50.0
SUSPECT_AFTER_MS = 400.0  # silence before the controller fails a cell over
LEADER_KILL_AT = 0.4


def _cells(n: int) -> list[tuple[str, str, int]]:
    """(cell, city, city index) of each RZone cell: round robin over the cities."""
    out = []
    for i in range(n):
        k = i % len(CITIES)
        city, short = CITIES[k]
        out.append((f"{short}-{i // len(CITIES) + 1}", city, k))
    return out


def _cell_in(city_index: int, row: int, cells: list[tuple[str, str, int]]) -> str:
    """The cell of `city_index` on the same row (or that city's first cell)."""
    mine = [c for c, _, k in cells if k == city_index % len(CITIES)]
    return mine[min(row, len(mine) - 1)]


class PaxosDeployment(PaymentDeployment):
    """Chapter 4 on a runtime (see the module docstring)."""

    def __init__(self, stage: Stage, rt: Runtime, options: StageOptions, topology: Topology):
        super().__init__(stage, rt, options, topology)
        self.groups: dict[str, GroupPlan] = {}
        self.fronts: dict[str, NodeId] = {}  # cell -> its front
        self.cell_city: dict[str, str] = {}
        self.directory: Directory | None = None
        self.lost_cities: list[tuple[float, str]] = []  # (when, city) a city was cut or killed
        self.awaiting: list[tuple[float, str]] = []  # lost cities whose users have not paid yet

    # -- what the scenarios hit ------------------------------------------------------
    def capacity_tps(self) -> float:
        return GROUP_CAPACITY_TPS * len(self.groups)

    def stores(self) -> list[NodeId]:
        return list(self.fronts.values())

    def payment_for(
        self, rng: random.Random, time_ms: float, uid: int, mid: int, amount_cents: int
    ) -> Payment:
        # The merchant's sub-account in the user's own group: a payment is one
        # ledger transfer in one Paxos group, never a distributed transaction.
        assert self.directory is not None
        cell = self.directory.group_of(user_account(uid))
        return Payment(time_ms, user_account(uid), merchant_account(mid, cell), amount_cents)

    def merchant_balances(self) -> dict[str, int]:
        cells = list(self.groups)
        return {merchant_account(m, c): 0 for m in range(self.population.merchants) for c in cells}

    def city_nodes(self, city: str) -> list[NodeId]:
        return [n for n in self.topology.nodes_in(city) if n not in self.roles["client"]]

    def crash_victims(self) -> list[NodeId]:
        return self.city_nodes(LOST_CITY)

    def restart_after_ms(self) -> float | None:
        return None  # a lost city stays lost until the final phase

    def partition_groups(self) -> list[set[str]]:
        others = {c for c, _ in CITIES if c != LOST_CITY} | {USERS_CITY}
        return [{LOST_CITY}, others]

    def crash(self, nodes: list[NodeId], why: str = "") -> None:
        if set(self.city_nodes(LOST_CITY)) <= set(nodes):
            self.lose_city(LOST_CITY)
        super().crash(nodes, why)

    def partition(self, groups: list[set[str]]) -> None:
        for g in groups:
            if len(g) == 1 and next(iter(g)) in dict(CITIES):
                self.lose_city(next(iter(g)))
        super().partition(groups)

    def leaders(self) -> dict[str, NodeId]:
        """cell -> the replica that leads its group now (groups with no leader left out)."""
        out: dict[str, NodeId] = {}
        for cell, plan in self.groups.items():
            for r in plan.replicas:
                node = self.rt.node(r) if self.rt.status(r) == "up" else None  # type: ignore[attr-defined]
                if node is not None and node.role == "leader":
                    out[cell] = r
        return out

    # -- the timeline -------------------------------------------------------------------
    def on_trace(self, event: Any) -> None:
        """Telemetry subscriber: elections, degrades and failovers become timeline
        notes; a city cut off by someone else's nemesis starts a recovery clock."""
        if event.kind == "paxos.leader":
            cell = next((c for c, g in self.groups.items() if event.node in g.replicas), "?")
            self.note("leader", f"{event.node} leads the ledger of {cell}")
        elif event.kind in ("paxos.degrade", "paxos.upgrade"):
            cell = next((c for c, g in self.groups.items() if event.node in g.replicas), "?")
            data = ", ".join(event.fields.get("data", ()))
            verb = "degraded to" if event.kind == "paxos.degrade" else "upgraded back to"
            self.note(event.kind[6:], f"{cell}'s group {verb} {data} (the arbiter's vote)")
        elif event.kind == "failover-complete":
            self.note("failover", f"{event.fields['cell']}'s uid range -> its standby cell")
        elif event.kind == "partition" and event.fields.get("isolate") in dict(CITIES):
            self.lose_city(str(event.fields["isolate"]))  # a harness's isolate-city

    def record(self, event: dict[str, Any]) -> None:
        super().record(event)
        if self.awaiting and event["type"] == "ok" and event["f"] == "transfer":
            self._maybe_recovered(event)

    def _maybe_recovered(self, event: dict[str, Any]) -> None:
        """Note the first payment of a lost city's uid range committed after the loss."""
        assert self.directory is not None
        buyer = str(event["value"].get("from", ""))
        cell = self.directory.group_of(buyer) if buyer.startswith("u") else ""
        for at_ms, city in list(self.awaiting):
            invoked_ms = float(event["time_ms"]) - float(event["extra"].get("latency_ms", 0.0))
            if self.cell_city.get(cell) == city and invoked_ms >= at_ms:
                self.awaiting.remove((at_ms, city))
                after_ms = float(event["time_ms"]) - at_ms
                self.note("recovered", f"{city}'s uid range pays again, {after_ms:.0f} ms after")

    def lose_city(self, city: str) -> None:
        self.lost_cities.append((self.rt.now_ms, city))
        self.awaiting.append((self.rt.now_ms, city))

    # -- figures and checks ------------------------------------------------------------
    def figures(self) -> dict[str, Any]:
        return recovery_figures(self)


def _mutations(options: StageOptions) -> frozenset[str]:
    """Bug-zoo mutations planted in every group (extra "mutations": "a,b")."""
    return planted_mutations(options, MUTATIONS)


def _kill_leaders(dep: Deployment) -> None:
    """Steady load; at 40% of the run every group's leader is killed at once."""
    assert isinstance(dep, PaxosDeployment)
    start_ms = dep.rt.now_ms + WARMUP_MS
    end_ms = start_ms + dep.options.duration_s * 1000.0
    dep.start_traffic(start_ms, end_ms, "steady")

    def kill() -> None:
        dep.crash(sorted(dep.leaders().values()), "every group's leader")

    at_ms = start_ms + LEADER_KILL_AT * (end_ms - start_ms)
    dep.rt.call_at(at_ms, kill)
    dep.rt.call_at(at_ms + 1_000.0, lambda: dep.restart(sorted(dep.crashed)))
    dep.finish(end_ms + DEADLINE_MS)


class PaxosStage(Stage):
    id = "ch4"
    title = "The Paxos ledger"
    aliases = ("paxos",)
    variants = {  # noqa: RUF012
        "3-replicas": "each ledger shard: three full replicas, one per city",
        "arbiter": "each ledger shard: two full replicas and an arbiter that stores no data",
    }
    default_variant = "3-replicas"
    default_scale = DEFAULT_SCALE
    scenarios = {  # noqa: RUF012
        **SCENARIOS,
        "crash": Scenario(
            "crash",
            f"steady load; the whole city of {LOST_CITY} is lost at 40% of the run",
            SCENARIOS["crash"].apply,
        ),
        "partition": Scenario(
            "partition",
            f"steady load; {LOST_CITY} is cut off from the other cities for 1 s",
            SCENARIOS["partition"].apply,
        ),
        "leader": Scenario(
            "leader",
            "steady load; every group's leader is killed at 40% of the run",
            _kill_leaders,
        ),
    }
    # Nothing is expected to fail: bank, ledger, lin, lost-payments and
    # double-entry hold in every scenario (a check with no expectation must pass).
    expected = {}  # noqa: RUF012

    def validate(self, options: StageOptions) -> None:
        super().validate(options)
        _mutations(options)
        if options.shards:
            raise StageError("chapter 4 has cells (one Paxos group each), not shards: use --cells")
        if not 0 <= options.cells <= CELLS_MAX or 0 < options.cells < len(CITIES):
            raise StageError(f"--cells must be between {len(CITIES)} and {CELLS_MAX}")

    def options(self, **overrides: Any) -> StageOptions:
        opts = super().options(**overrides)
        # Chapter 3's population, so the two chapters' runs of one seed compare.
        extra = {"users": USERS, "opening_cents": OPENING_CENTS, **opts.extra}
        return opts.with_(cells=opts.cells or DEFAULT_CELLS, extra=extra)

    def _layout(self, options: StageOptions) -> dict[str, Any]:
        cells = _cells(options.cells or DEFAULT_CELLS)
        arbiter = options.variant == "arbiter"
        groups: dict[str, GroupPlan] = {}
        placed: dict[str, list[NodeId]] = {c: [] for c, _, _ in cells}
        for i, (cell, _, k) in enumerate(cells):
            row = i // len(CITIES)
            homes = [_cell_in(k + j, row, cells) for j in range(len(CITIES))]
            names = [f"led-{cell}-{CITIES[(k + j) % len(CITIES)][1]}" for j in range(3)]
            if arbiter:
                names[2] = f"arb-{cell}-{CITIES[(k + 2) % len(CITIES)][1]}"
            for name, home in zip(names, homes, strict=True):
                placed[home].append(name)
            groups[cell] = GroupPlan(
                cell, tuple(names[:2] if arbiter else names), names[2] if arbiter else None
            )
        layout: dict[str, dict[str, list[str]]] = {city: {} for city, _ in CITIES}
        for cell, city, _ in cells:
            layout[city][cell] = [f"gw-{cell}", f"front-{cell}", *placed[cell]]
        for city, short in CITIES:
            first = next(iter(layout[city]))
            layout[city][first].append(f"czone-{short}")
        layout["hangzhou"]["hz-gzone"] = [GZONE, CONTROLLER]
        layout[USERS_CITY] = {USERS_CELL: [f"client-{i + 1}" for i in range(CLIENTS)]}
        return {"cells": cells, "groups": groups, "layout": layout}

    def topology(self, options: StageOptions) -> Topology:
        return Topology.build(self._layout(options)["layout"])

    def spare_cells(self, options: StageOptions) -> dict[str, str]:
        """Cells built with a gateway and a front but no uid range at boot (cell -> city):
        none in chapter 4; the capstone's elastic cell (`chapters/capstone/parts.py`)."""
        return {}

    def handover(self, options: StageOptions) -> str:
        """The gateways' range handover (`GatewayConfig.handover`): off in chapter 4."""
        return ""

    def new_deployment(self, rt: Runtime, options: StageOptions, topo: Topology) -> PaxosDeployment:
        """The deployment `build` fills (the capstone's pipeline extends it)."""
        return PaxosDeployment(self, rt, options, topo)

    def ledger_directory(
        self,
        rules: RoutingRules,
        groups: dict[str, tuple[NodeId, ...]],
        balances: dict[str, int],
        options: StageOptions,
    ) -> Directory:
        """Which group holds which account, opened how: the opening balances, placed by
        the boot rules (the capstone adds the load test's shadow twins)."""
        return Directory.build(rules, groups, balances)

    def front_directory(self, directory: Directory) -> Directory:
        """What the fronts read by (a whole read is every account it names): the
        ledger's directory here; its production accounts only in the capstone."""
        return directory

    def payment_entry(self, dep: PaxosDeployment, cell: str) -> NodeId:
        """Where `cell`'s gateway hands a payment: the cell's ledger front in chapter
        4; the cell's payment service (chapter 5's producer) in the capstone."""
        return dep.fronts[cell]

    # --8<-- [start:paxos-build]
    def build(self, rt: Runtime, options: StageOptions) -> Deployment:
        plan = self._layout(options)
        topo = Topology.build(plan["layout"])
        dep = self.new_deployment(rt, options, topo)
        cells: list[tuple[str, str, int]] = plan["cells"]
        dep.groups = plan["groups"]
        dep.cell_city = {cell: city for cell, city, _ in cells}
        names = [cell for cell, _, _ in cells]
        rules: RoutingRules = even_buckets(names)
        spare = self.spare_cells(options)  # cells with no range at boot (the capstone's)
        served = [*names, *spare]
        gateways = {c: f"gw-{c}" for c in served}
        dep.fronts = {c: f"front-{c}" for c in served}
        balances = dep.opening_balances()
        groups = {c: g.replicas for c, g in dep.groups.items()}
        directory = dep.directory = self.ledger_directory(rules, groups, balances, options)
        self._add_ledger(rt, dep, directory, _mutations(options))
        self._add_gateways(rt, dep, options, directory, rules, served, gateways)
        clients = topo.nodes_in(USERS_CELL)
        czones = self._add_zones(rt, dep, rules, {**dep.cell_city, **spare}, gateways, clients)
        self._add_controller(rt, dep, cells, rules, gateways, self.failover_acceptors(czones))
        dep.roles["config"] += [GZONE, *czones]
        dep.roles["controller"].append(CONTROLLER)
        dep.record_init(balances)
        self._add_clients(dep, clients, rules, gateways, first_front=dep.fronts[names[0]])
        self._add_checks(rt, dep)
        return dep

    def _add_ledger(
        self, rt: Runtime, dep: PaxosDeployment, directory: Directory, mutations: frozenset[str]
    ) -> None:
        """The ledger: one Paxos group per cell, its members in three cities."""
        for group in dep.groups.values():
            cfg = paxos_config(group, mutations=mutations)
            for member in group.members():
                rt.add_node(
                    member,
                    lambda nid, group=group, cfg=cfg: make_member(nid, group, cfg, directory),
                )
                dep.roles["replica"].append(member)

    # --8<-- [end:paxos-build]

    def gateway_node(self, dep: PaxosDeployment, config: GatewayConfig) -> Node:
        """A cell's gateway node: chapter 3's, as is (the capstone puts chapter 6's
        degrade controls in front of it). Called at every start of the gateway."""
        return PaymentGateway(config)

    def _add_gateways(
        self,
        rt: Runtime,
        dep: PaxosDeployment,
        options: StageOptions,
        directory: Directory,
        rules: RoutingRules,
        served: list[str],
        gateways: dict[str, NodeId],
    ) -> None:
        """Chapter 3's routing layer, unchanged: a front stands where the store was."""
        front_config = FrontConfig(self.front_directory(directory))
        for c in served:
            rt.add_node(dep.fronts[c], lambda _nid: LedgerFront(front_config))
            gw_config = GatewayConfig(
                cell=c,
                rules=rules,
                cell_gateways=gateways,
                cell_stores=dep.fronts,
                store_routing=OneStore(self.payment_entry(dep, c)),
                handover=self.handover(options),
            )
            rt.add_node(gateways[c], lambda _nid, cfg=gw_config: self.gateway_node(dep, cfg))
            dep.roles["gateway"].append(gateways[c])
            # A ledger shard's entry point (where its payments are counted); the
            # shard's data lives on the group's members, under "replica".
            dep.roles["shard"].append(dep.fronts[c])
            dep.roles["cell"].append(c)

    def _add_zones(
        self,
        rt: Runtime,
        dep: PaxosDeployment,
        rules: RoutingRules,
        city_of: dict[str, str],
        gateways: dict[str, NodeId],
        clients: list[NodeId],
    ) -> list[NodeId]:
        """A CZone per city (its gateways and the clients), one GZone over them."""
        czones = []
        merchants = list(range(dep.population.merchants))
        for city, short in CITIES:
            czone = f"czone-{short}"
            local = [gateways[c] for c in gateways if city_of[c] == city]
            rt.add_node(czone, lambda _nid, s=local + clients: CZone(rules, merchants, s))
            czones.append(czone)
        rt.add_node(GZONE, lambda _nid: GZone(rules, range(dep.population.merchants), czones))
        return czones

    def _add_controller(
        self,
        rt: Runtime,
        dep: PaxosDeployment,
        cells: list[tuple[str, str, int]],
        rules: RoutingRules,
        gateways: dict[str, NodeId],
        acceptors: list[NodeId],
    ) -> None:
        """Chapter 3's failover controller: each cell's standby is the next city's cell."""
        pairs = {}
        for i, (cell, _, k) in enumerate(cells):
            standby = _cell_in(k + 1, i // len(CITIES), cells)
            pairs[cell] = CellPair(cell, gateways[cell], standby, dep.fronts[standby])
        rt.add_node(
            CONTROLLER,
            lambda _nid: FailoverController(
                pairs,
                rules,
                GZONE,
                probe_every_ms=PROBE_EVERY_MS,
                suspect_after_ms=SUSPECT_AFTER_MS,
                acceptors=acceptors,
            ),
        )

    def failover_acceptors(self, czones: list[NodeId]) -> list[NodeId]:
        """Who fences a new rules version: nobody here, where one controller writes the
        rules alone. A second controller (the capstone's) needs the cities' CZones."""
        return []

    def _add_clients(
        self,
        dep: PaxosDeployment,
        clients: list[NodeId],
        rules: RoutingRules,
        gateways: dict[str, NodeId],
        first_front: NodeId,
    ) -> None:
        """The clients pay through their buyer's gateway and read through the fronts."""

        def route(buyer: str, pid: str, rng: random.Random, router: CellRouter | None) -> NodeId:
            assert router is not None
            return router.gateway_of_user(int(buyer[1:]))

        router: Callable[[], CellRouter] = lambda: CellRouter(rules, gateways, dep.fronts)  # noqa: E731
        dep.add_clients(
            clients, route, first_front, rules=router, read_interval_ms=READ_INTERVAL_MS
        )
        for client_plan in dep.plans.values():
            # Every payment that ended unknown is settled by id before the final
            # reads (front.py's fence), so the ledger checker resolves them all.
            client_plan.final_lookups = True

    def _add_checks(self, rt: Runtime, dep: PaxosDeployment) -> None:
        dep.standard_checks()
        # Lease reads are linearizable: the ledger model, wallet by wallet.
        dep.checks["lin"] = lambda history: check_wallets_linearizable(history, dep.initial)
        dep.checks["lost-payments"] = lambda history: lost_payments_check(dep, history)
        dep.checks["double-entry"] = lambda history: double_entry_check(dep)
        telemetry = getattr(rt, "telemetry", None)
        if telemetry is not None:
            telemetry.subscribe(dep.on_trace)


STAGE = PaxosStage()
