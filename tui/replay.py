"""A stored run, replayed: `d11 tui --attach STORE_FOLDER`.

A store folder written by `d11 test` (or by the TUI's save) holds the whole
history, nemesis events included. A `Replay` moves a cursor through it, back
and forth, and builds the same `Frame`s a live session does: traffic up to
the cursor, operations in flight at it, the faults active at it (replayed
from the nemesis events), the bank check on the history up to it, and the
verdicts the harness wrote at the end of the run. So a failure found in CI
can be watched, paused at the moment it happens.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from checks.history import NEMESIS, Event
from tui.meter import Meter
from tui.model import CheckView, EventLine, Frame, NodeView, severity_of
from tui.session import SPEEDS, _cut_lines, _cut_off, _cut_state, _describe, track_leader
from tui.views.replayed import replay_panel

__all__ = ["Replay", "ReplayError"]

EVENTS_SHOWN = 300
# A node log's line (`checks.harness.runner.trace_logs`): time, kind, then key=value
# fields sorted by key; those that say who leads are plain values, without spaces.
_TRACE_LINE = re.compile(r"^\s*(-?\d+(?:\.\d+)?) (\S+)(.*)$")
_LEADER_FIELD = re.compile(r"(?:^|\s)(leader|group|shard)=(\S+)")
_LEADERSHIP_WORDS = ("leader", "crash", "restart", "step_down", "stepdown", "demote", "follower")


class ReplayError(ValueError):
    """A store folder that cannot be replayed; one line for the user."""


class _Cuts:
    """The links a replayed partition cut, answering `is_cut` like SimNet."""

    def __init__(self, topology: Any) -> None:
        self.topology = topology
        self.pairs: set[tuple[str, str]] = set()

    def expand(self, names: list[str]) -> set[str]:
        out: set[str] = set()
        for name in names:
            if self.topology.has_node(name):
                out.add(name)
            else:
                try:
                    out.update(self.topology.nodes_in(name))
                except (KeyError, ValueError):
                    continue
        return out

    def is_cut(self, src: str, dst: str) -> bool:
        return (src, dst) in self.pairs


class Replay:
    """A cursor over a stored run; `frame()` shows the run as it was at the cursor."""

    def __init__(self, folder: Path) -> None:
        from checks.harness.runner import HarnessError
        from checks.harness.store import load_store

        try:
            self.run = load_store(Path(folder))
        except HarnessError as exc:
            raise ReplayError(str(exc)) from None
        spec = self.run.spec
        self.lock = threading.RLock()
        self.history: list[Event] = self.run.history
        if not self.history:
            raise ReplayError(f"{folder}: the history is empty: nothing to replay")
        self.topology, self.roles, self.title = _topology(spec)
        self._by_cell = bool(self.roles.get("cell"))
        self.config = spec
        self.end_ms = max(e.time_ms for e in self.history)
        self.at_ms = 0.0
        self.paused = True  # a replay starts still: space plays it
        self.speed = 1.0
        self.message = f"replaying {folder}: ← → move 1 s, shift 10 s, space plays"
        self._initial = next(
            (e.value for e in self.history if e.f == "init" and e.type == "ok"), None
        )
        self._leadership = _leadership_events(Path(folder) / "nodes")

    # -- the cursor ------------------------------------------------------------------
    def scrub(self, delta_ms: float) -> float:
        return self.scrub_to(self.at_ms + delta_ms if delta_ms else self.at_ms)

    def scrub_to(self, at_ms: float) -> float:
        """Move the cursor to `at_ms` (negative: the end of the run)."""
        target = self.end_ms if at_ms < 0 else at_ms
        self.at_ms = max(0.0, min(self.end_ms, target))
        return self.at_ms

    def advance(self, wall_s: float, budget_s: float = 0.06) -> float:
        if self.paused:
            return 0.0
        before = self.at_ms
        self.scrub_to(self.at_ms + min(wall_s, 0.25) * self.speed * 1000.0)
        if self.at_ms >= self.end_ms:
            self.paused = True
            self.message = "end of the stored run: ← to go back, home for the start"
        return self.at_ms - before

    def step(self, sim_ms: float = 100.0) -> None:
        self.scrub(sim_ms)

    def pause_and_step(self, sim_ms: float = 100.0) -> None:
        self.paused = True
        self.scrub(sim_ms)

    def toggle_pause(self) -> bool:
        self.paused = not self.paused
        if not self.paused and self.at_ms >= self.end_ms:
            self.at_ms = 0.0
        return self.paused

    def set_speed(self, direction: int) -> float:
        nearest = min(range(len(SPEEDS)), key=lambda i: abs(SPEEDS[i] - self.speed))
        self.speed = SPEEDS[max(0, min(len(SPEEDS) - 1, nearest + direction))]
        self.message = f"replay speed x{self.speed:g}"
        return self.speed

    # -- the run at the cursor -------------------------------------------------------
    def upto(self) -> list[Event]:
        return [e for e in self.history if e.time_ms <= self.at_ms]

    def frame(self, points: int = 120) -> Frame:
        events = self.upto()
        meter = Meter(self._cell_of)
        meter.feed(events)
        status, skews, cuts, lines = self._faults(events)
        nodes = [
            n for cell_nodes in self._layout().values() for ns in cell_nodes.values() for n in ns
        ]
        cut_state = _cut_state(cuts, nodes)
        leaders = self.leaders()
        views = [
            NodeView(
                id=n,
                city=self.topology.city_of(n),
                cell=self.topology.cell_of(n),
                role=self._role(n),
                status=status.get(n, "up"),
                cut=cut_state.get(n, ""),
                skew_ms=skews.get(n, 0.0),
                load_tps=self._served(events, n),
                load_what="dec",  # the ok replies that name it (the history has no more)
                leader=n in leaders,
            )
            for n in nodes
        ]
        cut_lines = _cut_lines(cuts, self.topology)
        active = [f"{n} {s}" for n, s in status.items() if s != "up"]
        active += [f"{n} clock {v:+.0f} ms" for n, v in skews.items() if v]
        spec = self.run.spec
        return Frame(
            mode="replay",
            chapter=spec.chapter,
            title=self.title,
            scenario=spec.scenario  # a `d11 run` folder: the chapter's own scenario
            or f"{spec.workload} + {'+'.join(spec.nemeses) or 'no faults'}",
            variant=spec.variant,
            seed=spec.seed,
            now_ms=self.at_ms,
            speed=self.speed,
            speed_actual=self.speed,
            paused=self.paused,
            profile=spec.workload,
            scale=float(self._scale()),
            nodes=views,
            layout=self._layout(),
            cuts=cut_lines,
            **meter.traffic_fields(self.at_ms, points, by_cell=self._by_cell),
            events=lines[-EVENTS_SHOWN:],
            events_reset=True,
            checks=self._checks(events),
            chapter_panel=replay_panel(spec.chapter, events, self.at_ms),
            message=self.message,
            faults_active=active + cut_lines,
            cut_off=_cut_off(cuts, self.topology),
            replay_end_ms=self.end_ms,
        )

    def leaders(self) -> set[str]:
        """Who believed it led at the cursor, from the stored node logs' trace lines
        (the history has no leaders; the live view reads the same trace)."""
        leaders: set[str] = set()
        leader_of: dict[str, str] = {}
        for time_ms, node, kind, fields in self._leadership:
            if time_ms > self.at_ms:
                break
            track_leader(leaders, leader_of, kind, node, fields)
        return leaders

    def _faults(
        self, events: list[Event]
    ) -> tuple[dict[str, str], dict[str, float], _Cuts, list[EventLine]]:
        """Replay the nemesis events up to the cursor: node states, skews, cuts, log lines."""
        status: dict[str, str] = {}
        skews: dict[str, float] = {}
        cuts = _Cuts(self.topology)
        everyone = set(self.topology.nodes())
        lines: list[EventLine] = []
        for ev in events:
            if ev.process != NEMESIS:
                continue
            try:
                line = self._fault(ev, status, skews, cuts, everyone)
            except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
                # A stored event of a shape no nemesis writes: shown, not obeyed.
                why = f"{type(exc).__name__}: {exc}"[:80]
                detail = f"unreadable {str(ev.f)[:20]} event ({why}): {_short_repr(ev.value)}"
                line = EventLine(0, ev.time_ms, "unreadable", "", detail, "warn")
            lines.append(replace(line, seq=len(lines) + 1))
        return status, skews, cuts, lines

    def _fault(
        self,
        ev: Event,
        status: dict[str, str],
        skews: dict[str, float],
        cuts: _Cuts,
        everyone: set[str],
    ) -> EventLine:
        """Apply one nemesis event to the replayed state; its log line."""
        op, v = ev.f, ev.value
        p: dict[str, Any] = v if isinstance(v, dict) else {}
        text = str(v) if not isinstance(v, dict) else ""
        nodes = [str(p["node"])] if "node" in p else _nodes_of(text, everyone)
        if op == "crash":
            status.update({n: "crashed" for n in nodes})
        elif op == "restart":
            status.update({n: "up" for n in nodes})
        elif op == "pause":
            status.update({n: "paused" for n in nodes})
        elif op == "resume":
            status.update({n: "up" for n in nodes})
        elif op == "skew" and "node" in p:
            skew_ms = float(p.get("skew_ms", 0.0))
            if not math.isfinite(skew_ms):
                raise ValueError(f"skew_ms {skew_ms} is not finite")
            skews[str(p["node"])] = skew_ms
        elif op == "isolate" and "target" in p:
            inside = cuts.expand([str(p["target"])])
            for a in inside:
                for b in everyone - inside:
                    cuts.pairs |= {(a, b), (b, a)}
        elif op == "partition":
            groups = p.get("groups") or [g.split(",") for g in text.split(" | ") if g]
            expanded = [cuts.expand([str(x) for x in g]) for g in groups]
            for i, ga in enumerate(expanded):
                for gb in expanded[i + 1 :]:
                    for a in ga:
                        for b in gb:
                            cuts.pairs.add((a, b))
                            if not p.get("one_way"):
                                cuts.pairs.add((b, a))
        elif op == "cut" and "links" in p:
            cuts.pairs |= {(str(a), str(b)) for a, b in p["links"]}
        elif op in ("heal", "final-phase"):
            cuts.pairs.clear()
        detail = (
            _describe(op, p)
            if p and op in ("crash", "restart", "pause", "resume", "skew", "isolate", "heal")
            else text
        )
        if not detail and p:
            detail = ", ".join(f"{k}={val}" for k, val in p.items() if k != "fault")[:100]
        return EventLine(0, ev.time_ms, op, "", detail, severity_of(op))

    def _checks(self, events: list[Event]) -> list[CheckView]:
        views: list[CheckView] = []
        if isinstance(self._initial, dict):
            from checks.bank import check_bank

            try:
                total = sum(int(x) for x in self._initial.values())
                verdict = check_bank(events, total=total, accounts=sorted(self._initial))
                valid, summary = verdict.valid, verdict.summary
            except Exception as exc:  # a stored history no run writes: say so, keep scrubbing
                first = (str(exc).splitlines() or [""])[0][:160]
                valid, summary = "unknown", f"cannot check this history: {first}"
            views.append(
                CheckView("bank now", valid, summary, at_ms=self.at_ms, events=len(events))
            )
        for name, raw in sorted((self.run.verdicts or {}).items()):
            if not isinstance(raw, dict):
                continue
            expected = raw.get("expected") or {}
            views.append(
                CheckView(
                    name=f"{name} (end)",
                    valid=raw.get("valid", "unknown"),
                    summary=str(raw.get("summary", "")),
                    outcome=str(raw.get("outcome") or ""),
                    expected=str(expected.get("why", "")) if isinstance(expected, dict) else "",
                    at_ms=self.end_ms,
                    events=len(self.history),
                )
            )
        return views

    # -- placement ---------------------------------------------------------------------
    def _layout(self) -> dict[str, dict[str, list[str]]]:
        return {
            city: {cell: sorted(self.topology.nodes_in(cell)) for cell in self.topology.cells(city)}
            for city in self.topology.cities()
        }

    def _cell_of(self, node: str) -> str:
        """Goodput groups by LDC cell when the stage has cells, else by the store that served."""
        if not self.topology.has_node(node):
            return ""
        return self.topology.cell_of(node) if self._by_cell else node

    def _role(self, node: str) -> str:
        for role in ("client", "controller", "config", "replica", "shard", "gateway"):
            if node in self.roles.get(role, []):
                return role
        return "client" if node.startswith("client") else ""

    def _served(self, events: list[Event], node: str) -> float:
        since = self.at_ms - 1000.0
        return float(
            sum(
                1
                for e in reversed(events[-5_000:])
                if e.type == "ok" and e.time_ms > since and e.extra.get("node") == node
            )
        )

    def _scale(self) -> float:
        try:
            from chapters import get_stage

            stage = get_stage(self.run.spec.chapter)
            return stage.options(variant=self.run.spec.variant).scale
        except Exception:
            return 0.0


def _leadership_events(logs: Path) -> list[tuple[float, str, str, dict[str, str]]]:
    """(time ms, node, kind, fields) of the node logs' lines that may change who leads,
    in time order; none for a folder without logs (or a log that cannot be read)."""
    found: list[tuple[float, str, str, dict[str, str]]] = []
    for log in sorted(logs.glob("*.log")) if logs.is_dir() else []:
        node = log.stem
        try:
            text = log.read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            match = _TRACE_LINE.match(line)
            if match is None or not any(w in match[2].lower() for w in _LEADERSHIP_WORDS):
                continue
            fields = dict(_LEADER_FIELD.findall(match[3]))
            found.append((float(match[1]), node, match[2], fields))
    found.sort(key=lambda e: e[0])
    return found


def _topology(spec: Any) -> tuple[Any, dict[str, list[str]], str]:
    """The stage's topology and roles, rebuilt from the spec (no runtime needed)."""
    from chapters import get_stage
    from chapters.stage import StageError
    from reference.runtime.sim import SimRuntime

    try:
        stage = get_stage(spec.chapter)
        options = stage.options(
            seed=spec.seed, variant=spec.variant, shards=spec.shards, cells=spec.cells,
            extra=dict(spec.extra),
        )  # fmt: skip
    except StageError as exc:
        raise ReplayError(f"cannot rebuild the stage of this run: {exc}") from None
    # Build (never start) the stage on a throwaway runtime, to learn its roles.
    rt = SimRuntime(topology=stage.topology(options), seed=spec.seed)
    dep = stage.build(rt, options)
    return dep.topology, {k: list(v) for k, v in dep.roles.items()}, stage.title


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _nodes_of(text: str, everyone: set[str]) -> list[str]:
    """Node ids named in a note's text ("monolith, s2: the crash scenario")."""
    head = text.split(":")[0]
    return [n.strip() for n in head.split(",") if n.strip() in everyone]
