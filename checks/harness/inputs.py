"""The harness's input files, checked at the edge: test.json and schedule.json.

A schedule is concrete: it names the nodes, cells and cities it hits. One
that names a node the stage does not have, a partition whose groups overlap,
or a clock skew of "abc" used to load fine and crash the run halfway. Here
every action is checked against the stage it will run on, before anything
runs, so `d11 replay`, `d11 test --schedule` and `d11 tui --attach` refuse
such a file with one line that names it and says what is wrong.

    load_spec(data, source)          test.json's "spec": a TestSpec, typed and in range
    read_schedule(path)              a schedule file, every field of its type
    load_schedule(path, spec)        read_schedule, then checked against the spec's stage
    check_schedule(schedule, spec)   the stage check, for a schedule already in memory
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, TypeGuard

from checks.harness.runner import (
    HarnessError,
    TestSpec,
    build_stage,
    fault_targets,
    stage_options,
    validate,
)
from checks.nemesis import NEMESES, Action, Schedule, ScheduleError

__all__ = ["check_schedule", "load_schedule", "load_spec", "read_schedule"]

AT_MS_MAX = 86_400_000.0  # a day of simulated time: no run is longer
SKEW_MS_MAX = 3_600_000.0  # an hour ahead or behind
DRIFT_PPM_MAX = 1_000_000.0
LINKS_MAX = 100_000  # links one cut may name
ACTIONS_MAX = 10_000  # actions in one schedule (a generated one holds at most 128)


def load_spec(data: Any, source: str) -> TestSpec:
    """A spec from JSON, typed, validated and buildable (its chapter, variant, sizes exist)."""
    try:
        spec = validate(TestSpec.from_json(data))
        stage_options(spec)
    except HarnessError as exc:
        raise HarnessError(f"{source}: {exc}") from None
    return spec


def load_schedule(path: Path, spec: TestSpec) -> Schedule:
    """Read a schedule file and check it against the stage `spec` builds."""
    schedule = read_schedule(path)
    check_schedule(schedule, spec, str(path))
    return schedule


def read_schedule(path: Path) -> Schedule:
    """A schedule file whose every field has its type (HarnessError naming the file if not)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise HarnessError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        why = "nested too deep" if isinstance(exc, RecursionError) else str(exc)
        raise HarnessError(f"{path}: not a JSON schedule: {why}") from None
    problem = _raw_problem(data)
    if problem:
        raise HarnessError(f"{path}: {problem}")
    try:
        return Schedule.from_json(data, source=str(path))
    except ScheduleError as exc:
        raise HarnessError(str(exc)) from None


def _raw_problem(data: Any) -> str:
    """What is wrong with a schedule's JSON before it becomes a Schedule, or ""."""
    if not isinstance(data, dict) or not isinstance(data.get("actions"), list):
        return "expected an object with an 'actions' list"
    version = data.get("version", 1)
    if type(version) is not int or version != 1:
        return f"schedule version {_short(version)} is not 1"
    seed = data.get("seed")
    if seed is not None and not (type(seed) is int and abs(seed) < 2**63):
        return f"seed must be an integer or null, not {_short(seed)}"
    nemeses = data.get("nemeses", [])
    if not (isinstance(nemeses, list) and all(isinstance(n, str) for n in nemeses)):
        return f"nemeses must be a list of names, not {_short(nemeses)}"
    actions = data["actions"]
    if len(actions) > ACTIONS_MAX:
        return f"{len(actions)} actions: at most {ACTIONS_MAX}"
    for i, raw in enumerate(actions):
        if not isinstance(raw, dict):
            return f"action {i}: expected an object"
        at_ms = raw.get("at_ms")
        if not (_number(at_ms) and 0 <= at_ms <= AT_MS_MAX):
            return f"action {i}: at_ms must be a finite time in [0, {AT_MS_MAX:g}] ms"
        if not isinstance(raw.get("fault", ""), str):
            return f"action {i}: fault must be a name (a string)"
    return ""


def check_schedule(schedule: Schedule, spec: TestSpec, source: str = "schedule") -> None:
    """HarnessError naming the first action that cannot run on `spec`'s stage."""
    unknown = [n for n in schedule.nemeses if n not in NEMESES]
    if unknown:
        names = ", ".join(NEMESES)
        raise HarnessError(f"{source}: unknown nemesis {unknown[0]!r} (known: {names})")
    if not schedule.actions:
        return
    rt, dep = build_stage(spec)  # built, never started: only its names are read
    known = _Names(dep.topology, set(rt.node_ids()), set(fault_targets(dep).nodes))
    for i, action in enumerate(schedule.actions):
        problem = _problem(action, known)
        if problem:
            where = f"{source}: action {i} ({action.op} at {action.at_ms:g} ms)"
            raise HarnessError(f"{where}: {problem}")


class _Names:
    """What a schedule may name on one stage: nodes, and the cells and cities holding them."""

    def __init__(self, topology: Any, nodes: set[str], servers: set[str]) -> None:
        self.topology = topology
        self.nodes = nodes
        self.servers = servers  # what a node fault may hit: every node but the clients

    def expand(self, name: Any) -> set[str] | None:
        """The nodes a node, cell or city name stands for; None if it names nothing."""
        if not isinstance(name, str) or self.topology.kind(name) is None:
            return None
        return set(self.topology.nodes_in(name))


def _problem(action: Action, names: _Names) -> str:
    """What is wrong with one action, or "" if it can run."""
    if not (_number(action.at_ms) and 0 <= action.at_ms <= AT_MS_MAX):
        return f"at_ms must be a finite time in [0, {AT_MS_MAX:g}] ms"
    p, op = action.params, action.op
    if op in ("crash", "restart", "pause", "resume", "skew"):
        if p["node"] not in names.nodes:
            return f"no node {_short(p['node'])} in this stage"
        if p["node"] not in names.servers:
            # A restarted client would reuse its process ids: the history breaks.
            return f"{p['node']} is a client: it records the history, a fault must hit a server"
    if op == "skew":
        for key, bound in (("skew_ms", SKEW_MS_MAX), ("drift_ppm", DRIFT_PPM_MAX)):
            if not (_number(p[key]) and abs(p[key]) <= bound):
                return f"{key} must be a number in [-{bound:g}, {bound:g}], not {_short(p[key])}"
    if op == "net":
        for key in ("loss", "duplicate", "reorder"):
            if not (_number(p[key]) and 0 <= p[key] <= 1):
                return f"{key} must be a share in [0, 1], not {_short(p[key])}"
    if op == "isolate" and names.expand(p["target"]) is None:
        return f"{_short(p['target'])} is no node, cell or city of this stage"
    if op == "partition":
        return _partition_problem(p, names)
    if op == "cut":
        links = p["links"]
        if len(links) > LINKS_MAX:
            return f"{len(links)} links: at most {LINKS_MAX}"
        for src, dst in links:
            for name in (src, dst):
                if names.expand(name) is None:
                    return f"{_short(name)} is no node, cell or city of this stage"
    return ""


def _partition_problem(p: dict[str, Any], names: _Names) -> str:
    """A partition's shape: groups of known names, no node in two groups."""
    if not isinstance(p["one_way"], bool):
        return f"one_way must be true or false, not {_short(p['one_way'])}"
    groups = p["groups"]
    if len(groups) < 2:
        return "a partition needs at least two groups"
    seen: set[str] = set()
    for group in groups:
        members: set[str] = set()
        for name in group:
            nodes = names.expand(name)
            if nodes is None:
                return f"{_short(name)} is no node, cell or city of this stage"
            members |= nodes
        if members & seen:
            return f"{', '.join(sorted(members & seen)[:3])} in two groups"
        seen |= members
    return ""


def _number(value: object) -> TypeGuard[int | float]:
    """A finite number (true and false are not numbers; nor is a 400-digit integer)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) if isinstance(value, float) else abs(value) < 2**63


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
