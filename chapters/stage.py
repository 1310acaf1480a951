"""The Stage API: what every chapter hands to the harness, the TUI and `d11 run`.

A *stage* is one chapter's state of the payment system, ready to run: which
nodes exist and where (`Stage.topology`), how to start them on a runtime
(`Stage.build`), which scenarios it knows (steady traffic, the midnight
spike, a crash, a partition), which checkers judge its histories, and what
each scenario is *expected* to show. An expected failure (the naive
cross-shard transfer losing money, async replication losing acknowledged
payments) is part of the lesson, so it is declared next to the stage and
reported as expected, with its explanation.

The life of a run, whoever drives it:

    stage = chapters.STAGES["ch2"]
    options = stage.options(seed=7, variant="tcc", shards=4)   # validated
    rt = SimRuntime(topology=stage.topology(options), seed=options.seed)
    dep = stage.build(rt, options)          # adds nodes and clients, nothing runs yet
    rt.start()
    dep.apply_scenario("crash")             # schedules traffic + faults with rt.call_at
    rt.run_until(dep.end_ms)                # traffic, faults, then the final phase
    verdicts = dep.run_checks()             # name -> checks.verdict.Verdict
    judged = judge(verdicts, dep.expectations("crash"))

A harness that brings its own faults (nemeses) uses the pieces instead of a
scenario: `dep.start_traffic(...)`, its own `rt.crash(...)` on nodes from
`dep.roles`, then `dep.finish(at_ms)` (heal, restart, let recovery run, take
the final reads), then `dep.run_checks()`. `chapters.run.simulate` wraps the
whole thing for the simulator.

Everything a report shows is computed from the history (the clients record
each completion with its latency, the node that served it and the error kind)
and from the runtime's telemetry, so the TUI can call `dep.snapshot()` at any
moment of a run.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

# Expectations, judgements and StageError are the harness's contract (it sits
# below the chapters and judges what it runs); a chapter names them from here.
from chapters.metrics import summarize
from checks.harness.contract import (
    Expectation,
    Judgement,
    Setting,
    StageError,
    judge,
    planted_expectations,
)
from checks.history import Event

if TYPE_CHECKING:
    from checks.parallel import PendingChecks
    from checks.verdict import Verdict
    from reference.net.topology import Topology

__all__ = [
    "ROLES",
    "Check",
    "Deployment",
    "Expectation",
    "Judgement",
    "Runtime",
    "Scenario",
    "Setting",
    "Stage",
    "StageError",
    "StageOptions",
    "judge",
]

# The roles a node can have; `Deployment.roles` maps each to node ids. A
# nemesis picks its victims from these (never from "client": the clients are
# the observers whose history is judged).
ROLES: tuple[str, ...] = (
    "gateway",  # entry point: routes (shard/cell router), coordinates transfers
    "shard",  # a SQL store node holding part of the accounts (ch1: the only one)
    "cell",  # ch3: the RZone cells, by cell name (their nodes are under "shard"/"gateway")
    "replica",  # a standby copy (ch3: the standby store of a cell)
    "config",  # GZone / CZone nodes (configuration, merchant directory)
    "controller",  # failover controller
    "client",  # clients issuing operations and recording the history
)


class Links(Protocol):
    """What a stage's own scenarios do to a runtime's network: cut it into groups, heal it."""

    def partition(self, groups: Iterable[Iterable[str]], one_way: bool = False) -> None: ...
    def heal(self) -> None: ...


class Runtime(Protocol):
    """What a stage needs from a runtime: a subset of SimRuntime (SIM_API.md)."""

    @property
    def now_ms(self) -> float: ...
    @property
    def net(self) -> Links: ...
    def add_node(self, node_id: str, factory: Callable[[str], Any]) -> None: ...
    def call_at(self, t_ms: float, fn: Callable[[], None]) -> None: ...
    def crash(self, node_id: str) -> None: ...
    def restart(self, node_id: str) -> None: ...
    def status(self, node_id: str) -> str: ...


Check = Callable[[list[Event]], "Verdict"]
"""A checker bound to its options: history in, verdict out."""


@dataclass(frozen=True)
class StageOptions:
    """How big a stage is and how it runs. Every field has a sane default.

    `scale` follows `reference.traffic.plan`: simulated payments per real
    one, in (0, 1] (1/453 replays the 2019 peak at 1,200 TPS). A report
    shows each simulated rate and the real rate it stands for (rate / scale).
    """

    seed: int = 1
    variant: str = ""  # "" = the stage's default variant
    shards: int = 0  # ch2: number of shards (0 = the stage's default)
    cells: int = 0  # ch3: number of RZone cells (0 = the stage's default)
    duration_s: float = 4.0  # simulated traffic time, before the final phase
    scale: float = 0.0  # simulated payments per real one, (0, 1] (0 = the stage's default)
    extra: Mapping[str, Any] = field(default_factory=dict)  # stage-specific knobs

    def with_(self, **changes: Any) -> StageOptions:
        return replace(self, **changes)


@dataclass(frozen=True)
class Scenario:
    """A named run: the traffic it offers and the faults it injects.

    `apply(dep)` schedules everything with `dep.rt.call_at` relative to
    `dep.rt.now_ms`, including the final phase (`dep.finish`), and sets
    `dep.end_ms`, the time by which the run is over.
    """

    name: str
    summary: str
    apply: Callable[[Deployment], None]


class Deployment(ABC):
    """A stage built on a runtime: its nodes, its clients, its history, its checks.

    Subclasses (one per chapter) fill in `roles`, `checks`, and implement
    `start_traffic` and `finish`. The history is appended to by the clients
    through `record` (the callback handed to every client at construction).
    """

    def __init__(
        self,
        stage: Stage,
        rt: Runtime,
        options: StageOptions,
        topology: Topology,
    ) -> None:
        self.stage = stage
        self.rt = rt
        self.options = options
        self.topology = topology
        self.roles: dict[str, list[str]] = {role: [] for role in ROLES}
        self.history: list[Event] = []
        self.checks: dict[str, Check] = {}
        self.end_ms: float = 0.0  # set by a scenario (or by finish)
        self.scenario: str | None = None
        self.deadline_ms: float = 0.0  # the clients' per-operation deadline
        # Simulated payments per real one (options.scale, or the stage's default).
        self.scale: float = options.scale or stage.default_scale
        # Faults and phases as they happen, for reports: (time_ms, kind, detail).
        self.timeline: list[tuple[float, str, str]] = []

    # -- the history ---------------------------------------------------------
    def record(self, event: dict[str, Any]) -> None:
        """The clients' `record` callback: one Jepsen-style event as a dict.

        Keys: type, process, f, value, time_ms, and optionally extra (dict).
        """
        assert event["type"] in ("invoke", "ok", "fail", "info"), event
        self.history.append(
            Event(
                type=event["type"],
                process=event["process"],
                f=event["f"],
                value=event["value"],
                time_ms=float(event["time_ms"]),
                index=len(self.history),
                extra=dict(event.get("extra") or {}),
            )
        )

    def add_to_timeline(self, at_ms: float, kind: str, detail: str = "") -> None:
        """One row of the timeline alone (its history event recorded by the caller: the
        TUI's faults). Use this, not `timeline.append`: a timeline may be a merged view."""
        self.timeline.append((at_ms, kind, detail))

    def note(self, kind: str, detail: str = "") -> None:
        """Record a fault or phase: in the timeline and as a nemesis event."""
        now_ms = self.rt.now_ms
        self.timeline.append((now_ms, kind, detail))
        self.history.append(
            Event(
                type="info",
                process="nemesis",
                f=kind,
                value=detail,
                time_ms=now_ms,
                index=len(self.history),
            )
        )

    # -- running -------------------------------------------------------------
    def apply_scenario(self, name: str) -> None:
        """Schedule scenario `name` (traffic, faults, final phase) from now."""
        scenarios = self.stage.scenarios
        if name not in scenarios:
            known = ", ".join(scenarios)
            raise StageError(f"{self.stage.id} has no scenario {name!r} (known: {known})")
        self.scenario = name
        scenarios[name].apply(self)
        assert self.end_ms > self.rt.now_ms, "a scenario must schedule its end"

    @abstractmethod
    def start_traffic(self, start_ms: float, end_ms: float, profile: str = "steady") -> None:
        """Schedule client traffic over [start_ms, end_ms).

        `profile`: "steady" (a constant share of capacity), "double11" (the
        midnight spike compressed into the window), "saturate" (closed loop,
        enough outstanding requests to keep every store busy).
        """

    @abstractmethod
    def finish(self, at_ms: float) -> float:
        """Schedule the final phase at `at_ms`: heal the network, restart what
        is down, let recovery run, then take the final reads that the checkers
        need. Returns (and sets `end_ms` to) the time by which it is done."""

    def final_reads_done(self) -> bool:
        """True once the final reads the checkers need are in the history. A final
        read may queue behind a backlog: on the simulator, keep running (boundedly)
        past `end_ms` until this is True (`chapters.run.simulate` does)."""
        return any(e.type == "ok" and e.extra.get("final") for e in self.history)

    # -- judging -------------------------------------------------------------
    def run_checks(self, history: list[Event] | None = None) -> dict[str, Verdict]:
        """Run every check of this stage on `history` (default: the recorded one)."""
        return self._start_checks(history).wait()

    def start_checks(self, history: list[Event] | None = None) -> PendingChecks[Verdict]:
        """`run_checks` begun: `.wait()` gives the verdicts. The harness gathers the
        store folder's figures meanwhile, while forked checkers run."""
        from checks.parallel import PendingChecks

        if type(self).run_checks is not Deployment.run_checks:  # a stage judging its own way
            return PendingChecks.finished(self.run_checks(history))
        return self._start_checks(history)

    def _start_checks(self, history: list[Event] | None) -> PendingChecks[Verdict]:
        from checks.parallel import start_checks

        events = self.history if history is None else history
        # Side by side in forked processes on a long history (checks.parallel).
        return start_checks(
            {name: functools.partial(check, events) for name, check in self.checks.items()},
            len(events),
        )

    def expectations(self, scenario: str | None = None) -> dict[str, Expectation]:
        """What each check should say for `scenario` (default: the applied one)."""
        name = scenario or self.scenario or "steady"
        expected = self.stage.expectations(self.options.variant or self.stage.default_variant, name)
        # A setting that plants a bug may break checks the variant alone keeps.
        return planted_expectations(self.stage.settings, self.options.extra, expected)

    # -- live view -----------------------------------------------------------
    def snapshot(self, window_ms: float = 1000.0) -> dict[str, Any]:
        """Figures of the run so far (JSON-ready): for the TUI and reports."""
        return summarize(self, window_ms=window_ms)


class Stage(ABC):
    """A chapter's stage. Subclasses set the class attributes and `build`."""

    id: str = ""  # "ch1"
    title: str = ""  # "The monolith"
    aliases: tuple[str, ...] = ()  # ("monolith",)
    variants: ClassVar[dict[str, str]] = {}  # name -> one-line description
    default_variant: str = ""
    default_scale: float = 1.0
    scenarios: ClassVar[dict[str, Scenario]] = {}
    # (variant or "*", scenario) -> {check name: Expectation}. A check that
    # is not listed must pass.
    expected: ClassVar[dict[tuple[str, str], dict[str, Expectation]]] = {}
    # The knobs of `options.extra` a user may set: `d11 run|test CH --set NAME=VALUE`.
    settings: ClassVar[dict[str, Setting]] = {}

    def options(self, **overrides: Any) -> StageOptions:
        """Options with this stage's defaults filled in, validated."""
        opts = StageOptions(**overrides)
        if not opts.variant:
            opts = opts.with_(variant=self.default_variant)
        if not opts.scale:
            opts = opts.with_(scale=self.default_scale)
        self.validate(opts)
        return opts

    def validate(self, options: StageOptions) -> None:
        """Raise StageError with a one-line reason when options make no sense."""
        variant = options.variant or self.default_variant
        if variant not in self.variants:
            known = ", ".join(self.variants)
            raise StageError(f"{self.id} has no variant {variant!r} (known: {known})")
        if options.duration_s <= 0 or options.duration_s > 600:
            raise StageError(f"--duration-s must be in (0, 600], not {options.duration_s}")
        if not 0 <= options.scale <= 1:
            raise StageError(f"--scale must be in (0, 1] (e.g. 1/453), not {options.scale}")

    @abstractmethod
    def topology(self, options: StageOptions) -> Topology:
        """Where every node of the stage lives (the runtime is built on it)."""

    @abstractmethod
    def build(self, rt: Runtime, options: StageOptions) -> Deployment:
        """Add this stage's nodes and clients to `rt`; return the deployment."""

    def expectations(self, variant: str, scenario: str) -> dict[str, Expectation]:
        """What each check should say under (variant, scenario)."""
        out = dict(self.expected.get(("*", scenario), {}))
        out.update(self.expected.get((variant, scenario), {}))
        return out

    def variant_shown_under(self, variant: str) -> tuple[str, ...]:
        """The scenarios whose faults show a broken variant's break (`d11 test`
        names them when its own faults did not: every check passed)."""
        return ()

    def variant_note(self, variant: str, scenario: str) -> str | None:
        """A line for `d11 run` when a broken variant runs where nothing can show its
        break (every check passes, which reads as if the bug were not there): the
        scenarios that do show it. None: nothing to say."""
        return None
