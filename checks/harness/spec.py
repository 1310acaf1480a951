"""What a test is: its spec, checked at the edge, the stage it names, and its result.

A `TestSpec` with its schedule determines a run on the simulator. Both
runners read it: `runner.run_test` on the simulator, `real.run_real` on OS
processes and containers; neither imports the other's module for it, so the
harness has no import cycle (`runner` -> `real` -> `spec`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from checks.harness.contract import (
    DeploymentContract,
    Judgement,
    StageContract,
    StageError,
    stage_named,
)
from checks.nemesis import Schedule, ScheduleError, Targets, parse_nemeses
from checks.verdict import Validity, Verdict

if TYPE_CHECKING:
    from checks.history import Event

__all__ = [
    "BACKENDS",
    "WORKLOADS",
    "HarnessError",
    "TestResult",
    "TestSpec",
    "expectation_scenario",
    "fault_targets",
    "scenario_of_faults",
    "stage_options",
    "validate",
]

BACKENDS: tuple[str, ...] = ("sim", "process", "docker")

# A workload names the traffic the stage's clients offer; the checks that
# judge it are the stage's own (bank and ledger for payments, ...).
WORKLOADS: dict[str, str] = {
    "payments": "steady",  # payments and transfers at a steady share of capacity
    "double11": "double11",  # the midnight spike, compressed into the test time
    "saturate": "saturate",  # closed loop: every store kept busy
}


class HarnessError(ValueError):
    """A test that cannot run as asked (bad chapter, backend, options): one line."""


# --8<-- [start:spec]
@dataclass(frozen=True)
class TestSpec:
    """Everything that determines a run (with the schedule, on the simulator)."""

    __test__ = False  # a spec, not a pytest test class

    chapter: str
    workload: str = "payments"
    nemeses: tuple[str, ...] = ()
    time_s: float = 4.0  # how long traffic and faults run, before healing
    seed: int = 1
    backend: str = "sim"
    variant: str = ""
    shards: int = 0
    cells: int = 0
    interval_ms: float = 800.0  # calm between faults (±50%)
    fault_ms: float = 800.0  # how long each fault lasts (±50%)
    extra: dict[str, Any] = field(default_factory=dict)  # stage knobs (StageOptions.extra)
    # A chapter scenario (`d11 run ch4 --scenario crash`) instead of a workload
    # and a nemesis schedule: the stage's own story, replayed exactly.
    scenario: str = ""
    scale: float = 0.0  # simulated payments per real one (0 = the stage's default)

    @property
    def name(self) -> str:
        """The store folder's test name: chapter, variant, workload, nemeses."""
        if self.scenario:
            return f"{self.chapter}-{self.scenario}"  # where `d11 run` stores it too
        parts = [self.chapter, self.variant or "default", self.workload]
        parts.append("+".join(self.nemeses) or "none")
        return "-".join(parts)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["nemeses"] = list(self.nemeses)
        return data

    @classmethod
    def from_json(cls, data: Any) -> TestSpec:
        """A spec from a file's JSON: every field of its type, or HarnessError naming it."""
        if not isinstance(data, dict) or "chapter" not in data:
            raise HarnessError("a test spec is an object with at least a 'chapter'")
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise HarnessError(f"unknown test spec field(s): {', '.join(sorted(unknown))}")
        for name, value in data.items():
            _check_field(name, value)
        values = dict(data)
        values["nemeses"] = tuple(values.get("nemeses", ()))
        values["extra"] = dict(values.get("extra", {}))
        return cls(**values)


# --8<-- [end:spec]

SIZE_MAX = 256  # shards or cells a spec may ask for: beyond, the build alone would not end
_INT_FIELDS = {"seed": 2**63, "shards": SIZE_MAX, "cells": SIZE_MAX}
_NUMBER_FIELDS = {"time_s": 600.0, "interval_ms": 600_000.0, "fault_ms": 600_000.0, "scale": 1.0}
_STR_FIELDS = ("chapter", "workload", "backend", "variant", "scenario")


def _check_field(name: str, value: Any) -> None:
    """One spec field read from a file: of its type and in its range."""
    if name in _STR_FIELDS and not isinstance(value, str):
        raise HarnessError(f"test spec: {name} must be a string, not {_shown(value)}")
    if name in _INT_FIELDS:
        bound = _INT_FIELDS[name]
        if not _is_int(value) or not -bound < value < bound or (name != "seed" and value < 0):
            span = "(-2^63, 2^63)" if name == "seed" else f"[0, {bound})"
            raise HarnessError(
                f"test spec: {name} must be an integer in {span}, not {_shown(value)}"
            )
    if name in _NUMBER_FIELDS and not (_is_number(value) and 0 <= value <= _NUMBER_FIELDS[name]):
        top = _NUMBER_FIELDS[name]
        shown = _shown(value)
        raise HarnessError(f"test spec: {name} must be a number in [0, {top:g}], not {shown}")
    if name == "nemeses" and not (
        isinstance(value, list) and all(isinstance(n, str) for n in value)
    ):
        raise HarnessError(f"test spec: nemeses must be a list of names, not {_shown(value)}")
    if name == "extra" and not isinstance(value, dict):
        raise HarnessError(f"test spec: extra must be an object, not {_shown(value)}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_number(value: Any) -> bool:
    """A finite JSON number (true and false are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) if isinstance(value, float) else abs(value) < 2**63


def _shown(value: Any) -> str:
    """A value for an error message: short, one line, whatever it holds."""
    plain = isinstance(value, int | float | str | bool) or value is None
    text = repr(value) if plain else f"a {type(value).__name__}"
    return text if len(text) <= 40 else text[:37] + "..."


def _plain(value: Any) -> bool:
    """A JSON scalar a stage can read: a string, a finite number, true/false, null."""
    return value is None or isinstance(value, str | bool) or _is_number(value)


# A knob of a stage that this table does not know (each chapter may add its
# own, and validates it in its options()): plain values or a short flat list.
_OTHER_KNOB: tuple[str, Callable[[Any], bool]] = (
    "a string, a finite number, true, false, null, or a list of up to 100 of those",
    lambda v: _plain(v) or (isinstance(v, list | tuple) and len(v) <= 100 and all(map(_plain, v))),
)

# The knobs the first chapters read (StageOptions.extra), each with its type check.
_EXTRA_KNOBS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "steady_tps": ("a rate in [0, 100000] payments/s", lambda v: _is_number(v) and 0 <= v <= 1e5),
    "users": ("an integer in [1, 1000000]", lambda v: _is_int(v) and 1 <= v <= 1_000_000),
    "merchants": ("an integer in [1, 100000]", lambda v: _is_int(v) and 1 <= v <= 100_000),
    "zipf": ("a number in [0, 10]", lambda v: _is_number(v) and 0 <= v <= 10),
    "opening_cents": ("an integer in [0, 10^15]", lambda v: _is_int(v) and 0 <= v <= 10**15),
    "cross_cell_ratio": ("a share in [0, 1]", lambda v: _is_number(v) and 0 <= v <= 1),
    "misroute_ratio": ("a share in [0, 1]", lambda v: _is_number(v) and 0 <= v <= 1),
    "mutations": (
        "a list of bug names",
        lambda v: isinstance(v, str) or (isinstance(v, list) and all(_is_str(n) for n in v)),
    ),
}


@dataclass
class TestResult:
    """What a run produced: enough to write a store folder and to judge it."""

    __test__ = False

    spec: TestSpec
    schedule: Schedule
    history: list[Event]
    verdicts: dict[str, Verdict]
    judged: dict[str, Judgement]
    valid: Validity
    digest: str  # the simulator's trace digest ("" on real backends)
    end_ms: float
    timeline: list[tuple[float, str, str]]
    node_logs: dict[str, list[str]]  # node id -> its trace lines
    summary: dict[str, Any]  # the stage's figures (TPS, latency, errors)
    # Who ran it: "test" (the harness, replayable exactly on the simulator),
    # "tui" (a live session saved: its key presses are not a spec to rerun).
    origin: str = "test"
    # Wall seconds per phase (simulation, checks, store), for the closing
    # `time:` line (checks.harness.timing); the CLI adds the folder's writing.
    timing_s: dict[str, float] = field(default_factory=dict)
    # history.jsonl's text, when the runner had it written while the checkers
    # ran in other processes (None: the store writes it from `history`).
    history_jsonl: str | None = None
    # The report's throughput and latency plots (a base64 PNG), drawn then
    # too: they show the history, not the verdicts (None: the report draws them).
    report_plots_png: str | None = None
    # The report's timeline, drawn then as well, as it is when no verdict
    # dates a violation (None, or a violation to mark: the report draws it).
    report_timeline_svg: str | None = None

    @property
    def exit_code(self) -> int:
        """0 valid, 1 invalid, 2 unknown (the CI contract of `d11 test`)."""
        if self.valid == "unknown":
            return 2
        return 0 if self.valid else 1


def validate(spec: TestSpec) -> TestSpec:
    """Check a spec before anything runs; returns it with nemeses normalized."""
    if spec.backend not in BACKENDS:
        raise HarnessError(f"unknown backend {spec.backend!r} (known: {', '.join(BACKENDS)})")
    if spec.workload not in WORKLOADS:
        known = ", ".join(WORKLOADS)
        raise HarnessError(f"unknown workload {spec.workload!r} (known: {known})")
    if not 0 < spec.time_s <= 600:
        raise HarnessError(f"--time must be in (0, 600] seconds, not {spec.time_s}")
    for name in ("interval_ms", "fault_ms"):
        value = getattr(spec, name)
        if not (_is_number(value) and 0 < value <= 600_000):
            raise HarnessError(f"{name} must be in (0, 600000] ms, not {value}")
    for knob, value in spec.extra.items():
        what, ok = _EXTRA_KNOBS.get(knob, _OTHER_KNOB)
        if not ok(value):
            raise HarnessError(f"extra {knob} must be {what}, not {_shown(value)}")
    try:
        nemeses = parse_nemeses(list(spec.nemeses))
    except ScheduleError as exc:
        raise HarnessError(str(exc)) from None
    if spec.scenario and nemeses:
        raise HarnessError(f"scenario {spec.scenario!r} is a chapter's own run: with no nemeses")
    return replace(spec, nemeses=nemeses)


def scenario_of_faults(kinds: Iterable[str]) -> str | None:
    """The chapter scenario a run with faults of these kinds is judged as, if any.

    A chapter declares what each of its scenarios shows (the naive transfer
    breaks the bank under a crash; async replication loses payments when a
    city is cut off); a run with the same kind of faults expects the same:
    "crash" when a fault crashes a node (a nemesis's kill or lost unsynced
    writes, a crash action), else "partition" when one cuts links; None for
    neither. `d11 test` asks it of a spec's nemeses, the TUI of what a person did.
    """
    kinds = set(kinds)
    if kinds & {"kill", "lose-unsynced", "crash"}:
        return "crash"
    if any(k.startswith(("partition", "isolate")) for k in kinds):
        return "partition"
    return None


def expectation_scenario(spec: TestSpec) -> str:
    """The chapter scenario whose expectations fit this test: its faults', else its workload's."""
    by_faults = scenario_of_faults(spec.nemeses)
    if by_faults is not None:
        return by_faults
    return WORKLOADS[spec.workload] if spec.workload != "saturate" else "steady"


def stage_options(spec: TestSpec) -> tuple[StageContract, Any]:
    """The spec's stage and its validated options (HarnessError, one line, if bad).

    The stage comes from the resolver the program's top installed
    (`checks.harness.contract.use_stages`): the harness never names a chapter.
    """
    try:
        stage = stage_named(spec.chapter)
        options = stage.options(
            seed=spec.seed,
            variant=spec.variant,
            shards=spec.shards,
            cells=spec.cells,
            duration_s=spec.time_s,
            scale=spec.scale,
            extra=dict(spec.extra),
        )
        if spec.scenario and spec.scenario not in stage.scenarios:
            known = ", ".join(stage.scenarios)
            raise StageError(f"{stage.id} has no scenario {spec.scenario!r} (known: {known})")
    except StageError as exc:
        raise HarnessError(str(exc)) from None
    return stage, options


def fault_targets(dep: DeploymentContract) -> Targets:
    """Every node but the clients: they are the observers whose history is judged."""
    clients = set(dep.roles.get("client", []))
    nodes = [n for n in dep.rt.node_ids() if n not in clients]
    return Targets.from_topology(dep.topology, nodes)
