"""Chapter 6: the payment core under a spike, with and without degrade controls.

The stage: clients -> edge gateway -> payment gateway -> payment database,
and three best-effort dependencies the payment gateway calls after a
payment (notifications, loyalty points, recommendations). Every server is a
reference component wrapped in a `reference.degrade.Sidecar`; the variants
differ only in what the sidecars do (`chapters.ch6_degrade.wiring`).

The scenarios offer load relative to the payment database's capacity (a
slow store on purpose, ~60 payments/s, so a 10x spike and the 30 s after it
simulate in seconds): a baseline at half of it for 2 s, then a spike (or a
slow dependency) lasting `--duration-s` (4 s by default), then the baseline
again for 32 s, long enough to see whether goodput comes back.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from typing import Any, ClassVar

from chapters.ch6_degrade.host import PROBE_MS, HostLagProbe
from chapters.ch6_degrade.wiring import (
    BEST_EFFORT,
    CLUSTER_MODES,
    CONTROLS,
    EDGE,
    HOT_SHARE,
    PAY_DB,
    PAY_GATEWAY,
    TOKEN_GROUP,
    TOKEN_SERVER,
    TOKEN_STANDBY,
    wiring,
)
from chapters.common import SYNC_MS, PaymentDeployment, expect
from chapters.stage import Deployment, Runtime, Scenario, Setting, Stage, StageError, StageOptions
from checks.history import Event
from reference.clients import Payment
from reference.degrade import (
    BestEffortService,
    ControlDesk,
    ControlPlane,
    DependencyPlan,
    Sidecar,
    SidecarConfig,
    TokenLedger,
    TokenServer,
    TokenServerConfig,
)
from reference.gateway import GatewayConfig, PaymentGateway
from reference.net.topology import Topology
from reference.node import Node, NodeId
from reference.paxos import Membership, PaxosConfig, Replica
from reference.payment import (
    PAYMENT_PROCEDURES,
    PAYMENT_SCHEMA,
    open_accounts,
    parse_account,
    user_account,
)
from reference.sim.rng import stream
from reference.sqlstore import ServiceTime, SqlStore, StoreConfig
from reference.traffic.shape import PEAK_2019_PER_S

__all__ = ["STAGE", "DegradeStage"]

CLIENTS = ("client-1", "client-2")
# A slow payment database: pay = 6 statements -> 16 ms busy + 0.5 ms sync, ~60/s.
SERVICE = ServiceTime(txn_ms=4.0, statement_ms=2.0)
PAY_STATEMENTS = 6
OPENING_CENTS = 50_000_000  # rich users: a decline never hides a collapse
WARMUP_MS = 200.0
BEFORE_MS = 2_000.0  # baseline before the event
AFTER_MS = 32_000.0  # baseline after it: 30 s to show (or not) recovery
BASELINE_SHARE = 0.5
BLIP_MS = 2_000.0  # retry-storm: the database stalls this long
DEPENDENCY_SLOW_MS = 2_000.0  # dependency-slow: loyalty answers this much later
HOT_ZIPF = 2.0  # hot-merchant: most payments go to merchant 0


def enabled_controls(options: StageOptions) -> tuple[str, ...]:
    """`extra["controls"]`: which controls the `controls` variant turns on (default all)."""
    text = str(options.extra.get("controls", ",".join(CONTROLS)))
    chosen = tuple(c for c in text.split(",") if c)
    unknown = sorted(set(chosen) - set(CONTROLS))
    if unknown:
        known = ", ".join(CONTROLS)
        raise StageError(f"unknown control {unknown[0]!r} (known: {known})")
    return chosen


GATEWAYS_MAX = 16
CONTROL = "control"  # the control plane node (present in drills)
CHANGES_MAX = 100


def parse_change(change: object) -> tuple[float, str, object]:
    """One live change: (at_ms, "flow-qps", count) or (at_ms, "switch", "path=on|off|plan"),
    or the same as one string "at_ms:what:value" (how a harness spec carries it)."""
    try:
        if isinstance(change, str):
            at, what, value = change.split(":", 2)
            return float(at), what, float(value) if what == "flow-qps" else value
        if isinstance(change, tuple | list) and len(change) == 3:
            at_ms, what, value = change
            return float(at_ms), str(what), value
    except (TypeError, ValueError):
        pass
    raise StageError(f"a change is (at_ms, what, value), not {change!r}")


def validate_change(change: object) -> None:
    at_ms, what, value = parse_change(change)
    if at_ms < 0:
        raise StageError(f"a change happens at a time >= 0, not {at_ms}")
    if what == "flow-qps":
        if not isinstance(value, int | float) or value < 0:
            raise StageError(f"flow-qps must be a number >= 0, not {value!r}")
    elif what == "switch":
        path, _, state = str(value).partition("=")
        if path not in BEST_EFFORT or state not in ("on", "off", "plan"):
            paths = ", ".join(BEST_EFFORT)
            raise StageError(f"a switch is PATH=on|off|plan, PATH one of {paths}: not {value!r}")
    else:
        raise StageError(f"a change is flow-qps or switch, not {what!r}")


def pay_gateways(options: StageOptions) -> list[NodeId]:
    """The payment gateways: one (`gw-pay`), or `extra["gateways"]` of them."""
    n = int(options.extra.get("gateways", 1))
    return [PAY_GATEWAY] if n == 1 else [f"{PAY_GATEWAY}-{i}" for i in range(1, n + 1)]


def edges(options: StageOptions) -> list[NodeId]:
    """One edge gateway per payment gateway: a client picks a pair by its buyer."""
    n = int(options.extra.get("gateways", 1))
    return [EDGE] if n == 1 else [f"{EDGE}-{i}" for i in range(1, n + 1)]


def uses_token_server(options: StageOptions) -> bool:
    """Several payment gateways sharing one flow rule through a token server."""
    cluster = options.extra.get("cluster", "local")
    protect = options.extra.get("protect", "flow")
    flow = "flow" in enabled_controls(options)
    shared = len(pay_gateways(options)) > 1 and cluster != "local" and protect == "flow"
    return options.variant == "controls" and flow and shared


def _control_plane(options: StageOptions) -> bool:
    """A control plane node: for a drill's scheduled changes, or live ones (`extra["control"]`,
    which the TUI asks for so its keys can change rules and switches)."""
    return bool(options.extra.get("changes")) or bool(options.extra.get("control"))


def service(options: StageOptions | None = None) -> ServiceTime:
    """The payment database's service time: `extra["db_slowdown"]` times the chapter's.

    Real backends run the scenarios slower (`d11 test ch6 --backend process
    --scenario ...`): the same overload factors at a quarter of the rates, so
    that what is measured is the controls, not seven Python processes and the
    harness sharing two cores with other work."""
    slowdown = float(options.extra.get("db_slowdown", 1.0)) if options is not None else 1.0
    if slowdown == 1.0:
        return SERVICE
    return ServiceTime(
        txn_ms=SERVICE.txn_ms * slowdown, statement_ms=SERVICE.statement_ms * slowdown
    )


REAL_DB_SLOWDOWN = 4.0  # on real backends: ~15 payments/s, a 10x spike is ~150/s offered


def real_pace(rt: Runtime, options: StageOptions) -> StageOptions:
    """On a real backend, the database `REAL_DB_SLOWDOWN` times slower unless the options say.

    Measured under a load of 8 on two cores: a 3x spike at the chapter's own
    pace (175 payments/s offered, each a few messages between processes)
    left the gateways' processes waiting for the CPU and most tries timed
    out (goodput 6-53%); at a quarter of the pace the same spike met the
    SLO (94%, p99 310 ms). Chapter 6 inside the capstone (`host_city`) keeps
    the capstone's pace."""
    extra = options.extra
    # A runtime whose nodes run elsewhere keeps what stays behind when their factories
    # are shipped (`ProcessRuntime.stays_behind`); the simulator, wrapped or not, has none.
    elsewhere = getattr(rt, "stays_behind", None) is not None
    if not elsewhere or "db_slowdown" in extra or "host_city" in extra:
        return options
    scale = options.scale  # double11's peak: 10x the capacity at this pace too
    if scale in (0.0, DegradeStage.default_scale):
        scale = DegradeStage.default_scale / REAL_DB_SLOWDOWN
    return options.with_(extra={**extra, "db_slowdown": REAL_DB_SLOWDOWN}, scale=scale)


def capacity_tps(options: StageOptions | None = None) -> float:
    return service(options).capacity_tps(PAY_STATEMENTS, SYNC_MS)


class DegradeDeployment(PaymentDeployment):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.dependencies: dict[str, DependencyPlan] = {}
        self.spike: tuple[float, float] = (0.0, 0.0)
        self.desk = ControlDesk(record=self.record)  # live changes, when a drill makes them
        self.changes_scheduled = False
        # Real backends: how late the harness's timers ran, for the SLO checker (host.py).
        real = getattr(self.rt, "stays_behind", None) is not None
        self.host_probe = HostLagProbe(self.rt) if real else None
        self.host_reported = False

    def capacity_tps(self) -> float:
        return capacity_tps(self.options)

    def crash_victims(self) -> list[NodeId]:
        return [PAY_DB]

    def partition_groups(self) -> list[set[str]]:
        return [{PAY_DB}, {*edges(self.options), *pay_gateways(self.options), *CLIENTS}]

    def opening_balances(self) -> dict[str, int]:
        opening = int(self.options.extra.get("opening_cents", OPENING_CENTS))
        users = {user_account(u): opening for u in range(self.population.users)}
        return users | self.merchant_balances()

    # -- traffic in segments --------------------------------------------------------
    def offer(self, segments: list[tuple[float, float, float]]) -> None:
        """Open-loop Poisson arrivals: (start_ms, end_ms, payments per second) segments."""
        clients = self.roles["client"]
        end_ms = max(b for _, b, _ in segments)
        self.traffic_window = (min(a for a, _, _ in segments), end_ms)
        for cid in clients:
            rng = stream(self.options.seed, f"ch6/traffic/{cid}")
            plan = self.plans[cid]
            plan.traffic_until_ms = end_ms
            for start_ms, stop_ms, rate_per_s in segments:
                t = start_ms
                per_client = rate_per_s / len(clients)
                while per_client > 0:
                    t += rng.expovariate(per_client) * 1000.0
                    if t >= stop_ms:
                        break
                    plan.arrivals.append(self._payment(rng, t))

    def _payment(self, rng: random.Random, t: float) -> Payment:
        pop = self.population
        uid, mid, amount = pop.user(rng), pop.merchant(rng), pop.amount_cents(rng)
        return self.payment_for(rng, t, uid, mid, amount)

    @property
    def local_nodes(self) -> list[NodeId]:
        """On real backends, nodes hosted in the harness's own process: the control plane
        reads the desk an operator writes (a drill, the TUI's keys), and the best-effort
        dependencies read the slowdowns a scenario or the `d` key sets; a copy of either
        in another process would never see a change."""
        return [*BEST_EFFORT, CONTROL] if _control_plane(self.options) else list(BEST_EFFORT)

    def _schedule_changes(self, origin_ms: float) -> None:
        """A drill's changes, `at_ms` after the run's start (a scenario's, or the traffic's)."""
        if self.changes_scheduled:
            return
        self.changes_scheduled = True

        def make(what: str, value: object) -> Callable[[], None]:
            def change() -> None:
                self.change(what, value)

            return change

        for change in self.options.extra.get("changes", ()):
            at_ms, what, value = parse_change(change)
            self.rt.call_at(origin_ms + at_ms, make(what, value))

    def apply_scenario(self, name: str) -> None:
        self._schedule_changes(self.rt.now_ms)
        if self.host_probe is not None:
            self.host_probe.start()
        super().apply_scenario(name)

    def start_traffic(self, start_ms: float, end_ms: float, profile: str = "steady") -> None:
        self._schedule_changes(start_ms)
        if self.host_probe is not None:
            self.host_probe.start()
        super().start_traffic(start_ms, end_ms, profile)

    def finish(self, at_ms: float) -> float:
        if self.host_probe is not None:
            self.rt.call_at(at_ms, self._report_host)
        return super().finish(at_ms)

    def _report_host(self) -> None:
        """The probe's figures into the history, where the SLO checker reads them."""
        if self.host_probe is None or self.host_reported:
            return
        self.host_reported = True
        figures = self.host_probe.report()
        now_ms = self.rt.now_ms
        self.timeline.append(
            (now_ms, "host-lag", f"harness timers p99 {figures['p99_ms']:.0f} ms late, "
             f"load {figures['load_1m']:.1f} on {figures['cores']:.0f} cores")
        )  # fmt: skip
        self.record({"type": "info", "process": "nemesis", "f": "host-lag",
                     "value": figures, "time_ms": now_ms})  # fmt: skip

    def change(self, what: str, value: Any) -> int:
        """An operator's live change (a drill): "flow-qps" to a count, "switch" to "path=state"."""
        now_ms = self.rt.now_ms
        if what == "flow-qps":
            return self.desk.change(now_ms, flow_qps=float(value))
        path, _, state = str(value).partition("=")
        return self.desk.change(now_ms, switch=(path, state))

    def event(self, start_ms: float, end_ms: float, kind: str, ended: str = "") -> None:
        """Mark the spike (or blip, or slowdown) in the history for the SLO checker:
        `kind` says what starts, `ended` what the end brings back (default: "KIND: over")."""
        self.spike = (start_ms, end_ms)
        self.rt.call_at(start_ms, lambda: self.note("spike-start", kind))
        self.rt.call_at(end_ms, lambda: self.note("spike-end", ended or f"{kind}: over"))

    def slo_checks(self) -> None:
        from checks.slo import SloTargets, check_slo

        def slo(history: list[Event]) -> object:
            # A stall serves nothing whatever the controls: judge the recovery only.
            stall = self.scenario == "retry-storm"
            targets = SloTargets(
                capacity_tps=self.capacity_tps(), deadline_ms=self.deadline_ms,
                goodput_share_min=0.0 if stall else 0.9, shed_order=not stall,
            )  # fmt: skip
            return check_slo(history, targets)

        self.checks["slo"] = slo  # type: ignore[assignment]


class DegradeStage(Stage):
    id = "ch6"
    title = "Degrade controls"
    aliases = ("degrade",)
    variants = {  # noqa: RUF012
        "none": "fixed timeouts, no limits, best-effort calls inside the payment: the storm",
        "naive-retries": "three tries at each of three layers (up to 27 at the database)",
        "controls": "flow rule, deadlines, retry budget, breakers and degrade switches",
    }
    default_variant = "controls"
    default_scale = 10 * capacity_tps() / PEAK_2019_PER_S  # the 2019 peak = 10x capacity
    scenarios: ClassVar[dict[str, Scenario]] = {}  # filled below
    expected = {}  # noqa: RUF012  (filled below)
    settings = {  # noqa: RUF012
        "gateways": Setting(
            "payment gateways sharing the flow rule", int, low=1, high=GATEWAYS_MAX
        ),
        "cluster": Setting(
            "how several gateways share the rule's count (leases: the book's design)",
            choices=CLUSTER_MODES,
        ),
        "protect": Setting("the gateways' inbound limit", choices=("flow", "bbr", "gradient2")),
        "controls": Setting(
            f"which controls `controls` turns on, comma-separated: {','.join(CONTROLS)}"
        ),
        "hot_share": Setting(
            "a hot merchant's limit as a share of capacity (0: no hot-parameter rule)",
            float,
            low=0,
            high=1,
        ),
        "db_slowdown": Setting(
            "the payment database this many times slower", float, low=0.1, high=100
        ),
    }

    def validate(self, options: StageOptions) -> None:
        super().validate(options)
        if options.shards not in (0, 1) or options.cells not in (0, 1):
            raise StageError("chapter 6 has one payment database: --shards/--cells do not apply")
        enabled_controls(options)  # raises on an unknown one
        for change in options.extra.get("changes", ()):
            validate_change(change)
        gateways = options.extra.get("gateways", 1)
        if not isinstance(gateways, int) or not 1 <= gateways <= GATEWAYS_MAX:
            raise StageError(f"gateways must be an integer in [1, {GATEWAYS_MAX}], not {gateways}")
        cluster = options.extra.get("cluster", "local")
        if cluster not in CLUSTER_MODES:
            raise StageError(f"cluster must be one of {', '.join(CLUSTER_MODES)}, not {cluster!r}")
        slowdown = options.extra.get("db_slowdown", 1.0)
        if not isinstance(slowdown, int | float) or not 1 <= slowdown <= 100:
            raise StageError(f"db_slowdown must be a number in [1, 100], not {slowdown!r}")
        protect = options.extra.get("protect", "flow")
        if protect not in ("flow", "bbr", "gradient2"):
            raise StageError(f"--protect must be flow, bbr or gradient2, not {protect!r}")

    def topology(self, options: StageOptions) -> Topology:
        nodes = [*edges(options), *pay_gateways(options), PAY_DB, *BEST_EFFORT]
        if _control_plane(options):
            nodes.append(CONTROL)
        if uses_token_server(options) and options.extra.get("cluster") == "leases":
            nodes += TOKEN_GROUP
        elif uses_token_server(options):
            nodes.append(TOKEN_SERVER)
            if options.extra.get("failover"):
                nodes.append(TOKEN_STANDBY)
        return Topology.build({"hangzhou": {"hz-1": nodes, "hz-users": list(CLIENTS)}})

    def build(self, rt: Runtime, options: StageOptions) -> Deployment:
        options = real_pace(rt, options)
        dep = DegradeDeployment(self, rt, options, self.topology(options))
        protect = str(options.extra.get("protect", "flow"))
        gateways = pay_gateways(options)
        cluster = str(options.extra.get("cluster", "local"))
        failover = bool(options.extra.get("failover", False))
        hot_share = float(options.extra.get("hot_share", HOT_SHARE))
        w = wiring(options.variant, capacity_tps(options), dep.record, protect,
                   enabled_controls(options), len(gateways), cluster, failover,
                   hot_share)  # fmt: skip
        if dep.host_probe is not None:
            # Real processes: each gateway times its own loop too. Not the database: its
            # timers also wait for the work it is modelled to be busy with (a queue at
            # capacity is the spike, not the host); a gateway's work is 0.05 ms a message.
            w = dataclasses.replace(w, **{
                name: dataclasses.replace(getattr(w, name), record=dep.record,
                                          host_probe_ms=PROBE_MS)
                for name in ("edge", "pay")
            })  # fmt: skip
        balances = dep.opening_balances()
        store = StoreConfig(
            schema=PAYMENT_SCHEMA, procedures=PAYMENT_PROCEDURES,
            init=lambda txn: open_accounts(txn, balances), service=service(options),
        )  # fmt: skip
        rt.add_node(PAY_DB, lambda _nid: Sidecar(SqlStore(store), w.db))
        pay = GatewayConfig(shards=(PAY_DB,))
        fronts = edges(options)
        for edge_id, gw in zip(fronts, gateways, strict=True):
            rt.add_node(gw, _gateway(pay, w.pay))
            rt.add_node(edge_id, _gateway(GatewayConfig(shards=(gw,)), w.edge))
        if w.pay.cluster is not None:
            assert uses_token_server(options)
            server = TokenServerConfig({"pay": w.pay.cluster.count},
                                       w.pay.cluster.max_queueing_time_ms)  # fmt: skip
            for server_id in (w.pay.cluster.server, *w.pay.cluster.standbys):
                rt.add_node(server_id, lambda _nid: TokenServer(server))
                dep.roles["config"].append(server_id)
        if w.pay.leases is not None:
            group = PaxosConfig(membership=Membership(1, w.pay.leases.group))
            for member in w.pay.leases.group:
                rt.add_node(member, lambda nid: Replica(nid, group, TokenLedger))
                dep.roles["config"].append(member)
        for path in BEST_EFFORT:
            plan = dep.dependencies[path] = DependencyPlan(
                enforce_deadline=w.deadline_at_dependencies
            )
            rt.add_node(path, _dependency(plan))
        dep.roles["shard"].append(PAY_DB)
        dep.roles["gateway"] += [*fronts, *gateways]
        if _control_plane(options):
            # A drill (or the TUI's keys): the control plane pushes each change to every
            # payment gateway.
            rt.add_node(CONTROL, lambda _nid: ControlPlane(dep.desk, tuple(gateways)))
            dep.roles["config"].append(CONTROL)
        dep.record_init(balances)

        def route(buyer: str, pid: str, rng: random.Random, rules: object) -> NodeId:
            _, uid = parse_account(buyer)  # a user's payments always take the same pair
            return fronts[uid % len(fronts)]

        dep.add_clients(list(CLIENTS), route, fronts[0])
        dep.standard_checks()
        dep.slo_checks()
        return dep


def _gateway(config: GatewayConfig, sidecar: SidecarConfig) -> Callable[[NodeId], Node]:
    """A payment gateway behind its sidecar (a fresh one at every start)."""
    return lambda _nid: Sidecar(PaymentGateway(config), sidecar)


def _dependency(plan: DependencyPlan) -> Callable[[NodeId], Node]:
    return lambda _nid: BestEffortService(plan)


# -- scenarios ------------------------------------------------------------------------
def _timeline(dep: DegradeDeployment) -> tuple[float, float, float, float]:
    extra = dep.options.extra
    start_ms = dep.rt.now_ms + WARMUP_MS
    event_ms = start_ms + float(extra.get("before_ms", BEFORE_MS))
    calm_ms = event_ms + float(extra.get("spike_ms", dep.options.duration_s * 1000.0))
    end_ms = calm_ms + float(extra.get("after_ms", AFTER_MS))
    return start_ms, event_ms, calm_ms, end_ms


def _overload(factor: float) -> Scenario:
    def apply(dep: Deployment) -> None:
        assert isinstance(dep, DegradeDeployment)
        start_ms, event_ms, calm_ms, end_ms = _timeline(dep)
        base = BASELINE_SHARE * dep.capacity_tps()
        peak = factor * dep.capacity_tps()
        dep.offer([(start_ms, event_ms, base), (event_ms, calm_ms, peak), (calm_ms, end_ms, base)])
        dep.event(event_ms, calm_ms, f"offered {factor:g}x capacity",
                  f"offered {BASELINE_SHARE:g}x capacity again")  # fmt: skip
        dep.finish(end_ms + dep.deadline_ms)

    return Scenario(
        f"overload-{factor:g}x",
        f"half the capacity, then {factor:g}x for --duration-s, then half again for 32 s",
        apply,
    )


def _steady(dep: Deployment) -> None:
    """Half the capacity, flat: no spike (the TUI's start, and `d11 run ch6`'s default)."""
    assert isinstance(dep, DegradeDeployment)
    start_ms = dep.rt.now_ms + WARMUP_MS
    end_ms = start_ms + dep.options.duration_s * 1000.0
    dep.offer([(start_ms, end_ms, BASELINE_SHARE * dep.capacity_tps())])
    dep.finish(end_ms + dep.deadline_ms)


def _hot_merchant(dep: Deployment) -> None:
    assert isinstance(dep, DegradeDeployment)
    dep.population = type(dep.population)(
        users=dep.population.users, merchants=dep.population.merchants, zipf_exponent=HOT_ZIPF
    )
    _overload(3.0).apply(dep)


def _retry_storm(dep: Deployment) -> None:
    """A 2 s stall of the database at 70% load: the trigger, not the load, starts the storm."""
    assert isinstance(dep, DegradeDeployment)
    start_ms, event_ms, _, end_ms = _timeline(dep)
    calm_ms = event_ms + BLIP_MS
    dep.offer([(start_ms, end_ms, 0.7 * dep.capacity_tps())])
    dep.event(event_ms, calm_ms, "the payment database stalls", "the payment database is back")
    dep.rt.call_at(event_ms, lambda: dep.rt.pause(PAY_DB))  # type: ignore[attr-defined]
    dep.rt.call_at(calm_ms, lambda: dep.rt.resume(PAY_DB))  # type: ignore[attr-defined]
    dep.finish(end_ms + dep.deadline_ms)


def _dependency_slow(dep: Deployment) -> None:
    assert isinstance(dep, DegradeDeployment)
    start_ms, event_ms, calm_ms, end_ms = _timeline(dep)
    dep.offer([(start_ms, end_ms, BASELINE_SHARE * dep.capacity_tps())])
    dep.dependencies["loyalty"].slow.append((event_ms, calm_ms, DEPENDENCY_SLOW_MS))
    dep.event(event_ms, calm_ms, "loyalty answers 2 s late", "loyalty answers in time again")
    dep.finish(end_ms + dep.deadline_ms)


def _double11(dep: Deployment) -> None:
    """The real Double 11 shape, its peak scaled to 10x the database's capacity."""
    assert isinstance(dep, DegradeDeployment)
    start_ms, event_ms, calm_ms, end_ms = _timeline(dep)
    traffic = dep.traffic(
        "double11", start_ms + float(dep.options.extra.get("before_ms", BEFORE_MS)) - 1_000.0
    )
    for cid in dep.roles["client"]:
        plan = dep.plans[cid]
        plan.traffic_until_ms = end_ms
        arrivals = traffic.arrivals(dep.options.seed, start_ms, end_ms, name=f"traffic/{cid}",
                                    fraction=1.0 / len(dep.roles["client"]))  # fmt: skip
        mix = stream(dep.options.seed, f"mix/{cid}")
        plan.arrivals.extend(dep.payment_for(mix, *a) for a in arrivals)
    dep.traffic_window = (start_ms, end_ms)
    dep.event(event_ms, calm_ms, "midnight", "the midnight spike's window ends")
    dep.finish(end_ms + dep.deadline_ms)


DegradeStage.scenarios = {
    s.name: s
    for s in (
        Scenario("steady", "half the capacity, flat, for --duration-s", _steady),
        Scenario("double11", "the Double 11 midnight spike, its peak at 10x capacity", _double11),
        Scenario("retry-storm", "70% load; the database stalls for 2 s", _retry_storm),
        Scenario(
            "dependency-slow",
            "half load; loyalty answers 2 s late for --duration-s",
            _dependency_slow,
        ),
        Scenario("hot-merchant", "3x overload, most of it to one merchant", _hot_merchant),
        _overload(3.0),
        _overload(10.0),
    )
}

_WHY_COLLAPSE = {
    "retry-storm": "The 2 s stall leaves a backlog; every request in it times out and is "
    "retried, so the database never catches up at 70% load.",
    "dependency-slow": "Every payment's answer waits for the slow loyalty call: clients time "
    "out and retry, and no payment is acknowledged in time.",
}
_STORM = "Without controls the spike's backlog and its retries keep goodput down long after."
# Without controls the store may still be drowning when the final phase reads the
# balances: the read gets no answer in time (no complete read for the bank check, no
# final read for the ledger's), or too many payments are still unknown to enumerate.
_UNKNOWN_LEDGER = expect("unknown", "The store may still be overloaded at the end: the final "
                         "read of the balances gets no answer in time, or too many payments "
                         "are still unknown to enumerate.", always=False)  # fmt: skip
_UNKNOWN_BANK = expect("unknown", "The store may still be overloaded at the end: no complete "
                       "read of the balances comes back in time.", always=False)  # fmt: skip
DegradeStage.expected = {
    (variant, scenario): {
        "slo": expect(False, _WHY_COLLAPSE.get(scenario, _STORM)),
        "ledger": _UNKNOWN_LEDGER,
        "bank": _UNKNOWN_BANK,
    }
    for variant in ("none", "naive-retries")
    for scenario in DegradeStage.scenarios
    if scenario != "steady"  # half the capacity: nothing to collapse
}
STAGE = DegradeStage()
