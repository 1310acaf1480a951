"""The rehearsal's system under test: the capstone's payment pipeline, nothing beside it.

`d11 rehearse` measures the real production path (`--system pipeline`, the
default): chapters 3 to 6 as the capstone wires them into one payment
pipeline (`chapters.capstone.pipeline`): a cell gateway behind chapter 6's
controls, the cell's payment service (chapter 5's transactional producer:
half message, the transfer in the payer's cell's Paxos ledger group, commit),
the broker, and the settlement and notification consumer groups. Its load
test is the capstone's own: tagged payments (`mark=T`) served from shadow
twins of every account, the shadow topic `pt_payments` and the shadow groups
`pt_*`, judged by `ch5:isolation` from the spans.

What the rehearsal adds to the pipeline, here and nowhere in the capstone:

- `RehearsalCells`: the cells part whose clients replay a recording tagged,
  open model, on top of production at a share of the forecast
  (`LoadTestTraffic`, shared with chapter 7's own system), or run the capacity
  sweep's closed loops; with a replay, production is never tagged at random;
- `PipelineRehearsal`: the capstone's deployment of those two parts only (not
  chapter 6's and chapter 7's own systems, which the night runs beside the
  pipeline): one history, every checker of chapters 4 and 5, chapter 6's at the
  pipeline's door (`ch6:slo`, `ch6:ledger`) and the capstone's
  `double11:pipeline`; its kill switch reaches every cell gateway;
- `PipelineStage`: builds it, as `CapstoneStage` builds the night's, with a
  planted bottleneck (`slow`: a node `slow_factor` times slower) or a planted
  leak (`leak`: the gateway, the producer or the consumer drops the tag).
"""

from __future__ import annotations

from collections.abc import Callable

from chapters.capstone.parts import CellsPart, merge_layouts, part_layout
from chapters.capstone.pipeline import PipelineCells, PipelineQueue, record_spans
from chapters.capstone.stage import (
    OWN_CHECKS,
    CapstoneDeployment,
    CapstoneStage,
    build_parts,
)
from chapters.ch4_paxos.stage import USERS_CELL, PaxosDeployment
from chapters.ch7_rehearsal.stage import SLOW_FACTOR, LoadTestTraffic
from chapters.scenarios import SCENARIOS
from chapters.stage import Deployment, Runtime, Scenario, StageError, StageOptions
from reference.capacity.slow_node import SlowNode
from reference.clients import Payment
from reference.net.topology import Topology
from reference.node import Node, NodeId

__all__ = ["PIPELINE", "PipelineRehearsal", "PipelineStage", "RehearsalCells"]

PARTS = ("cells", "mq")  # the pipeline: chapter 4's cells paying through chapter 5's queue


class RehearsalCells(LoadTestTraffic, PipelineCells):
    """The pipeline's cells, their clients driven by the rehearsal."""

    def load_test(self, recorded: list[Payment]) -> None:
        """Replay `recorded` tagged (`LoadTestTraffic.load_test`); production's own
        payments are then all untagged: the load test is the replay."""
        super().load_test(recorded)
        self.load_test_share = 0.0


class RehearsalCellsPart(CellsPart):
    def new_deployment(self, rt: Runtime, options: StageOptions, topo: Topology) -> PaxosDeployment:
        return RehearsalCells(self, rt, options, topo)


CELLS = RehearsalCellsPart()


class PipelineRehearsal(CapstoneDeployment):
    """The pipeline alone on the simulator: the capstone's cells and queue parts."""

    @property
    def cells(self) -> RehearsalCells:
        part = self.parts["cells"]
        assert isinstance(part, RehearsalCells)
        return part

    def forecast_tps(self) -> float:
        return self.cells.forecast_tps()

    def capacity_tps(self) -> float:
        return self.cells.capacity_tps()

    def load_test(self, recorded: list[Payment]) -> None:
        self.cells.load_test(recorded)

    def kill_switch(self, enabled: bool) -> None:
        self.cells.kill_switch(enabled)

    def servers(self) -> list[str]:
        """Every node but the clients: what the rehearsal samples the queue of."""
        clients = set(self.roles["client"])
        return sorted(n for n in self.topology.nodes() if n not in clients)


def _parts(scenario: str, queue_scenario: str) -> Callable[[Deployment], None]:
    """Apply `scenario` to the cells (their clients' traffic) and `queue_scenario` to
    the queue (which has no clients: its own window and final phase)."""

    def apply(dep: Deployment) -> None:
        assert isinstance(dep, PipelineRehearsal)
        dep.parts["cells"].apply_scenario(scenario)
        dep.parts["mq"].apply_scenario(queue_scenario)
        dep.end_ms = max(part.end_ms for part in dep.parts.values())

    return apply


class PipelineStage(CapstoneStage):
    """The capstone's pipeline (chapters 3 to 6 as one payment path), for the rehearsal."""

    id = "pipeline"
    title = "The payment pipeline, rehearsed"
    aliases = ("rehearsed-pipeline",)
    variants = {"all": "the pipeline, its load test through its shadow lane"}  # noqa: RUF012
    default_variant = "all"
    default_scenario = "steady"
    scenarios = {  # noqa: RUF012
        "steady": Scenario("steady", SCENARIOS["steady"].summary, _parts("steady", "steady")),
        "saturate": Scenario(
            "saturate", SCENARIOS["saturate"].summary, _parts("saturate", "steady")
        ),
    }
    expected = {}  # noqa: RUF012

    def validate(self, options: StageOptions) -> None:
        slow = str(options.extra.get("slow", ""))
        if slow and slow not in self.nodes(options):
            raise StageError(f"slow names no node of the pipeline: {slow!r}")
        super().validate(options)

    def nodes(self, options: StageOptions) -> list[str]:
        """The pipeline's servers: what `slow` may name."""
        topo = self.topology(options)
        clients = set(topo.nodes_in(USERS_CELL))
        return sorted(n for n in topo.nodes() if n not in clients)

    def part_options(self, options: StageOptions) -> dict[str, StageOptions]:
        parts = super().part_options(options)
        # A rehearsal's runs are measured and judged, never watched: the queue's
        # message trace goes to the broker's trace topic only, not also to telemetry
        # (a million events in a 60 s 2x level, ~10% of its CPU; the same run).
        mq = parts["mq"]
        quiet = {"mq_trace_events": options.extra.get("mq_trace_events", False)}
        parts["mq"] = mq.with_(extra={**mq.extra, **quiet})
        return {name: parts[name] for name in PARTS}

    def build(self, rt: Runtime, options: StageOptions) -> Deployment:
        parts = self.part_options(options)
        layouts = {n: part_layout(n, o) for n, o in parts.items()}
        dep = PipelineRehearsal(
            self, rt, options, Topology.build(merge_layouts([*layouts.values()]))
        )
        driven = {k: options.extra[k] for k in _DRIVEN if k in options.extra}
        driven_parts = {n: o.with_(extra={**o.extra, **driven}) for n, o in parts.items()}
        undo_slow = _plant_slow(rt, options)
        # chapter 6's checks at the pipeline's door, as on the night
        nodes_of = build_parts(
            rt, dep, driven_parts, layouts, door_before="cells",
            build=lambda name, opts: CELLS.build(rt, opts),
        )  # fmt: skip
        undo_slow()
        dep.checks |= OWN_CHECKS
        queue = dep.parts["mq"]
        assert isinstance(queue, PipelineQueue)
        record_spans(rt, queue, nodes_of["cells"] | nodes_of["mq"])
        telemetry = getattr(rt, "telemetry", None)
        if telemetry is not None:
            telemetry.subscribe(dep.on_routing)
        dep.deadline_ms = dep.cells.deadline_ms
        dep.scale = dep.cells.scale
        return dep


# The rehearsal's knobs, passed to the cells part (its clients' traffic).
_DRIVEN = ("forecast_tps", "load_factor", "production_share", "concurrency", "steady_tps")


NODE_WORK_MS = 0.05  # what a gateway, payment service or ledger front works per message


def _plant_slow(rt: Runtime, options: StageOptions) -> Callable[[], None]:
    """While the parts build, node `slow` (extra) is made a `SlowNode` `slow_factor`
    times slower than a gateway's work per message (any node: a Paxos replica or a
    broker, which do no work of their own here, too); returns the undo."""
    slow = str(options.extra.get("slow", ""))
    if not slow:
        return lambda: None
    extra_ms = (float(options.extra.get("slow_factor", SLOW_FACTOR)) - 1.0) * NODE_WORK_MS
    plain = rt.add_node

    def add_node(node_id: NodeId, factory: Callable[[NodeId], Node]) -> None:
        if node_id == slow:
            inner = factory
            factory = lambda nid: SlowNode(inner(nid), extra_ms)  # noqa: E731
        plain(node_id, factory)

    setattr(rt, "add_node", add_node)  # noqa: B010  (this runtime's, while the parts build)

    def undo() -> None:
        delattr(rt, "add_node")

    return undo


PIPELINE = PipelineStage()
