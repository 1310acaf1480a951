"""Nemeses: the faults a test injects, as concrete, replayable schedules.

A nemesis name (`partition-halves`, `kill`, `skew`, ...) says what kind of
fault to inject; a *schedule* says exactly which fault, on which nodes, when.
Schedules are concrete on purpose: a generated schedule written to a file
replays the same faults on the same nodes at the same times, and the hunter
can shrink one by dropping faults from its list.

Every fault is a pair of actions: a start (cut the network, kill a node) and
an end (heal it, restart the node), so at most the faults in flight overlap.
Every action that runs is recorded in the history as an `info` event of the
process "nemesis", which is how reports shade fault intervals.

The actions speak only the `reference.runtime.base.Backend` protocol, so one
schedule runs on the simulator, on real processes and on Docker.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from checks.history import NEMESIS
from reference.net import shapes

if TYPE_CHECKING:
    from reference.net.topology import Topology

__all__ = [
    "NEMESES",
    "Action",
    "Schedule",
    "ScheduleError",
    "Targets",
    "fault_actions",
    "heal_everything",
    "install",
    "parse_nemeses",
    "random_schedule",
]

SCHEDULE_VERSION = 1


class ScheduleError(ValueError):
    """A schedule or nemesis list that cannot be used; the message says why."""


# --8<-- [start:nemeses]
NEMESES: dict[str, str] = {
    "none": "no faults: the control run",
    "partition-halves": "split the nodes into two random halves",
    "partition-ring": "each node sees a majority, but no two see the same one",
    "partition-bridge": "two halves that only one node can talk across",
    "partition-one-way": "one random half cannot reach the other; replies still flow",
    "isolate-node": "cut one node off from everything",
    "isolate-cell": "cut one cell off from everything",
    "isolate-city": "cut one city (datacenter) off from everything",
    "kill": "SIGKILL a node (unsynced writes lost), restart it later",
    "pause": "freeze a node (SIGSTOP), thaw it later",
    "skew": "push a node's clock ahead or behind, and make it drift",
    "lose-unsynced": "crash a node and restart it at once: only synced writes survive",
    "loss": "drop a share of all messages",
    "duplicate": "deliver a share of all messages twice",
    "reorder": "let messages overtake each other",
}
# --8<-- [end:nemeses]

# Action ops and the params each must carry; the loader checks them.
_OP_PARAMS: dict[str, tuple[str, ...]] = {
    "partition": ("groups", "one_way"),
    "cut": ("links",),
    "isolate": ("target",),
    "heal": (),
    "crash": ("node",),
    "restart": ("node",),
    "pause": ("node",),
    "resume": ("node",),
    "skew": ("node", "skew_ms", "drift_ppm"),
    "net": ("loss", "duplicate", "reorder"),
}


@dataclass(frozen=True, slots=True)
class Action:
    """One thing the nemesis does at `at_ms`. `fault` names the fault it belongs to."""

    at_ms: float
    op: str
    params: dict[str, Any] = field(default_factory=dict)
    fault: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"at_ms": self.at_ms, "op": self.op, "fault": self.fault, **self.params}


@dataclass(frozen=True, slots=True)
class Targets:
    """What the nemesis may hit: node ids, and the cells and cities that hold them."""

    nodes: tuple[str, ...]
    cells: dict[str, tuple[str, ...]] = field(default_factory=dict)  # cell -> its nodes
    cities: dict[str, tuple[str, ...]] = field(default_factory=dict)  # city -> its nodes

    @classmethod
    def from_topology(cls, topology: Topology, nodes: Iterable[str]) -> Targets:
        """Targets from a `reference.net.topology.Topology`, limited to `nodes`."""
        chosen = tuple(sorted(nodes))
        allowed = set(chosen)

        def members(name: str) -> tuple[str, ...]:
            return tuple(n for n in topology.nodes_in(name) if n in allowed)

        cells = {c: members(c) for c in topology.cells()}
        cities = {c: members(c) for c in topology.cities()}
        return cls(
            nodes=chosen,
            cells={c: m for c, m in cells.items() if m},
            cities={c: m for c, m in cities.items() if m},
        )


@dataclass(frozen=True)
class Schedule:
    """A concrete list of actions, sorted by time."""

    actions: tuple[Action, ...]
    seed: int | None = None
    nemeses: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        times = [a.at_ms for a in self.actions]
        assert times == sorted(times), "a schedule's actions are sorted by time"

    def faults(self) -> list[str]:
        """The fault ids in order of their first action."""
        seen: dict[str, None] = {}
        for action in self.actions:
            seen.setdefault(action.fault, None)
        return list(seen)

    def without_faults(self, dropped: Iterable[str]) -> Schedule:
        """The same schedule minus every action of the dropped faults (for shrinking)."""
        gone = set(dropped)
        kept = tuple(a for a in self.actions if a.fault not in gone)
        return Schedule(kept, self.seed, self.nemeses)

    def intervals(self) -> list[tuple[float, float, str]]:
        """(start_ms, end_ms, fault) per fault, for shading in reports."""
        spans: dict[str, list[float]] = {}
        for action in self.actions:
            spans.setdefault(action.fault, []).append(action.at_ms)
        return [(min(t), max(t), f) for f, t in spans.items()]

    # -- files ----------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "version": SCHEDULE_VERSION,
            "seed": self.seed,
            "nemeses": list(self.nemeses),
            "actions": [a.to_json() for a in self.actions],
        }

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> Schedule:
        try:
            data = json.loads(Path(path).read_text())
        except OSError as exc:
            raise ScheduleError(f"{path}: cannot read: {exc.strerror}") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ScheduleError(f"{path}: not a JSON schedule: {exc}") from None
        return cls.from_json(data, source=str(path))

    @classmethod
    def from_json(cls, data: object, source: str = "schedule") -> Schedule:
        if not isinstance(data, dict) or not isinstance(data.get("actions"), list):
            raise ScheduleError(f"{source}: expected an object with an 'actions' list")
        if data.get("version", SCHEDULE_VERSION) != SCHEDULE_VERSION:
            raise ScheduleError(f"{source}: schedule version {data['version']!r} is not 1")
        actions = [
            _action_from_json(raw, f"{source}: action {i}") for i, raw in enumerate(data["actions"])
        ]
        actions.sort(key=lambda a: a.at_ms)
        seed = data.get("seed")
        if seed is not None and not isinstance(seed, int):
            raise ScheduleError(f"{source}: seed must be an integer")
        return cls(tuple(actions), seed, tuple(str(n) for n in data.get("nemeses", [])))


def _action_from_json(raw: object, where: str) -> Action:
    if not isinstance(raw, dict):
        raise ScheduleError(f"{where}: expected an object")
    op = raw.get("op")
    if op not in _OP_PARAMS:
        raise ScheduleError(f"{where}: unknown op {op!r} (known: {', '.join(_OP_PARAMS)})")
    at_ms = raw.get("at_ms")
    if not isinstance(at_ms, int | float) or isinstance(at_ms, bool) or at_ms < 0:
        raise ScheduleError(f"{where}: at_ms must be a number >= 0")
    missing = [p for p in _OP_PARAMS[op] if p not in raw]
    if missing:
        raise ScheduleError(f"{where}: op {op!r} needs {', '.join(missing)}")
    # Extra keys (a bridge's name, say) are kept: they explain, and do no harm.
    params = {k: v for k, v in raw.items() if k not in ("at_ms", "op", "fault")}
    if op == "cut" and not (
        isinstance(params["links"], list)
        and all(
            isinstance(x, list) and len(x) == 2 and all(isinstance(n, str) for n in x)
            for x in params["links"]
        )
    ):
        raise ScheduleError(f"{where}: links must be a list of [src, dst] node-id pairs")
    if op == "partition":
        groups = params["groups"]
        if not isinstance(groups, list) or not all(
            isinstance(g, list) and all(isinstance(n, str) for n in g) for g in groups
        ):
            raise ScheduleError(f"{where}: groups must be a list of lists of node ids")
    for name in ("node", "target"):
        if name in params and not isinstance(params[name], str):
            raise ScheduleError(f"{where}: {name} must be a string")
    return Action(float(at_ms), op, params, str(raw.get("fault", "")))


def parse_nemeses(spec: str | Sequence[str]) -> tuple[str, ...]:
    """`"kill,partition-halves"` -> ("kill", "partition-halves"); unknown names are an error."""
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [n.strip() for n in names if n.strip()]
    unknown = [n for n in names if n not in NEMESES]
    if unknown:
        raise ScheduleError(
            f"unknown nemesis {', '.join(map(repr, unknown))} (known: {', '.join(NEMESES)})"
        )
    return tuple(n for n in names if n != "none")


def fault_actions(
    name: str, rng: random.Random, targets: Targets
) -> tuple[tuple[str, dict], tuple[str, dict]] | None:
    """The (start, end) actions of one fault of kind `name`, targets chosen by `rng`."""
    nodes = list(targets.nodes)
    if name == "partition-halves" or name == "partition-one-way":
        if len(nodes) < 2:
            return None
        groups = [sorted(g) for g in shapes.random_halves(nodes, rng)]
        one_way = name == "partition-one-way"
        return ("partition", {"groups": groups, "one_way": one_way}), ("heal", {})
    if name == "partition-bridge":
        if len(nodes) < 3:
            return None
        left, bridge, right = shapes.bridge(nodes, rng)
        # Only the two halves are cut from each other: the bridge talks to both.
        links = [[a, b] for a in left for b in right] + [[b, a] for a in left for b in right]
        return ("cut", {"links": links, "bridge": bridge}), ("heal", {})
    if name == "partition-ring":
        if len(nodes) < 3:
            return None
        links = sorted(
            [src, dst] for src, dst in shapes.ring_cuts(shapes.majorities_ring(nodes, rng))
        )
        return ("cut", {"links": links}), ("heal", {})
    if name in ("isolate-node", "isolate-cell", "isolate-city"):
        pool = {
            "isolate-node": nodes,
            "isolate-cell": sorted(targets.cells),
            "isolate-city": sorted(targets.cities),
        }[name]
        if not pool:
            return None
        return ("isolate", {"target": rng.choice(pool)}), ("heal", {})
    if name in ("kill", "lose-unsynced"):
        if not nodes:
            return None
        node = rng.choice(nodes)
        return ("crash", {"node": node}), ("restart", {"node": node})
    if name == "pause":
        if not nodes:
            return None
        node = rng.choice(nodes)
        return ("pause", {"node": node}), ("resume", {"node": node})
    if name == "skew":
        if not nodes:
            return None
        node = rng.choice(nodes)
        skew_ms = rng.choice([-1, 1]) * rng.choice([5.0, 50.0, 500.0])
        drift_ppm = rng.choice([0.0, 100.0, 1000.0])
        reset = {"node": node, "skew_ms": 0.0, "drift_ppm": 0.0}
        return ("skew", {"node": node, "skew_ms": skew_ms, "drift_ppm": drift_ppm}), ("skew", reset)
    if name in ("loss", "duplicate", "reorder"):
        rates = {"loss": 0.0, "duplicate": 0.0, "reorder": 0.0}
        rates[name] = rng.choice([0.05, 0.2, 0.5])
        return ("net", rates), ("net", {"loss": 0.0, "duplicate": 0.0, "reorder": 0.0})
    raise ScheduleError(f"unknown nemesis {name!r}")


def random_schedule(
    nemeses: Sequence[str],
    targets: Targets,
    *,
    seed: int,
    start_ms: float,
    end_ms: float,
    interval_ms: float = 1000.0,
    fault_ms: float = 1000.0,
    max_faults: int = 64,
) -> Schedule:
    """Faults of the given kinds, one after another from `start_ms` to `end_ms`.

    Each fault lasts `fault_ms` (±50%) and is followed by `interval_ms` (±50%)
    of calm, so the system gets a chance to recover between faults; a fault
    whose end would fall after `end_ms` is not started.
    """
    assert end_ms >= start_ms, "a schedule ends after it starts"
    assert interval_ms > 0 and fault_ms > 0
    names = [n for n in nemeses if n != "none"]
    rng = random.Random(f"nemesis:{seed}")
    actions: list[Action] = []
    t_ms = start_ms + rng.uniform(0.5, 1.5) * interval_ms / 2
    while names and len(actions) < 2 * max_faults:
        duration_ms = rng.uniform(0.5, 1.5) * fault_ms
        if t_ms + duration_ms > end_ms:
            break
        name = rng.choice(names)
        pair = fault_actions(name, rng, targets)
        if pair is not None:
            fault_id = f"f{len(actions) // 2 + 1}"
            (start_op, start_params), (end_op, end_params) = pair
            # lose-unsynced is a crash with an immediate restart: the point is
            # what the disk kept, not how long the node was gone.
            end_at = t_ms + (1.0 if name == "lose-unsynced" else duration_ms)
            actions.append(Action(round(t_ms, 3), start_op, start_params, fault_id))
            actions.append(Action(round(end_at, 3), end_op, end_params, fault_id))
            t_ms = end_at
        t_ms += rng.uniform(0.5, 1.5) * interval_ms
    actions.sort(key=lambda a: a.at_ms)
    return Schedule(tuple(actions), seed, tuple(nemeses))


class FaultLinks(Protocol):
    """What the nemesis does to a runtime's network."""

    def partition(self, groups: Iterable[Iterable[str]], one_way: bool = False) -> None: ...
    def cut(self, src: Iterable[str], dst: Iterable[str], one_way: bool = False) -> None: ...
    def isolate(self, name: str) -> None: ...
    def heal(self) -> None: ...
    def set_message_faults(self, *, loss: float, duplicate: float, reorder: float) -> None: ...


class FaultTarget(Protocol):
    """What the nemesis needs of a runtime (the simulator, processes, Docker): its
    clock and timers, its nodes' states, and its network."""

    @property
    def now_ms(self) -> float: ...
    @property
    def net(self) -> FaultLinks: ...
    def call_at(self, t_ms: float, fn: Callable[[], None]) -> object: ...  # (a timer handle)
    def status(self, node_id: str) -> str: ...
    def crash(self, node_id: str) -> None: ...
    def restart(self, node_id: str) -> None: ...
    def pause(self, node_id: str) -> None: ...
    def resume(self, node_id: str) -> None: ...
    def set_clock(self, node_id: str, *, skew_ms: float, drift_ppm: float) -> None: ...


def install(
    schedule: Schedule,
    backend: FaultTarget,
    record: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Arrange for every action of `schedule` to run on `backend` at its time.

    `record` receives one history event per action (process "nemesis", type
    "info"), so the history shows each fault where it happened.
    """
    for action in schedule.actions:
        backend.call_at(action.at_ms, _runner(action, backend, record))


def _runner(
    action: Action, backend: FaultTarget, record: Callable[[dict[str, Any]], None] | None
) -> Callable[[], None]:
    def run() -> None:
        apply_action(action, backend)
        if record is not None:
            value = {"fault": action.fault, **action.params}
            record(
                {
                    "type": "info",
                    "process": NEMESIS,
                    "f": action.op,
                    "value": value,
                    "time_ms": backend.now_ms,
                }
            )

    return run


def apply_action(action: Action, backend: FaultTarget) -> None:
    """Do one action now. Node faults on a node in the wrong state are skipped."""
    op, p = action.op, action.params
    if op == "partition":
        backend.net.partition([set(g) for g in p["groups"]], one_way=bool(p["one_way"]))
    elif op == "cut":
        for src, dst in p["links"]:
            backend.net.cut([src], [dst], one_way=True)
    elif op == "isolate":
        backend.net.isolate(p["target"])
    elif op == "heal":
        backend.net.heal()
    elif op == "crash":
        if backend.status(p["node"]) != "crashed":
            backend.crash(p["node"])
    elif op == "restart":
        if backend.status(p["node"]) == "crashed":
            backend.restart(p["node"])
    elif op == "pause":
        if backend.status(p["node"]) == "up":
            backend.pause(p["node"])
    elif op == "resume":
        if backend.status(p["node"]) == "paused":
            backend.resume(p["node"])
    elif op == "skew":
        backend.set_clock(p["node"], skew_ms=float(p["skew_ms"]), drift_ppm=float(p["drift_ppm"]))
    elif op == "net":
        backend.net.set_message_faults(
            loss=float(p["loss"]), duplicate=float(p["duplicate"]), reorder=float(p["reorder"])
        )
    else:  # pragma: no cover - the loader admits only known ops
        raise ScheduleError(f"unknown op {op!r}")


def heal_everything(backend: FaultTarget, nodes: Iterable[str]) -> None:
    """End every fault: links healed, nodes resumed and restarted, clocks and rates reset."""
    backend.net.heal()  # links only: message faults are reset on their own
    backend.net.set_message_faults(loss=0.0, duplicate=0.0, reorder=0.0)
    for node in nodes:
        status = backend.status(node)
        if status == "paused":
            backend.resume(node)
        elif status == "crashed":
            backend.restart(node)
        backend.set_clock(node, skew_ms=0.0, drift_ppm=0.0)
