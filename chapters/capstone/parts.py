"""The four systems of the capstone, each one chapter's stage, on one simulator.

Each chapter's stage builds its nodes on the runtime it is handed; the
capstone hands all four the same simulator (one clock, one network, one set
of cities), so node ids and cell names must not collide. Chapters 4 and 5
are one payment pipeline (`pipeline.py`); the subclasses here otherwise
change only *names and places* in each stage's layout:

- chapter 4 (cells and the Paxos ledger; chapter 3's routing inside it):
  its clients are `cells-client-N`, its GZone gets what chapter 4 leaves
  out: a standby (`gzone-2` and `failover-2`, in Shanghai; see `CellsPart`),
  and each cell's gateway, behind chapter 6's sidecar (`entry_controls`),
  hands its payments to the cell's payment service (`pay-<cell>`, chapter
  5's producer) instead of its ledger front;
- chapter 5 (the transactional message queue): its broker, its payment
  services (one per cell, in the cell) and its consumer groups, on chapter
  4's ledger groups: no ledger, front or clients of its own (`MqPart`);
- chapter 6 (degrade controls) and chapter 7 (the full-link load test on
  chapter 2's shards) are one-city systems (one payment database; one
  city's shards): the capstone hosts them in a city that survives
  (`host_city`), under their own cell names. What losing the only city of a
  one-city system does is chapter 3's lesson, not the capstone's.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, runtime_checkable

from chapters.capstone.elastic import ELASTIC_CELL
from chapters.capstone.pipeline import (
    PipelineCells,
    PipelineQueue,
    build_queue,
    consumer_nodes,
    leak_of,
    producer_of,
    with_shadow_twins,
)
from chapters.ch2_sharding.stage import DEFAULT_SHARDS, _gateway_ids, _shard_ids
from chapters.ch4_paxos.stage import (
    CITIES,
    DEFAULT_CELLS,
    GROUP_CAPACITY_TPS,
    PROBE_EVERY_MS,
    SUSPECT_AFTER_MS,
    PaxosDeployment,
    PaxosStage,
    _cell_in,
    _cells,
)
from chapters.ch4_paxos.stage import USERS_CELL as CELLS_USERS_CELL
from chapters.ch4_paxos.stage import USERS_CITY as CELLS_USERS_CITY
from chapters.ch5_mq.build import production_view
from chapters.ch5_mq.plan import CITIES as MQ_CITIES
from chapters.ch5_mq.plan import load_test_share_of
from chapters.ch5_mq.stage import MqStage
from chapters.ch6_degrade.stage import CLIENTS as DEGRADE_CLIENTS
from chapters.ch6_degrade.stage import DegradeStage
from chapters.ch6_degrade.wiring import HOT_SHARE, QUEUE_MS, RATE_SHARE
from chapters.ch7_rehearsal.stage import RehearsalDeployment, RehearsalStage
from chapters.stage import Deployment, Runtime, StageOptions
from reference.cells import CellPair, FailoverController, GZone
from reference.degrade import FlowRule, GuardConfig, ParamFlowRule, Sidecar, SidecarConfig
from reference.gateway import GatewayConfig, PaymentGateway
from reference.gateway.router import RoutingRules, even_buckets
from reference.ledger.directory import Directory
from reference.net.topology import Topology
from reference.node import Context, Node, NodeId
from reference.tracing import LoadTestPolicy, LoadTestSwitch

__all__ = ["PART_STAGES", "NightRehearsal", "merge_layouts"]

Layout = dict[str, dict[str, list[str]]]
REHEARSAL_USERS_CELL = "hz-users"  # chapter 2's build finds its clients by this cell's name
STANDBY_CITY, STANDBY_CELL = "shanghai", "sh-gzone"
STANDBY_GZONE, STANDBY_CONTROLLER = "gzone-2", "failover-2"


def _renamed(nodes: list[str], prefix: str) -> list[str]:
    return [f"{prefix}-{n}" for n in nodes]


class CellsPart(PaxosStage):
    """Chapter 4, its clients renamed, and a hot standby for its GZone.

    Chapter 4 keeps the GZone and the failover controller in Hangzhou only:
    lose Hangzhou and nobody moves its cells' uid ranges (the ledger loses
    nothing, but those users wait for the city to come back). Here a second
    pair, `gzone-2` and `failover-2` in Shanghai, runs beside the first: the
    same boot rules, the same cell pairs, the same CZones to publish to. Both
    controllers watch every cell. Two writers of the rules are fenced: each new
    version is a slot of the rules log, chosen by a majority of the three
    cities' CZones (`reference.cells.rules_log`), so a controller cut off with
    a minority fails nothing over, and no version ever names two rule sets.
    """

    def failover_acceptors(self, czones: list[str]) -> list[str]:
        return czones  # two controllers: every rules version chosen by a majority

    def _layout(self, options: StageOptions) -> dict[str, Any]:
        plan = super()._layout(options)
        users = plan["layout"][CELLS_USERS_CITY]
        users[CELLS_USERS_CELL] = _renamed(users[CELLS_USERS_CELL], "cells")
        plan["layout"][STANDBY_CITY][STANDBY_CELL] = [STANDBY_GZONE, STANDBY_CONTROLLER]
        for cell, city in self.spare_cells(options).items():
            plan["layout"][city][cell] = [f"gw-{cell}", f"front-{cell}"]
        return plan

    def spare_cells(self, options: StageOptions) -> dict[str, str]:
        """The elastic cell, started for the peak in a city that survives the night."""
        return {ELASTIC_CELL: host_city(options)}

    def handover(self, options: StageOptions) -> str:
        """Ranges move between live cells: "drain" (or the planted bug, "no-wait")."""
        return str(options.extra.get("handover", "drain"))

    def new_deployment(self, rt: Runtime, options: StageOptions, topo: Topology) -> PaxosDeployment:
        return PipelineCells(self, rt, options, topo)

    def payment_entry(self, dep: PaxosDeployment, cell: str) -> str:
        return producer_of(cell)  # the pipeline: the cell's payment service

    def gateway_node(self, dep: PaxosDeployment, config: GatewayConfig) -> Node:
        """The cell's gateway behind chapter 6's sidecar: the pipeline's door. With a
        load test it records a span for every payment and holds the allow-list and
        the kill switch (chapter 7's gateway); extra leak=gateway: it drops the tag."""
        kind = PaymentGateway
        if dep.traced:
            config = dataclasses.replace(config, load_test=LoadTestPolicy())
            if leak_of(dep.options) == "gateway":
                from reference.tracing.leaky import TagDroppingGateway

                kind = TagDroppingGateway
        # Its decisions into the history (chapter 6's `ch6:` checks judge the door there).
        return Sidecar(kind(config), dataclasses.replace(entry_controls(), record=dep.record))

    def ledger_directory(
        self,
        rules: RoutingRules,
        groups: dict[str, tuple[NodeId, ...]],
        balances: dict[str, int],
        options: StageOptions,
    ) -> Directory:
        """With a load test, every account has a shadow twin in its group, opened alike."""
        if load_test_share_of(options) > 0:
            balances = with_shadow_twins(balances)
        return Directory.build(rules, groups, balances)

    def front_directory(self, directory: Directory) -> Directory:
        """The fronts read production accounts only: a whole read (the clients' final
        read) never returns shadow data."""
        return production_view(directory)

    def build(self, rt: Runtime, options: StageOptions) -> Deployment:
        dep = super().build(rt, options)
        assert isinstance(dep, PaxosDeployment)
        cells = _cells(options.cells or DEFAULT_CELLS)
        names = [cell for cell, _, _ in cells]
        rules = even_buckets(names)  # the boot rules chapter 4's GZone starts from
        gateways = {c: f"gw-{c}" for c in names}
        czones = [f"czone-{short}" for _, short in CITIES]
        merchants = range(dep.population.merchants)
        pairs = {}
        for cell, _, k in cells:
            standby = _cell_in(k + 1, names.index(cell) // len(CITIES), cells)
            pairs[cell] = CellPair(cell, gateways[cell], standby, dep.fronts[standby])
        rt.add_node(STANDBY_GZONE, lambda _nid: GZone(rules, merchants, czones))
        rt.add_node(
            STANDBY_CONTROLLER,
            lambda _nid: FailoverController(
                pairs, rules, STANDBY_GZONE,
                probe_every_ms=PROBE_EVERY_MS, suspect_after_ms=SUSPECT_AFTER_MS,
                acceptors=czones,
            ),
        )  # fmt: skip
        dep.roles["config"].append(STANDBY_GZONE)
        dep.roles["controller"].append(STANDBY_CONTROLLER)
        return dep


# --8<-- [start:entry-controls]
# What one cell gateway's payments may take of the pipeline: its cell's ledger
# group (chapter 4's 400/s), and half as much again because a gateway that
# takes a lost cell's range over fronts two groups (each payment still lands
# in its payer's group). Measured on `d11 run double11 --scale 1/50` (seed 1,
# the peak ~10,100 payments/s offered to the three cells): rules at 1x a group
# kept 1,716 payments ok, at 1.5x 3,614, at 2x fewer refusals but more timeouts.
GATEWAY_CAPACITY_TPS = 1.5 * GROUP_CAPACITY_TPS


def entry_controls(gateway_capacity_tps: float = GATEWAY_CAPACITY_TPS) -> SidecarConfig:
    """Chapter 6's controls at a cell gateway, the pipeline's entry, as chapter 6
    wires its payment gateway (`chapters.ch6_degrade.wiring`): no work starts
    after its deadline; a flow rule admits `RATE_SHARE` of the gateway's share
    of the pipeline, queueing a call at most `QUEUE_MS`; one merchant at most
    `HOT_SHARE` of it. Past that a payment is refused at the door (`flow:pay`,
    no effect anywhere) instead of waiting deep inside the pipeline until its
    user gives up. Each gateway holds its own count, as chapter 6's "local"
    cluster mode (no token server: the cells share nothing but the rules)."""
    assert gateway_capacity_tps > 0, gateway_capacity_tps
    rule_tps = RATE_SHARE * gateway_capacity_tps
    flow = FlowRule("pay", rule_tps, behavior="rate-limiter", max_queueing_time_ms=QUEUE_MS)
    hot = ParamFlowRule("pay", "merchant", HOT_SHARE * gateway_capacity_tps)
    # `serves`: the door starts a payment's work (hands it to the payment service), so
    # a start after its deadline is recorded (`degrade:served-late`) for the SLO check.
    guard = GuardConfig(flow=(flow,), params=(hot,))
    return SidecarConfig(guard=guard, deadline=True, serves=True)


# --8<-- [end:entry-controls]


class MqPart(MqStage):
    """Chapter 5 on chapter 4's ledger: its broker group and consumer groups in its own
    cells of the three cities, a payment service in every cell of chapter 4 (the
    elastic cell's included), built by `build_on` once the cells part is built."""

    def pipeline_layout(self, options: StageOptions) -> Layout:
        layout: Layout = {}
        consumers = consumer_nodes(load_test_share_of(options) > 0)
        for city, short in MQ_CITIES:
            layout[city] = {short: [f"brk-{short}", *consumers.get(short, [])]}
        cells = {cell: city for cell, city, _ in _cells(DEFAULT_CELLS)}
        for cell, city in (cells | CellsPart().spare_cells(options)).items():
            layout[city][cell] = [producer_of(cell)]
        return layout

    def build_on(self, rt: Runtime, options: StageOptions, cells: Deployment) -> Deployment:
        assert isinstance(cells, PipelineCells)
        layout = self.pipeline_layout(options)
        dep = PipelineQueue(self, rt, options, Topology.build(layout))
        shorts = [s for _, s in MQ_CITIES]
        dep.brokers = tuple(f"brk-{s}" for s in shorts)
        dep.producers = [producer_of(c) for c in cells.fronts]  # the cells served
        build_queue(rt, dep, cells)
        return dep


class DegradePart(DegradeStage):
    """Chapter 6 as it is, in the host city, under its own cell names."""

    def topology(self, options: StageOptions) -> Topology:
        return Topology.build(self.layout(options))

    def layout(self, options: StageOptions) -> Layout:
        return {host_city(options): self._cells(options)}

    def _cells(self, options: StageOptions) -> dict[str, list[str]]:
        topo = super().topology(options)
        servers = [n for n in topo.nodes() if n not in DEGRADE_CLIENTS]
        return {"deg-app": sorted(servers), "deg-users": list(DEGRADE_CLIENTS)}


@runtime_checkable
class HostsNodes(Protocol):
    """A runtime that hands out the live context of a node it hosts in this process."""

    def context(self, node_id: str) -> Context | None: ...


class NightRehearsal(RehearsalDeployment):
    """Chapter 7's system on the night: its kill switch also reaches the pipeline's
    gateways (`pipeline`, set by the capstone), which hold the allow-list and the
    switch for the tagged payments of the cells (`CellsPart.gateway_node`): one
    switch stops all tagged traffic at once, both systems'."""

    pipeline: Deployment | None = None

    def switched_gateways(self) -> list[str]:
        mine = super().switched_gateways()
        if self.pipeline is None or not getattr(self.pipeline, "traced", False):
            return mine  # no load test through the pipeline: its gateways hold no switch
        return mine + list(self.pipeline.roles["gateway"])

    def _send_switch(self, gw: str) -> bool:
        """Hand `gw` the switch; False if it is down. On the simulator the gateway sends
        it to itself (chapter 7's way). On a real backend every gateway runs in a
        process of its own and has no context here: the switch goes from the
        operator's console, a client of the harness's process, over the network
        (as the capstone's elastic move reaches the failover controllers); a gateway
        restarted later is re-sent it the same way (`_on_restart`)."""
        rt = self.rt
        assert isinstance(rt, HostsNodes), rt
        if rt.context(gw) is not None or rt.status(gw) != "up":
            return super()._send_switch(gw)
        console = next(
            (ctx for c in self.roles["client"] if (ctx := rt.context(c)) is not None), None
        )
        if console is None:
            return False
        console.send(gw, LoadTestSwitch(self._switch))
        return True


class RehearsalPart(RehearsalStage):
    """Chapter 7 as it is, in the host city, its clients renamed; its kill switch
    the night's (`NightRehearsal`)."""

    def new_deployment(
        self, rt: Runtime, options: StageOptions, topo: Topology
    ) -> RehearsalDeployment:
        return NightRehearsal(self, rt, options, topo)

    def topology(self, options: StageOptions) -> Topology:
        return Topology.build(self.layout(options))

    def layout(self, options: StageOptions) -> Layout:
        n = options.shards or DEFAULT_SHARDS
        clients = super().topology(options).nodes_in(REHEARSAL_USERS_CELL)
        return {
            host_city(options): {
                "pt-app": _gateway_ids(n),
                "pt-db": _shard_ids(n),
                REHEARSAL_USERS_CELL: _renamed(clients, "pt"),
            }
        }


def host_city(options: StageOptions) -> str:
    """Where the one-city systems live: set by the capstone in their options."""
    return str(options.extra["host_city"])


# part name -> (chapter id, its stage)
PART_STAGES: dict[str, Any] = {
    "cells": CellsPart(),
    "mq": MqPart(),
    "degrade": DegradePart(),
    "rehearsal": RehearsalPart(),
}


def part_layout(name: str, options: StageOptions) -> Layout:
    """The layout a part's nodes take in the shared topology."""
    stage = PART_STAGES[name]
    if name == "cells":
        return stage._layout(options)["layout"]  # type: ignore[no-any-return]
    if name == "mq":  # the pipeline's queue: no ledger, front or clients of its own
        return stage.pipeline_layout(options)  # type: ignore[no-any-return]
    return stage.layout(options)  # type: ignore[no-any-return]


def merge_layouts(layouts: list[Layout]) -> Layout:
    """One layout holding every part's: cities shared, cells and nodes unique."""
    out: Layout = {}
    placed: set[str] = set()
    for layout in layouts:
        for city, cells in layout.items():
            mine = out.setdefault(city, {})
            for cell, nodes in cells.items():
                clash = placed & set(nodes)
                assert not clash, f"node ids taken twice: {sorted(clash)}"
                placed |= set(nodes)
                mine.setdefault(cell, []).extend(nodes)
    return out
