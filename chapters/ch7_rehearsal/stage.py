"""Chapter 7's stage: chapter 2's sharded platform with load-test traffic mixed in.

The production path is chapter 2's (gateways, TCC across shards, SQL
stores); what chapter 7 adds is around it, never instead of it:

- every payment carries a trace context (`reference.tracing`), and a share
  of them (`load_test_share`) or a replayed recording (`load_test`) carries
  the load-test tag `mark=T`;
- the stores send tagged requests to shadow accounts (`pt_` ids, opened
  at boot as copies of the production accounts), and record a span for every
  request they serve; the gateways record theirs and hold the allow-list and
  the kill switch;
- the spans go into the history (`process="trace"`, `f="span"`), where
  `checks.isolation` judges the isolation and the rehearsal measures every link.

Knobs (`--extra`): `load_test_share` (0.3), `forecast_tps` (simulated payments
per second the forecast expects at peak), `load_factor` (offered load as a
multiple of the forecast, 1.0), `production_share` (the share of the forecast
that is live production traffic during a rehearsal, 0.3), `leak` (a gateway
that drops the tag: the planted leak), `slow` (a node id made `slow_factor`
times slower: a planted bottleneck), `kill_switch_at_s` (the drill).
"""

from __future__ import annotations

import functools
import hashlib
import random
from collections.abc import Callable
from typing import Any

from chapters.ch2_sharding.stage import (
    DEFAULT_SHARDS,
    LOCAL_PAY_MS,
    TCC_PAY_MS,
    ShardingDeployment,
    ShardingStage,
    _gateway_ids,
    _shard_ids,
)
from chapters.common import SERVICE, PaymentDeployment, expect
from chapters.scenarios import SCENARIOS
from chapters.stage import Deployment, Runtime, Stage, StageError, StageOptions
from checks.history import Event
from checks.verdict import Verdict
from reference.capacity.replay import replay_arrivals
from reference.clients import ClosedLoop, Payment
from reference.gateway import GatewayConfig, PaymentGateway
from reference.gateway.router import CellRouter, ShardRouter
from reference.net.topology import Topology
from reference.node import NodeId
from reference.payment import PAYMENT_PROCEDURES, PAYMENT_SCHEMA, open_accounts
from reference.sim.rng import stream
from reference.sqlstore import ServiceTime, SqlStore, StoreConfig
from reference.tcc import FENCE_SCHEMA, TCC_PROCEDURES
from reference.telemetry import TraceEvent
from reference.tracing import SPAN_EVENT, LoadTestPolicy, LoadTestSwitch, shadow_account
from reference.traffic.plan import DEFAULT_SCALE

__all__ = ["STAGE", "LoadTestTraffic", "RehearsalDeployment", "RehearsalStage"]

CLIENTS = 2
LOAD_TEST_SHARE = 0.3
PRODUCTION_SHARE = 0.3
SLOW_FACTOR = 4.0
SPAN_PROCESS = "trace"  # the history's process for spans (as "nemesis" for faults)

WHY_LEAK = (
    "The leak variant's gateway drops the load-test tag on its way to the stores: "
    "tagged payments land on production accounts, which the isolation checker must catch."
)

WHY_LEAK_LEDGER = (
    "The leaked load-test payments moved production money the clients never asked "
    "production to move: the final balances are not the acknowledged transfers."
)


class LoadTestTraffic(PaymentDeployment):
    """What a rehearsal drives, on any payment system with tagged gateways: the
    forecast, the offered load (production plus a recording replayed tagged, open
    model), the capacity sweep's closed loops, and the kill switch. Chapter 7's own
    system (`RehearsalDeployment`) and the capstone's pipeline
    (`chapters.ch7_rehearsal.pipeline_system`) are both one."""

    def __init__(
        self, stage: Stage, rt: Runtime, options: StageOptions, topology: Topology
    ) -> None:
        super().__init__(stage, rt, options, topology)
        extra = self.options.extra
        self.production_share = float(extra.get("production_share", PRODUCTION_SHARE))
        self.load_factor = float(extra.get("load_factor", 1.0))
        self.replay: list[Payment] | None = None  # set by `load_test`: a recording to replay
        self._switch = True  # the kill switch: on (load test allowed) until flipped
        self._owed_switch: set[str] = set()  # gateways down when it was flipped
        self._watching_restarts = False

    # -- the forecast and the offered load ----------------------------------------
    def forecast_tps(self) -> float:
        """The simulated peak the forecast expects (default: 60% of the estimate)."""
        return float(self.options.extra.get("forecast_tps", 0.6 * self.capacity_tps()))

    def load_test(self, recorded: list[Payment]) -> None:
        """Replay `recorded` (production arrivals) as the load test, open model.

        Then the offered load is `load_factor` x the forecast: live production
        at `production_share` of the forecast, the replay tagged on top of it.
        Call before the scenario starts its traffic.
        """
        assert recorded, "an empty recording replays nothing"
        self.replay = recorded

    def traffic(self, profile: str, start_ms: float) -> Any:
        if profile == "steady" and "steady_tps" not in self.options.extra:
            share = self.production_share if self.replay is not None else 1.0
            rate = share * self.load_factor * self.forecast_tps()
            if self.replay is not None:
                rate = self.production_share * self.forecast_tps()
            self.options = self.options.with_(extra={**self.options.extra, "steady_tps": rate})
        return super().traffic(profile, start_ms)

    def start_traffic(self, start_ms: float, end_ms: float, profile: str = "steady") -> None:
        concurrency = int(self.options.extra.get("concurrency", 0))
        if profile == "saturate" and concurrency > 0:
            # The capacity sweep: exactly `concurrency` payments in flight in all.
            self.profile = profile
            self.traffic_window = (start_ms, end_ms)
            self.note("traffic", f"closed loop of {concurrency} from {start_ms:.0f} ms")
            clients = self.roles["client"]
            for i, cid in enumerate(clients):
                share = concurrency // len(clients) + (1 if i < concurrency % len(clients) else 0)
                if share:
                    loop = ClosedLoop(start_ms, end_ms, share, self.make_payment)
                    self.plans[cid].closed.append(loop)
            return
        super().start_traffic(start_ms, end_ms, profile)
        if self.replay is None:
            return
        # The recording's own rate, and the factor that makes production + replay
        # add up to `load_factor` x the forecast.
        rec = self.replay
        rec_span_s = max(rec[-1].time_ms - rec[0].time_ms, 1.0) / 1000.0
        rec_tps = len(rec) / rec_span_s
        want_tps = max(0.0, self.load_factor - self.production_share) * self.forecast_tps()
        if want_tps <= 0:
            return
        tagged = replay_arrivals(rec, want_tps / rec_tps, start_ms, end_ms)
        clients = self.roles["client"]
        for i, p in enumerate(tagged):
            self.plans[clients[i % len(clients)]].arrivals.append(p)
        for cid in clients:  # arrivals must be in time order per client
            plan = self.plans[cid]
            ordered = sorted(plan.arrivals, key=lambda p: p.time_ms)
            plan.arrivals.clear()
            plan.arrivals.extend(ordered)
        self.note("load-test", f"replay at {want_tps:.0f}/s on top of production")

    def switched_gateways(self) -> list[str]:
        """The gateways the kill switch reaches: this system's (the capstone adds the
        pipeline's, which serve tagged payments too)."""
        return list(self.roles["gateway"])

    def kill_switch(self, enabled: bool) -> None:
        """The global switch: every gateway stops (or resumes) tagged traffic. A gateway
        down when it is flipped never heard it (its disk keeps the last switch it
        got): it gets the switch when it restarts, or it would serve tagged traffic
        again after the operator stopped all of it."""
        self._switch = enabled
        self._owed_switch = set()
        for gw in self.switched_gateways():
            if not self._send_switch(gw):
                self._owed_switch.add(gw)
        telemetry = getattr(self.rt, "telemetry", None)
        if self._owed_switch and telemetry is not None and not self._watching_restarts:
            self._watching_restarts = True
            telemetry.subscribe(self._on_restart)
        self.note("kill-switch", "load test on" if enabled else "load test off")

    def _send_switch(self, gw: str) -> bool:
        """Hand `gw` the switch; False if it is down. The operator's console is not a
        node here: the switch is a message from the gateway to itself."""
        ctx = self.rt.context(gw)  # type: ignore[attr-defined]
        if ctx is None:
            return False
        ctx.send(gw, LoadTestSwitch(self._switch))
        return True

    def _on_restart(self, event: TraceEvent) -> None:
        if event.kind == "restart" and event.node in self._owed_switch:
            # The runtime traces a restart before it boots the node: send once it is up.
            self.rt.call_at(self.rt.now_ms, functools.partial(self._resend, event.node))

    def _resend(self, gw: str) -> None:
        if self._send_switch(gw):
            self._owed_switch.discard(gw)


class RehearsalDeployment(LoadTestTraffic, ShardingDeployment):
    """Chapter 2's deployment, traced, with shadow accounts and tagged traffic."""

    traced = True

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        extra = self.options.extra
        self.load_test_share = float(extra.get("load_test_share", LOAD_TEST_SHARE))
        self._tagging = stream(self.options.seed, "load-test/tagging")

    def capacity_tps(self) -> float:
        """Chapter 2's estimate with TCC across shards (every variant here uses TCC)."""
        n = len(self.roles["shard"])
        per_payment_ms = (1 / n) * LOCAL_PAY_MS + (1 - 1 / n) * TCC_PAY_MS
        return n * 1000.0 / per_payment_ms

    def payment_for(
        self, rng: random.Random, time_ms: float, uid: int, mid: int, amount_cents: int
    ) -> Payment:
        p = super().payment_for(rng, time_ms, uid, mid, amount_cents)
        if self.replay is None and self._tagging.random() < self.load_test_share:
            return Payment(p.time_ms, p.buyer, p.merchant, p.amount_cents, True)
        return p

    # -- spans into the history ----------------------------------------------------
    def on_trace(self, event: TraceEvent) -> None:
        if event.kind != SPAN_EVENT:
            return
        value = {**event.fields, "node": event.node}
        self.history.append(
            Event(
                type="info",
                process=SPAN_PROCESS,
                f="span",
                value=value,
                time_ms=event.time_ms,
                index=len(self.history),
            )
        )


class RehearsalStage(ShardingStage):
    """Chapter 2's topology and options; traced nodes, shadow data, load-test traffic."""

    id = "ch7"
    title = "Full-link stress testing and the rehearsal"
    aliases = ("rehearsal",)
    variants = {  # noqa: RUF012
        "shadow": "load-test traffic tagged end to end, served from shadow accounts",
        "leak": "a gateway that drops the tag: the planted leak the checker must catch",
    }
    default_variant = "shadow"
    default_scale = DEFAULT_SCALE
    scenarios = SCENARIOS
    expected = {  # noqa: RUF012
        ("leak", scenario): {
            "isolation": expect(False, WHY_LEAK),
            "ledger": expect(False, WHY_LEAK_LEDGER, always=False),
        }
        for scenario in SCENARIOS
    }

    def validate(self, options: StageOptions) -> None:
        super().validate(options)
        share = options.extra.get("load_test_share", LOAD_TEST_SHARE)
        if not isinstance(share, int | float) or not 0 <= share <= 1:
            raise StageError(f"load_test_share must be in [0, 1], not {share!r}")

    def new_deployment(
        self, rt: Runtime, options: StageOptions, topo: Topology
    ) -> RehearsalDeployment:
        return RehearsalDeployment(self, rt, options, topo)

    # --8<-- [start:rehearsal-build]
    def build(self, rt: Runtime, options: StageOptions) -> Deployment:
        topo = self.topology(options)
        dep = self.new_deployment(rt, options, topo)
        shards = _shard_ids(options.shards or DEFAULT_SHARDS)
        gateways = _gateway_ids(len(shards))
        balances = dep.opening_balances()
        slow = str(options.extra.get("slow", ""))
        slow_factor = float(options.extra.get("slow_factor", SLOW_FACTOR))
        router = ShardRouter(shards)
        for shard in shards:
            mine = {a: b for a, b in balances.items() if router.shard_of(a) == shard}
            # The shadow accounts: a copy of production's, under their own ids.
            both = mine | {shadow_account(a): b for a, b in mine.items()}
            service = SERVICE
            if shard == slow:  # a planted bottleneck: this store is slow_factor x slower
                service = ServiceTime(
                    txn_ms=SERVICE.txn_ms * slow_factor,
                    statement_ms=SERVICE.statement_ms * slow_factor,
                )
            config = StoreConfig(
                schema=PAYMENT_SCHEMA + FENCE_SCHEMA,
                procedures={**PAYMENT_PROCEDURES, **TCC_PROCEDURES},
                init=functools.partial(open_accounts, balances=both),
                service=service,
                traced=True,
            )
            rt.add_node(shard, functools.partial(_store, config))
        gateway_class = PaymentGateway
        if options.variant == "leak":
            from reference.tracing.leaky import TagDroppingGateway

            gateway_class = TagDroppingGateway
        for gw in gateways:
            work_ms = 0.05 * (slow_factor if gw == slow else 1.0)
            config_gw = GatewayConfig(
                shards=tuple(shards), cross="tcc", work_ms=work_ms, load_test=LoadTestPolicy()
            )
            rt.add_node(gw, functools.partial(_gateway, gateway_class, config_gw))
        dep.roles["shard"].extend(shards)
        dep.roles["gateway"].extend(gateways)
        dep.record_init(balances)
        telemetry = getattr(rt, "telemetry", None)
        if telemetry is not None:  # the simulator: spans become history events
            telemetry.subscribe(dep.on_trace)

        def route(buyer: str, pid: str, rng: random.Random, rules: CellRouter | None) -> NodeId:
            digest = hashlib.blake2b(pid.encode(), digest_size=4).digest()
            return gateways[int.from_bytes(digest, "big") % len(gateways)]

        dep.add_clients(topo.nodes_in("hz-users"), route, gateways[0])
        dep.standard_checks()
        _add_isolation_check(dep)
        return dep

    # --8<-- [end:rehearsal-build]


def without_spans(history: list[Event]) -> list[Event]:
    """The history production's checkers read: the clients' operations, no spans."""
    return [e for e in history if e.process != SPAN_PROCESS]


def _store(config: StoreConfig, _nid: NodeId) -> SqlStore:
    return SqlStore(config)


def _gateway(kind: type[PaymentGateway], config: GatewayConfig, _nid: NodeId) -> PaymentGateway:
    return kind(config)


def _production(check: Callable[[list[Event]], Verdict], history: list[Event]) -> Verdict:
    """`check` on production's events: the history without spans."""
    return check(without_spans(history))


def _add_isolation_check(dep: PaymentDeployment) -> None:
    from checks.isolation import check_isolation

    for name, check in list(dep.checks.items()):  # bank, ledger: production's own
        dep.checks[name] = functools.partial(_production, check)
    dep.checks["isolation"] = check_isolation


STAGE = RehearsalStage()
