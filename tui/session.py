"""One live run of a chapter's stage on the simulator, driven by a person.

A `Session` owns the stage, its `SimRuntime` and its `Deployment`, and knows
how to move simulated time forward a slice at a time, so the interface that
drives it never waits long. It offers the controls a workshop wants (the
midnight spike, kill and restart, pause, clock skew, cut a city off and heal,
speed) and turns the run into `tui.model.Frame`s for the panels.

It never ends on its own: traffic is planned in rolling windows, re-armed
before each window runs out, and everything it keeps for the screen lives in
rings. Every action a person takes goes into the recorded history as a
nemesis event (`checks.nemesis` vocabulary), so a saved run shows it.

The Session is not thread-safe by itself; the app holds `session.lock`
around every call (the simulation runs in a worker thread). The checkers run
in another thread on a copy of the history taken under the lock; a check that
reads live node state (chapter 4 audits each ledger replica's books) is found
out by the runtime view the stage was built on (`StateGuard`) and runs under
the lock instead, where nothing moves while it reads.
"""

from __future__ import annotations

import contextlib
import functools
import json
import textwrap
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from checks.history import NEMESIS, Event
from checks.nemesis import Action, apply_action
from reference.ledger.front import LedgerFront
from tui.fault_words import (
    _cut_lines,
    _cut_off,
    _cut_state,
    _describe,
    _trace_detail,
    control_plane_cut_words,
)
from tui.live_checks import (
    JUDGED,
    LIVE_CHECKS,
    WHOLE_RUN_CHECKS,
    LiveWalletLin,
    base_name,
    judge_history,
    not_final,
    recent_window,
    saved_views,
)
from tui.meter import Meter
from tui.model import CheckView, EventLine, Frame, NodeView, severity_of, wanted_event
from tui.session_config import SPEEDS, SessionConfig, SessionError
from tui.state_guard import ReadsLiveState, StateGuard
from tui.views import ViewError, view_for

if TYPE_CHECKING:
    from chapters.stage import Check
    from checks.harness.runner import TestResult, TestSpec
    from checks.verdict import Verdict
    from reference.telemetry import TraceEvent

__all__ = [
    "SPEEDS",
    "LiveWalletLin",
    "ReadsLiveState",
    "Session",
    "SessionConfig",
    "SessionError",
    "StateGuard",
    "_cut_lines",
    "_cut_off",
    "_cut_state",
    "_describe",
    "judge_history",
    "recent_window",
    "replay_saved",
]

WINDOW_MS = 4_000.0  # traffic is planned this far ahead, window by window
REARM_LEAD_MS = 1_000.0  # the next window is planned this long before the current one ends
WARMUP_MS = 200.0
SPIKE_WINDOW_MS = 8_000.0  # the midnight spike: one compressed stretch of the day
PLAN_AHEAD_MS = 1.0  # a control's traffic starts this long after the key (m, g)
SLICE_MS = 20.0  # simulated time per run_until call: the unit of interruption
TICK_WALL_S_MAX = 0.25  # a late tick never asks for more than this much wall time
STEP_MS = 100.0  # one press of "." when paused
SKEWS_MS: tuple[float, ...] = (0.0, 500.0, -500.0)
EVENTS_KEPT = 1_000
HISTORY_MAX = 1_000_000  # events kept in the live history before the oldest half goes
CHECK_EVENTS_MAX = 60_000  # the checkers judge at most this many recent events
LEDGER_EVENTS_MAX = 250_000  # beyond this the ledger check is too slow to run live
SCENARIO_FAULT_AT_MS = 1_600.0
PARTITION_MS = 1_000.0
RUNTIME_FAULT_KINDS = frozenset(
    {"crash", "restart", "pause", "resume", "clock", "partition", "heal", "exit"}
)

# The scenarios the session plays itself, with rolling traffic that never ends; any
# other scenario of a stage (ch5 consumer-lag, ch6 overload-3x ...) runs its own script.
SESSION_SCENARIOS = frozenset({"steady", "double11", "crash", "partition", "saturate"})
# What a node's "txns" counter counts, by its role (tui.model.LOAD_WHAT); a store's and
# anything else's are transactions ("txn"), a gateway's counter is "requests" ("req").
LOAD_UNIT = {"consumer": "msg", "producer": "pay", "front": "pay"}
CHECK_SUMMARY_MAX = 120  # characters of a verdict's summary in its event line

# The scenario a person's faults make the run look like, for the expectations.
_SCENARIO_OF_FAULT = {"crash": "crash", "isolate": "partition", "partition": "partition"}


Row = tuple[float, str, str]  # a timeline's (time_ms, kind, detail)


def _renamed(folder: Path, name: str) -> Path:
    """`folder` (ROOT/<spec's name>/<stamp>) moved to ROOT/`name`/<stamp>; the spec's
    folder removed if that left it empty. A stamp taken there already gets a suffix,
    as the store gives one."""
    base = folder.parent.parent / name
    if base == folder.parent:
        return folder
    base.mkdir(parents=True, exist_ok=True)
    target, n = base / folder.name, 1
    while target.exists():
        n += 1
        target = base / f"{folder.name}-{n}"
    folder.rename(target)
    with contextlib.suppress(OSError):  # other runs are in it
        folder.parent.rmdir()
    return target


def track_leader(
    leaders: set[str], leader_of: dict[str, str], kind: str, node: str, fields: Mapping[str, object]
) -> None:
    """Who believes it leads, from one trace event (`kind` at `node`): a `*leader*`
    event makes a node leader (of its `group` when the event names one); stepping
    down, a crash or a restart ends it. A deposed leader that has not heard yet
    still shows: that is what it believes, and what a split brain looks like.
    The live session feeds it the runtime's trace; a replay, the stored node logs."""
    kind = kind.lower()
    leader = str(fields.get("leader", node))
    if "leader" in kind and leader:
        group = fields.get("group", fields.get("shard"))
        if group is not None:
            old = leader_of.get(str(group))
            if old is not None:
                leaders.discard(old)
            leader_of[str(group)] = leader
        leaders.add(leader)
    elif kind in ("crash", "restart") or any(
        w in kind for w in ("step_down", "stepdown", "demote", "follower")
    ):
        leaders.discard(node)


class TimelineReader:
    """Which rows of a deployment's timeline the log has not shown yet.

    Not a cursor into the list: the capstone's timeline is its parts' merged and
    sorted by time, and a row dated before the last one read (chapter 6's panel
    dates a plan's switch flip when the gateway made it) goes in before the end.
    A cursor then read the row that moved past it a second time, and the new row
    never: `[` showed "degrade: flow rule on pay: 58 -> 46/s" twice, `j`'s heal
    three times. So rows are counted: the same row twice (same instant, kind
    and words) shows twice only if it is in the timeline twice.
    """

    def __init__(self) -> None:
        self._seen: Counter[Row] = Counter()
        self._length = 0  # the timeline's length when last read

    def new_rows(self, timeline: list[Row]) -> list[Row]:
        """Rows of `timeline` not returned before, in its order."""
        if len(timeline) == self._length:
            return []  # rows are only added (or cut from the front, which shortens it)
        self._length = len(timeline)
        this_read: Counter[Row] = Counter()
        fresh: list[Row] = []
        for row in timeline:
            this_read[row] += 1
            if this_read[row] > self._seen[row]:
                fresh.append(row)
        self._seen.update(fresh)
        return fresh

    def cut(self, timeline: list[Row]) -> None:
        """`timeline` lost rows from its front, all of them read."""
        self._length = len(timeline)


class Session:
    """A chapter's stage running on the simulator, with controls and frames."""

    def __init__(self, config: SessionConfig) -> None:
        from reference.runtime.sim import SimRuntime

        self.lock = threading.RLock()
        self.config = config
        self.stage, self.options = config.validate()
        self.rt = SimRuntime(topology=self.stage.topology(self.options), seed=config.seed)
        self._guard = StateGuard(self.rt)
        self.state_checks: set[str] = set()  # checks found reading node state: run locked
        self.live_checks: dict[str, Check] = {}  # name -> round by round
        self.dep = self.stage.build(self._guard, self.options)
        self.dep.scenario = config.scenario
        if config.scenario in SESSION_SCENARIOS:  # window after window, for hours: fresh
            for dep in (self.dep, *getattr(self.dep, "parts", {}).values()):  # buyers each
                if hasattr(dep, "rolling"):  # window, and merchants pay their takings back
                    dep.rolling = True  # (a stage's own script runs as `d11 run` does)
        for name, make in LIVE_CHECKS.get(self.stage.id, {}).items():
            if name in self.dep.checks:
                self.live_checks[name] = make(self.dep)
        self.topology = self.dep.topology
        self._by_cell = bool(self.dep.roles.get("cell"))
        self._node_order: list[str] = []  # node_order(), made on first use
        self._layout: dict[str, dict[str, list[str]]] = {}  # layout(), made on first use
        self._roles: dict[str, str] = {}  # role_of(), made on first use
        self.meter = Meter(self._cell_of)
        self.speed = config.speed
        self.paused = False
        self.speed_actual = 0.0
        self._achieved: deque[tuple[float, float]] = deque(maxlen=64)  # (wall s, sim ms)
        self.events: deque[EventLine] = deque(maxlen=EVENTS_KEPT)
        self._seq = 0
        self._shown_seq = 0
        self._cursors: dict[str, int] = {}  # by history (`_histories`): next event not metered
        self._timeline_read = TimelineReader()
        self._replies_cursor = 0
        self._trimmed = False
        self.leaders: set[str] = set()  # nodes that believe they lead
        self.leader_of: dict[str, str] = {}  # group -> leader, when traces name the group
        self.skews_ms: dict[str, float] = {}
        self.select_request: tuple[int, str] = (0, "")  # a key's pick for the topology (Frame)
        self.actions: list[Action] = []  # what the person did, as a replayable schedule
        self.script: list[dict[str, Any]] = []  # the same, as the session replays it
        self._doing_depth = 0
        self.fault_kinds: set[str] = set()
        self.profile = "off"  # what the traffic does when no planned window says otherwise
        # The planned windows, (start ms, profile), in plan order: the header says what
        # traffic does now, not what was planned last (a re-arm plans steady traffic a
        # second before a spike ends).
        self._windows: deque[tuple[float, str]] = deque(maxlen=8)
        self.base_profile = "saturate" if config.scenario == "saturate" else "steady"
        self._generation = 0  # bumped when the traffic plan changes: stale re-arms do nothing
        self.judged = False
        # Traffic again after a judge (g after j): the run is live once more, and the
        # final reads in its history are a prefix's reads (until j judges again).
        self.live_again = False
        self.judged_at_ms: float | None = None  # the last j: final reads before it are old
        self._finals_due_ms = 0.0  # the last j's final reads are in by then
        self.checks: list[CheckView] = [
            CheckView(name, "pending", "waiting for the first check") for name in self.dep.checks
        ]
        self.checks_running = False
        # The whole run's verdicts as the last w (or j, once its final reads were in:
        # `judge_whole`) judged them: past the window they stand in for the live
        # checks' unknowns (`_with_saved`).
        self._saved_checks: dict[str, CheckView] = {}
        self._whole_judged_ms: float | None = None  # the j whose run `judge_whole` judged
        self._window_checks: list[CheckView] = []  # the last round's views on a window, bare
        self.message = ""
        self.view = view_for(self.stage.id)  # chapters 5-7: their own panel and keys
        if self.view is not None:  # their checks' live form: a prefix, in flight is not lost
            live = self.view.live_checks(self)
            self.live_checks.update((n, c) for n, c in live.items() if n in self.dep.checks)
        self.rt.telemetry.subscribe(self._on_trace)
        self.rt.start()
        self._begin()

    # -- life ------------------------------------------------------------------------
    def _begin(self) -> None:
        """Start the chosen scenario's traffic (and its fault, if it has one)."""
        start_ms = self.rt.now_ms + WARMUP_MS
        scenario = self.config.scenario
        self._log(
            "run",
            "",
            f"{self.stage.id} {self.stage.title}: scenario {scenario}, seed {self.config.seed}",
        )
        if scenario not in SESSION_SCENARIOS:
            # The stage's own script, as `d11 run` plays it: its traffic, its faults, its
            # end and final reads (the live checks then judge the whole run).
            self.dep.apply_scenario(scenario)
            self.profile = scenario
            self._say(
                f"{scenario}: {self.stage.scenarios[scenario].summary}; the run ends, "
                f"final reads taken, by t={self.dep.end_ms / 1000:.0f} s"
            )
        elif scenario == "double11":
            self._plan(start_ms, "double11", SPIKE_WINDOW_MS)
        else:
            self._plan(start_ms, self.base_profile, WINDOW_MS)
        fault_at_ms = start_ms + SCENARIO_FAULT_AT_MS
        if scenario == "crash" and hasattr(self.dep, "crash_victims"):
            victims = list(self.dep.crash_victims())
            self.rt.call_at(fault_at_ms, lambda: self._scenario_crash(victims))
        elif scenario == "partition" and hasattr(self.dep, "partition_groups"):
            groups = [sorted(g) for g in self.dep.partition_groups()]
            self.rt.call_at(
                fault_at_ms,
                lambda: self._act("partition", {"groups": groups, "one_way": False}, person=False),
            )
            self.rt.call_at(fault_at_ms + PARTITION_MS, lambda: self._act("heal", {}, person=False))

    def _scenario_crash(self, victims: list[str]) -> None:
        for n in victims:
            self._act("crash", {"node": n}, person=False)
        down_ms = getattr(self.dep, "restart_after_ms", lambda: None)()
        if down_ms is not None:
            for n in victims:
                restart = functools.partial(self._act, "restart", {"node": n}, person=False)
                self.rt.call_after(down_ms, restart)

    # --8<-- [start:rolling-traffic]
    def _plan(self, start_ms: float, profile: str, length_ms: float) -> None:
        """Plan traffic over [start_ms, start_ms + length_ms), and the re-arm before it ends.

        Traffic is planned window by window so a session can run for hours:
        each window's arrivals are generated just before it starts, and the
        one after it is planned a second ahead of time.
        """
        assert length_ms > REARM_LEAD_MS, "a window must outlast its re-arm lead"
        self._generation += 1
        generation = self._generation
        end_ms = start_ms + length_ms
        self.profile = profile
        while self._windows and self._windows[-1][0] >= start_ms:
            self._windows.pop()  # a window that has not begun is replaced by this one
        self._windows.append((start_ms, profile))
        self.dep.start_traffic(start_ms, end_ms, profile)
        if profile == "double11":
            self._mark_spike(start_ms, end_ms)

        def rearm() -> None:
            if generation == self._generation and not self.judged:
                self._plan(end_ms, self.base_profile, WINDOW_MS)

        self.rt.call_at(end_ms - REARM_LEAD_MS, rearm)

    # --8<-- [end:rolling-traffic]

    def _mark_spike(self, start_ms: float, end_ms: float) -> None:
        """Chapter 6's SLO checker judges the spike its history marks (spike-start,
        spike-end): mark this one as the stage's double11 scenario marks its own,
        from midnight (the peak, SPIKE_AT_MS in) for the stage's spike length."""
        from chapters.ch6_degrade.stage import DegradeDeployment
        from chapters.common import SPIKE_AT_MS

        # Chapter 6 alone: the capstone's ch6 part has no live form of its slo check yet
        # (it would call the recovery "never" while it is only "not yet").
        dep = self.dep
        if isinstance(dep, DegradeDeployment):
            midnight_ms = start_ms + SPIKE_AT_MS
            extra = dep.options.extra
            spike_ms = float(extra.get("spike_ms", dep.options.duration_s * 1000.0))
            dep.event(midnight_ms, min(end_ms, midnight_ms + spike_ms), "midnight")

    def _drop_future_arrivals(self, after_ms: float) -> None:
        """Forget planned payments from `after_ms` on (a new plan replaces them)."""
        for plan in getattr(self.dep, "plans", {}).values():
            keep = [p for p in plan.arrivals if p.time_ms < after_ms]
            plan.arrivals.clear()
            plan.arrivals.extend(keep)

    def traffic_now(self) -> str:
        """The profile of the traffic running now: the last planned window begun by now.

        A window planned to start within PLAN_AHEAD_MS counts as begun, so the
        header says "double11" the moment m is pressed, even when paused.
        """
        now_ms = self.rt.now_ms + PLAN_AHEAD_MS
        begun = [profile for start_ms, profile in self._windows if start_ms <= now_ms]
        return begun[-1] if begun else self.profile

    # -- time ------------------------------------------------------------------------
    def advance(self, wall_s: float, budget_s: float = 0.06) -> float:
        """Move simulated time by `speed x wall_s`, within `budget_s` of real work.

        Returns the simulated ms advanced. A slow stage falls behind the asked
        speed rather than freezing the screen; `speed_actual` says by how much.
        """
        if self.paused or wall_s <= 0:
            self._note_achieved(wall_s, 0.0)
            return 0.0
        target_ms = self.rt.now_ms + min(wall_s, TICK_WALL_S_MAX) * self.speed * 1000.0
        start_ms = self.rt.now_ms
        t0 = time.perf_counter()
        slices = 0
        while self.rt.now_ms < target_ms and slices < 10_000:
            self.rt.run_until(min(target_ms, self.rt.now_ms + SLICE_MS))
            slices += 1
            if time.perf_counter() - t0 > budget_s:
                break
        self._ingest()
        done_ms = self.rt.now_ms - start_ms
        self._note_achieved(wall_s, done_ms)
        return done_ms

    def step(self, sim_ms: float = STEP_MS) -> None:
        """Advance exactly `sim_ms` of simulated time (single step, tests, screenshots)."""
        assert sim_ms > 0
        self.rt.run_until(self.rt.now_ms + sim_ms)
        self._ingest()

    def _note_achieved(self, wall_s: float, sim_ms: float) -> None:
        self._achieved.append((wall_s, sim_ms))
        wall = sum(w for w, _ in self._achieved)
        self.speed_actual = (sum(s for _, s in self._achieved) / 1000.0) / wall if wall else 0.0

    def set_speed(self, direction: int) -> float:
        """One notch faster (+1) or slower (-1) on the SPEEDS ladder."""
        assert direction in (-1, 1)
        nearest = min(range(len(SPEEDS)), key=lambda i: abs(SPEEDS[i] - self.speed))
        self.speed = SPEEDS[max(0, min(len(SPEEDS) - 1, nearest + direction))]
        self._achieved.clear()
        self._mark("speed", f"x{self.speed:g} (simulated seconds per real second)")
        return self.speed

    def pause_and_step(self, sim_ms: float = STEP_MS) -> None:
        """Single step: pause if running, then advance `sim_ms`."""
        if not self.paused:
            self.paused = True
            self._mark("sim-hold", "single-stepping: . steps 100 ms, space runs")
        self.step(sim_ms)
        self._say(f"paused; stepped {sim_ms:.0f} ms (. again, space to run)")

    def toggle_pause(self) -> bool:
        self.paused = not self.paused
        self._achieved.clear()
        if self.paused:
            self._mark("sim-hold", "simulated time stands still: . steps 100 ms")
        else:
            self._mark("sim-run", f"running at x{self.speed:g}")
        return self.paused

    # -- controls ---------------------------------------------------------------------
    def servers(self) -> list[str]:
        """Nodes a person may break: every node but the clients (they observe)."""
        clients = set(self.dep.roles.get("client", []))
        return [n for n in self.node_order() if n not in clients]

    def select(self, node: str) -> None:
        """Ask the topology panel to select `node` (its next frame), as if picked with ↑↓."""
        self.select_request = (self.select_request[0] + 1, node)

    def first_target(self) -> str:
        """The node picked before anyone chooses: the first store, else the first server."""
        stores = [n for n in self.servers() if n in self.dep.roles.get("shard", [])]
        servers = self.servers()
        return stores[0] if stores else (servers[0] if servers else "")

    def _server(self, node: str) -> str:
        if node not in self.rt.node_ids():
            raise SessionError(f"no node {node!r}")
        if node in self.dep.roles.get("client", []):
            raise SessionError(f"{node} is a client: it records the history, pick a server")
        return node

    def spike(self) -> None:
        """The midnight spike, from now: Double 11's shape compressed into a few seconds."""
        with self._doing("spike"):
            self._spike()

    def _spike(self) -> None:
        if self.judged:
            self.judged = False
        now_ms = self.rt.now_ms
        self._drop_future_arrivals(now_ms)
        self._plan(now_ms + PLAN_AHEAD_MS, "double11", SPIKE_WINDOW_MS)
        self._mark("spike", "midnight: Double 11 traffic from now (peak in 1 s)")

    def resume_traffic(self) -> None:
        """Steady traffic again (after a judge, or to cut a spike short)."""
        with self._doing("resume_traffic"):
            self._resume_traffic()

    def _resume_traffic(self) -> None:
        self.judged = False
        if any(a.fault == "judge" for a in self.actions):
            self.live_again = True
        now_ms = self.rt.now_ms
        self._drop_future_arrivals(now_ms)
        self._plan(now_ms + PLAN_AHEAD_MS, self.base_profile, WINDOW_MS)
        self._mark("traffic", f"{self.base_profile} traffic from now")

    def kill(self, node: str) -> None:
        node = self._server(node)
        if self.rt.status(node) == "crashed":
            raise SessionError(f"{node} is already down: r restarts it")
        self._act("crash", {"node": node})

    def restart(self, node: str) -> None:
        node = self._server(node)
        status = self.rt.status(node)
        if status == "paused":
            self._act("resume", {"node": node})
        elif status == "crashed":
            self._act("restart", {"node": node})
        else:
            raise SessionError(f"{node} is up: nothing to restart")

    def toggle_node_pause(self, node: str) -> None:
        node = self._server(node)
        status = self.rt.status(node)
        if status == "crashed":
            raise SessionError(f"{node} is down: a crashed node cannot be paused")
        self._act("resume" if status == "paused" else "pause", {"node": node})

    def skew(self, node: str) -> float:
        """Cycle the node's clock skew: 0 -> +500 ms -> -500 ms -> 0."""
        node = self._server(node)
        now = self.skews_ms.get(node, 0.0)
        nxt = SKEWS_MS[(SKEWS_MS.index(now) + 1) % len(SKEWS_MS)] if now in SKEWS_MS else 0.0
        self._act("skew", {"node": node, "skew_ms": nxt, "drift_ppm": 0.0})
        return nxt

    def cut_off(self, node: str) -> str:
        """Cut the node's city off from everything (its cell if the city is everything)."""
        node = self._server(node)
        city, cell = self.topology.city_of(node), self.topology.cell_of(node)
        everything = set(self.topology.nodes())
        target = city if set(self.topology.nodes_in(city)) != everything else cell
        self._act("isolate", {"target": target})
        self._warn_control_plane_cut(target)
        return target

    def _warn_control_plane_cut(self, target: str) -> None:
        """Say so when the cut takes the failover controller with it (chapter 4: and the GZone).

        Chapter 4's crash scenario loses Shanghai and its users pay again
        within a second: the controller, in Hangzhou, fails Shanghai's cell
        over. Cut Hangzhou off (the first store's city, the one `c` cuts
        unless you pick another node) and nothing outside can fail its cells
        over: they pay again only once the cut heals, tens of seconds later
        if you wait that long. A different fault, not a slower recovery.
        The capstone has a standby controller in Shanghai: the line then
        names it (what the deployment has, not what chapter 4 has).
        """
        inside = set(self.topology.nodes_in(target))
        controllers = self.dep.roles.get("controller", [])
        control = sorted(n for n in controllers if n in inside)
        if not control:
            return
        standby = sorted(n for n in controllers if n not in inside)
        lost = {self.topology.city_of(n) for n in getattr(self.dep, "crash_victims", list)()}
        where = [f"{n} in {self.topology.city_of(n)}" for n in standby]
        detail = control_plane_cut_words(target, control, where, sorted(lost))
        self._log("control-plane cut", "", detail)
        self._say(detail)

    def heal(self) -> None:
        self._act("heal", {})

    def chapter_action(self, action: str, node: str) -> None:
        """One of the chapter view's keys (`tui.views`), on the selected `node`."""
        if self.view is None or not any(k.action == action for k in self.view.keys):
            raise SessionError(f"{action} does not apply to {self.stage.id}")
        try:
            with self._doing("chapter_action", action, node):
                self._say(self.view.act(self, action, node))
        except ViewError as exc:
            raise SessionError(str(exc)) from None

    def judge(self) -> float:
        """Stop traffic, heal, let recovery run and take the final reads the checkers need."""
        if self.judged:
            raise SessionError("already judging: g for traffic again, n for a fresh run")
        if self.rt.now_ms < self._finals_due_ms:
            raise SessionError(
                f"the last j's final reads are due by t={self._finals_due_ms / 1000:.1f} s: "
                "wait for them before judging again"
            )
        if self.config.scenario not in SESSION_SCENARIOS:
            raise SessionError(
                f"scenario {self.config.scenario} takes its own final reads, by "
                f"t={self.dep.end_ms / 1000:.0f} s: wait for them, or n for a fresh run"
            )
        with self._doing("judge"):
            return self._judge()

    def _judge(self) -> float:
        if self.judged_at_ms is not None:  # judged before: every client starts its final
            from reference.clients import PaymentClient

            for nid in self.rt.node_ids():  # phase afresh (reconcile, look up, read)
                client = self.rt.node(nid) if self.rt.status(nid) != "crashed" else None
                if isinstance(client, PaymentClient):
                    client.begin_final_phase()
        self.judged = True
        self.live_again = False
        self._generation += 1
        for node in self.servers():  # a paused node (a stalled consumer group) thaws: the
            if self.rt.status(node) == "paused":  # final phase restarts only crashed ones
                self._act("resume", {"node": node})
        now_ms = self.rt.now_ms
        self._drop_future_arrivals(now_ms)
        for plan in getattr(self.dep, "plans", {}).values():
            plan.traffic_until_ms = min(plan.traffic_until_ms, now_ms)
            # End the closed loops in their places: a client knows a loop by its index,
            # and a new loop in a started one's place never started (g after j, saturate).
            begun = [replace(loop, end_ms=now_ms) for loop in plan.closed if loop.start_ms < now_ms]
            plan.closed[:] = begun  # loops start in plan order: the begun ones come first
        self.profile = "judged"
        self._windows.clear()
        self.actions.append(Action(now_ms, "heal", {}, "judge"))
        self.judged_at_ms = now_ms
        done_ms = self.dep.finish(now_ms + 1.0)
        self._finals_due_ms = done_ms
        self._mark(
            "judge", f"traffic stopped; heal, recover, final reads by t={done_ms / 1000:.1f} s"
        )
        if self.paused:  # the final reads take simulated time: paused, j would wait for ever
            self.toggle_pause()
        return done_ms

    def _act(self, op: str, params: dict[str, Any], *, person: bool = True) -> None:
        """Do one fault action now, through the nemesis vocabulary, and record it.

        `person`: a person's action, kept in the script a save replays; the
        scenario's own faults are not (the replayed scenario does them again).
        """
        if person:
            self._record("act", op, params)
        now_ms = self.rt.now_ms
        action = Action(now_ms, op, params, fault=f"tui{len(self.actions) + 1}")
        apply_action(action, self.rt)
        self.actions.append(action)
        crashed = getattr(self.dep, "crashed", None)
        if isinstance(crashed, set):  # the stage's final phase restarts what is down
            if op == "crash":
                crashed.add(params["node"])
            elif op == "restart":
                crashed.discard(params["node"])
        if op == "skew":
            self.skews_ms[params["node"]] = float(params["skew_ms"])
        if op in _SCENARIO_OF_FAULT:
            self.fault_kinds.add(_SCENARIO_OF_FAULT[op])
        self.dep.record(
            {
                "type": "info", "process": NEMESIS, "f": op,
                "value": {"fault": action.fault, **params}, "time_ms": now_ms,
            }
        )  # fmt: skip
        self.dep.add_to_timeline(now_ms, op, _describe(op, params))
        self._say(f"{op}: {_describe(op, params)}")

    def _mark(self, kind: str, detail: str) -> None:
        """A phase of the session (spike, judge, save): timeline, history, log."""
        self._record("mark", kind, detail)
        self.dep.note(kind, detail)
        self._say(f"{kind}: {detail}")

    def _say(self, message: str) -> None:
        self.message = message

    # -- the script: what a person did, for an exact replay ------------------------
    def _record(self, do: str, *args: Any) -> None:
        """Keep one thing a person did to the run, at this simulated instant.

        Everything the simulation sees of a person goes through here (a
        control, or a note in the history such as a speed change): replayed
        at the same instants on the same seed, it gives the same run, event
        for event, since slicing does not show in the run (nor its digest).
        """
        if self._doing_depth == 0:
            self.script.append({"at_ms": self.rt.now_ms, "do": do, "args": list(args)})

    @contextmanager
    def _doing(self, do: str, *args: Any) -> Iterator[None]:
        """Record a control once; what it does inside (notes, faults) is its own doing.
        A control refused (a key that does not apply to the selected node) did
        nothing to the run: its record is dropped, or the saved session's replay
        refused it again and stopped there."""
        recorded = len(self.script)
        self._record(do, *args)
        self._doing_depth += 1
        try:
            yield
        except (SessionError, ViewError):
            del self.script[recorded:]
            raise
        finally:
            self._doing_depth -= 1

    def replay_script(self, script: list[dict[str, Any]], end_ms: float) -> None:
        """Do `script` (a saved session's) at its instants, then run to `end_ms`."""
        controls: dict[str, Callable[..., Any]] = {
            "spike": self.spike, "resume_traffic": self.resume_traffic, "judge": self.judge,
            "chapter_action": self.chapter_action, "act": self._act, "mark": self._mark,
        }  # fmt: skip
        for entry in script:
            at_ms = float(entry["at_ms"])
            self._run_to(at_ms)
            try:
                controls[entry["do"]](*entry["args"])
            except SessionError:
                # Refused when it was pressed too (sessions saved before refused
                # controls were left out of the script): it did nothing then either.
                continue
        self._run_to(end_ms)

    def _run_to(self, at_ms: float) -> None:
        # run_until the very instant (now + (at - now) may round past it)
        if at_ms > self.rt.now_ms:
            self.rt.run_until(at_ms)
            self._ingest()

    # -- what happened -----------------------------------------------------------------
    def _on_trace(self, event: TraceEvent) -> None:
        self._track_leaders(event)
        if not wanted_event(event.kind):
            return
        self._log(event.kind, event.node, _trace_detail(event), event.time_ms)

    def _track_leaders(self, event: TraceEvent) -> None:
        track_leader(self.leaders, self.leader_of, event.kind, event.node, event.fields)

    def _log(self, kind: str, node: str, detail: str, time_ms: float | None = None) -> None:
        self._seq += 1
        t = self.rt.now_ms if time_ms is None else time_ms
        self.events.append(EventLine(self._seq, t, kind, node, detail, severity_of(kind)))

    def _histories(self) -> list[tuple[str, list[Event]]]:
        """(part name, history) of every history the run appends to: the deployment's,
        or each of its parts' (the capstone). The capstone's own `history` is a merged
        copy of its parts', rebuilt whenever one has grown: taken every tick, it cost
        nine tenths of a tick's time and grew with the run."""
        parts = getattr(self.dep, "parts", None)
        if isinstance(parts, dict) and parts:
            return [(name, part.history) for name, part in parts.items()]
        return [("", self.dep.history)]

    def history_len(self) -> int:
        """Events in the run's histories, without merging them."""
        return sum(len(h) for _, h in self._histories())

    def _ingest(self) -> None:
        """Feed new history events to the meter; new notes to the log; bound memory."""
        for name, history in self._histories():
            cursor = min(self._cursors.get(name, 0), len(history))  # trimmed: from its end
            new_events = history[cursor:]
            if name:  # parts number their processes alike: tell them apart, as the merge does
                new_events = [
                    replace(e, process=f"{name}/{e.process}") if isinstance(e.process, int) else e
                    for e in new_events
                    if e.f == "transfer"
                ]
            self.meter.feed(new_events)
            self._cursors[name] = len(history)
        self._ingest_timeline()
        responses = getattr(self.dep, "responses", None)
        if isinstance(responses, list):
            fresh = responses[self._replies_cursor :]
            self.meter.feed_replies((float(r["time_ms"]), float(r["latency_ms"])) for r in fresh)
            self._replies_cursor = len(responses)
            if len(responses) > 100_000:
                del responses[:50_000]
                self._replies_cursor = len(responses)
        if self.history_len() > HISTORY_MAX:
            self._trim_history()

    def _ingest_timeline(self) -> None:
        """New timeline rows to the log (a chapter panel adds some as it reads the run)."""
        timeline = self.dep.timeline
        for _t, kind, detail in self._timeline_read.new_rows(timeline):
            # Runtime faults are logged from the runtime's own trace; a note
            # adds only phases (spike, failover, final phase, judge, save).
            if kind not in RUNTIME_FAULT_KINDS and kind not in ("traffic", "isolate", "skew"):
                self._log(kind, "", detail, _t)
        if len(timeline) > 10_000:
            del timeline[:5_000]  # a merged view (the capstone's) is a copy: no harm
            self._timeline_read.cut(timeline)

    def _trim_history(self) -> None:
        histories = self._histories()
        kept_max = HISTORY_MAX // 2 // len(histories)
        for name, history in histories:  # each part alike (the capstone's merge follows)
            history[:] = recent_window(history, kept_max)
            self._cursors[name] = len(history)
        self._trimmed = True
        kept = self.history_len()
        self._log("trim", "", f"history trimmed to its last {kept:,} events")

    # -- checks ------------------------------------------------------------------------
    def expectation_scenario(self) -> str:
        """Which of the chapter's scenarios this run now resembles (for expectations).

        The faults a person caused are judged by the harness's rule
        (`checks.harness.spec.scenario_of_faults`), as `d11 test` judges a
        spec's. A failover is what a chapter's crash scenario exercises
        (chapter 3 loses acknowledged payments there), whether a crash or a
        city cut set it off, so a run with a failover is judged as a crash.
        """
        from checks.harness.spec import scenario_of_faults

        failover = any(kind == "failover" for _, kind, _ in self.dep.timeline)
        by_faults = scenario_of_faults(self.fault_kinds | ({"crash"} if failover else set()))
        if by_faults is not None:
            return by_faults
        if self.config.scenario in ("crash", "partition"):
            return self.config.scenario
        if self.config.scenario not in SESSION_SCENARIOS:
            return self.config.scenario  # the stage's own script: its own expectations
        spiked = self.config.scenario == "double11" or any(
            kind == "spike" for _, kind, _ in self.dep.timeline
        )
        return "double11" if spiked else "steady"

    def history_cut(self) -> bool:
        """The live checks judge a recent window of the history, not all of it."""
        return self._trimmed or self.history_len() > LEDGER_EVENTS_MAX

    def check_input(self) -> tuple[list[Event], str, bool]:
        """(history or its recent window, scenario, a window?) for a check run outside
        the lock. Past LEDGER_EVENTS_MAX (or once trimmed) the checks judge a window
        (`judge_history` says which verdicts a window can support)."""
        history = list(self.dep.history)
        whole = not self._trimmed and len(history) <= LEDGER_EVENTS_MAX
        window = history if whole else recent_window(history, CHECK_EVENTS_MAX)
        return self._finals(window), self.expectation_scenario(), not whole

    def _finals(self, history: list[Event]) -> list[Event]:
        """`history` with only the last j's final reads final, and those only while
        traffic has not gone on after them (`not_final`)."""
        if self.live_again:
            return not_final(history)
        if self.judged_at_ms is not None:  # judged more than once: the last j's reads
            return not_final(history, before_ms=self.judged_at_ms)
        return history

    def follows(self) -> frozenset[str]:
        """The checks that follow the run round by round (`LiveWalletLin`): past the
        window they still judge the whole history, as long as the session holds it."""
        return frozenset(n for n, c in self.live_checks.items() if isinstance(c, LiveWalletLin))

    def run_checks(self) -> list[CheckView]:
        """Judge the history so far (call without the lock held: it copies under it).

        Past the window, once j's final reads are in, the whole run is judged
        too (`judge_whole`, once per j)."""
        with self.lock:
            history, scenario, on_window = self.check_input()
            follows = self.follows() if on_window and not self._trimmed else frozenset()
            whole = self._finals(list(self.dep.history)) if follows else None
            at_ms = self.rt.now_ms  # the header's "judged at": the run's time, not its last event's
            self.checks_running = True
        try:
            views = judge_history(
                self.dep, history, scenario, window=on_window, run=self._run_check,
                judged_before=self.live_again, at_ms=at_ms, final_reads=self.judged,
                whole=whole, follows=follows, trimmed=self._trimmed,
            )  # fmt: skip
            with self.lock:
                if on_window:
                    self._window_checks = views
                    views = self._with_saved(views)
                self._set_checks(views)
                due = on_window and self._whole_due()
            if due:
                self.judge_whole()
        finally:
            with self.lock:
                self.checks_running = False
        return self.checks

    def whole_due(self) -> bool:
        """Past the window, j's final reads are in and nothing has judged that run yet
        (the next `run_checks` judges the whole run: `judge_whole`)."""
        return self.history_cut() and self._whole_due()

    def _whole_due(self) -> bool:
        return (
            self.judged
            and not self.live_again
            and not self._trimmed
            and self.judged_at_ms is not None
            and self.rt.now_ms >= self._finals_due_ms
            and self._whole_judged_ms != self.judged_at_ms
        )

    def judge_whole(self) -> list[CheckView]:
        """Judge the whole run now, as `w`'s save does (every check, on every event the
        session holds), without saving it; its verdicts stand in for the window's
        unknowns (`_with_saved`). The live session's check worker calls it once per
        j, once j's final reads are in (`run_checks`), so j reaches its verdict
        without w. A check that follows the run round by round judges in that form."""
        with self.lock:
            self._whole_judged_ms = self.judged_at_ms
            history, checks, verdicts = self._whole_start(live=True)
            scenario = self.expectation_scenario()
            end_ms = self.rt.now_ms
        verdicts = self._whole_rest(history, checks, verdicts, live=True)
        from chapters.stage import judge

        judged = judge(verdicts, self.dep.expectations(scenario))
        views = saved_views(verdicts, judged, end_ms, len(history), JUDGED)
        with self.lock:
            self._saved_checks = views
            self._set_checks(self._with_saved(self._window_checks))
            said = f"j's final reads are in: the whole run to t={end_ms / 1000:.1f} s judged"
            self._log("judged", "", said)  # not the run's timeline: no event of the run
            self._say(said)
        return self.checks

    def _whole_start(self, live: bool) -> tuple[list[Event], dict[str, Check], dict[str, Verdict]]:
        """(the whole history, the checks that judge it, the verdicts of those that read
        node state, judged in this very hold of the lock). Call with the lock held.

        `live`: a check that follows the run round by round judges in that form
        (else afresh: `whole`). Once trimmed, no check that needs the whole run is
        run: the history no longer starts where the run did. Past LEDGER_EVENTS_MAX
        the ledger is run too (once, in a worker: too slow for every round)."""
        history = list(self.dep.history)
        if self.judged_at_ms is not None and not self.live_again:
            history = not_final(history, before_ms=self.judged_at_ms)  # the last j's reads
        checks = {
            n: c if live else getattr(self.live_checks.get(n), "whole", c)
            for n, c in self.dep.checks.items()
            if not (self._trimmed and base_name(n) in WHOLE_RUN_CHECKS)
        }
        verdicts = {
            n: self._run_check(n, c, history, fresh=lambda: history, live=live)
            for n, c in checks.items()
            if n in self.state_checks
        }
        return history, checks, verdicts

    def _whole_rest(
        self,
        history: list[Event],
        checks: dict[str, Check],
        verdicts: dict[str, Verdict],
        live: bool,
    ) -> dict[str, Verdict]:
        """`_whole_start`'s verdicts and every other check's, in the stage's order
        (call without the lock: these read only the history)."""
        verdicts = dict(verdicts)
        verdicts.update(
            (n, self._run_check(n, c, history, fresh=lambda: history, live=live))
            for n, c in checks.items()
            if n not in verdicts
        )
        return {n: verdicts[n] for n in checks}

    def _with_saved(self, views: list[CheckView]) -> list[CheckView]:
        """A check a window leaves unknown shows the whole run's verdict from the last
        w instead, if there is one (its summary says which run up to when).

        Once j's final reads are in and the whole run is judged (`judge_whole`),
        every check shows the whole run's verdict until traffic runs again: the
        window's stood beside it for the checks the window could judge, and
        ch4:lost-payments read "All 6291 acknowledged payments" after judging
        where it had counted 8825 before (the window's count, beside ledger's
        and lin's on the whole run)."""
        if self._whole_stands():
            return [self._saved_checks.get(c.name, c) for c in views]
        return [self._saved_checks.get(c.name, c) if c.valid == "unknown" else c for c in views]

    def _whole_stands(self) -> bool:
        """The whole run is judged on the last j's final reads, and traffic is still off."""
        return (
            self._whole_judged_ms is not None
            and self._whole_judged_ms == self.judged_at_ms
            and self.judged
            and not self.live_again
        )

    # --8<-- [start:run-check]
    def _run_check(
        self,
        name: str,
        check: Check,
        history: list[Event],
        fresh: Callable[[], list[Event]] | None = None,
        live: bool = True,
    ) -> Verdict:
        """One check, in the calling thread, never on a state that moves under it.

        A check is first run on the history copy alone; if it asks for node
        state it is stopped, remembered, and from then on run under the lock
        with a history copied in the same hold, so what it reads of the nodes
        and of the history is one instant of the run. A check that raises is
        shown as unknown with its error, not allowed to take the view down.
        A check the live view judges round by round (`LIVE_CHECKS`) runs in
        that form (`live`), or judges the whole history afresh (a save).
        """
        if live:
            check = self.live_checks.get(name, check)
        try:
            if name not in self.state_checks:
                try:
                    with self._guard.history_only():
                        return check(history)
                except ReadsLiveState:
                    self.state_checks.add(name)
            with self.lock:  # the simulation waits between two slices while this reads
                return check(fresh() if fresh is not None else self.check_input()[0])
        except Exception as exc:  # a bug in a check: say so in its panel line
            from checks.verdict import Verdict

            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return Verdict(name, "unknown", f"the check failed: {type(exc).__name__}: {first}")

    # --8<-- [end:run-check]

    def _set_checks(self, views: list[CheckView]) -> None:
        before = {c.name: c.valid for c in self.checks}
        self.checks = views
        for c in views:
            if before.get(c.name) not in (c.valid, "pending") or (
                before.get(c.name) == "pending" and c.valid is False
            ):
                word = {True: "holds", False: "BROKEN", "unknown": "unknown"}.get(c.valid, "?")
                # Whole words and a "…": cut at 120 characters, "1 still within their c"
                # read as the verdict's end.
                summary = textwrap.shorten(c.summary, CHECK_SUMMARY_MAX, placeholder=" …")
                self._log(f"check {c.name}", "", f"{word}: {summary}")

    # -- save --------------------------------------------------------------------------
    def save(self, root: Path) -> Path:
        """Write the run so far as a store folder (`d11 tui --attach` reads it back).

        The folder holds `session.json` too (the config and the script of
        what the person did), so `d11 replay` runs the session again exactly.
        """
        from checks.harness.sessions import SESSION_FILE
        from checks.harness.store import write_manifest, write_store

        with self.lock:
            session = {
                "config": {
                    "chapter": self.config.chapter, "scenario": self.config.scenario,
                    "seed": self.config.seed, "variant": self.config.variant,
                    "extra": self.config.extra,
                },
                "script": list(self.script),
                "end_ms": self.rt.now_ms,
            }  # fmt: skip
        result = self.result()
        saved = saved_views(result.verdicts, result.judged, result.end_ms, len(result.history))
        with self.lock:
            self._saved_checks = saved
            if self.history_cut():  # the panel's unknowns: the whole run is judged now
                self._set_checks(self._with_saved(self._window_checks or self.checks))
        folder = _renamed(write_store(result, root, html=False), self.saved_name(result.spec))
        (folder / SESSION_FILE).write_text(json.dumps(session, indent=1) + "\n")
        write_manifest(folder)  # again: the manifest covers session.json
        with self.lock:
            self._mark("save", f"run saved to {folder}")
        return folder

    def saved_name(self, spec: TestSpec) -> str:
        """The saved run's folder name: the harness's (`TestSpec.name`: chapter, variant,
        workload, then its faults or "none"), with what the person did in the faults'
        place: the faults, the spike and the chapter's controls, in one sorted list.
        A save after m, o and [ was `double11-all-payments-none`; it is now
        `double11-all-payments-kill-switch+spike+tighten`."""
        done = set(spec.nemeses)
        with self.lock:
            for entry in self.script:
                if entry["do"] == "spike":
                    done.add("spike")
                elif entry["do"] == "chapter_action" and entry["args"]:
                    done.add(str(entry["args"][0]))
        return replace(spec, nemeses=tuple(sorted(done))).name

    def result(self) -> TestResult:
        """The run so far as the harness's `TestResult` (origin "tui"), its checks run."""
        from checks.harness.runner import TestResult, TestSpec, trace_logs
        from checks.nemesis import Schedule
        from checks.verdict import combine

        with self.lock:
            history, checks, verdicts = self._whole_start(live=False)
            scenario = self.expectation_scenario()
            workload = {"double11": "double11", "saturate": "saturate"}.get(
                self.config.scenario, "payments"
            )
            kinds = {"crash": "kill", "pause": "pause", "skew": "skew", "isolate": "isolate-city"}
            nemeses = tuple(sorted({kinds[a.op] for a in self.actions if a.op in kinds}))
            spec = TestSpec(
                chapter=self.stage.id,
                workload=workload,
                nemeses=nemeses,
                time_s=min(600.0, max(0.1, round(self.rt.now_ms / 1000.0, 3))),
                seed=self.config.seed,
                variant=self.options.variant,
            )
            schedule = Schedule(
                tuple(sorted(self.actions, key=lambda a: a.at_ms)), self.config.seed, nemeses
            )
            figures = self.meter.window(self.rt.now_ms, 5_000.0)
            timeline = list(self.dep.timeline)
            node_logs = trace_logs(self.rt)
            digest = self.rt.trace_digest()
            end_ms = self.rt.now_ms
        from chapters.stage import judge

        verdicts = self._whole_rest(history, checks, verdicts, live=False)
        judged = judge(verdicts, self.dep.expectations(scenario))
        summary = {
            "offered_tps": round(float(figures["offered_tps"]), 2),
            "goodput_tps": round(float(figures["served_tps"]), 2),
            "p50_ms": figures["p50_ms"],
            "p99_ms": figures["p99_ms"],
        }
        return TestResult(
            spec=spec, schedule=schedule, history=history, verdicts=verdicts, judged=judged,
            valid=combine(verdicts.values()), digest=digest, end_ms=end_ms, timeline=timeline,
            node_logs=node_logs, summary=summary, origin="tui",
        )  # fmt: skip

    # -- the frame ---------------------------------------------------------------------
    def _cell_of(self, node: str) -> str:
        """Goodput groups by LDC cell when the stage has cells, else by the store that served."""
        if not self.topology.has_node(node):
            return ""
        return self.topology.cell_of(node) if self._by_cell else node

    def node_order(self) -> list[str]:
        """Nodes by city, then cell, then id: the order the topology panel draws.

        Made once: the topology is fixed for the session's life, and each frame
        asks several times (a frame, its faults, the first target)."""
        if not self._node_order:
            for city in self.topology.cities():
                for cell in self.topology.cells(city):
                    self._node_order.extend(sorted(self.topology.nodes_in(cell)))
        return list(self._node_order)

    def role_of(self, node: str) -> str:
        """The node's role as the topology names it (the roles are fixed: found once)."""
        if not self._roles:
            self._roles = {n: self._find_role(n) for n in self.node_order()}
        return self._roles.get(node) or self._find_role(node)

    def _find_role(self, node: str) -> str:
        # Chapter 5 files its consumer groups' members and its producers as shards (they
        # hold state), chapter 4 its cells' ledger fronts, chapter 5 its front as config:
        # on screen each is what it does ("pay-sh store", "front-hz-1 store", before).
        for dep in (self.dep, *getattr(self.dep, "parts", {}).values()):
            if any(node in members for members in getattr(dep, "consumers", {}).values()):
                return "consumer"
            if node in getattr(dep, "producers", ()):
                return "producer"
            fronts = getattr(dep, "fronts", {})
            if node in (fronts.values() if isinstance(fronts, dict) else fronts):
                return "front"
        if isinstance(self.rt.node(node), LedgerFront):
            return "front"
        for role in ("client", "controller", "config", "replica", "shard", "gateway"):
            if node in self.dep.roles.get(role, []):
                return role
        return ""

    def frame(self, points: int = 120) -> Frame:
        """Everything the panels show now; events are the ones new since the last frame."""
        now_ms = self.rt.now_ms
        # The chapter panel first: reading the run, it may add timeline rows (chapter 6:
        # the plan's switch flips), which this very frame's Events then show.
        chapter_panel = self.view.panel(self) if self.view is not None else None
        self._ingest_timeline()
        nodes = self.node_order()
        cut_state = _cut_state(self.rt.net, nodes)
        # The summaries by city and cell ask every pair of places about every pair of
        # their nodes: a third of a frame's time in the capstone, for no cut at all.
        cut = any(cut_state.values())
        cuts = _cut_lines(self.rt.net, self.topology) if cut else []
        leaders = self.leaders
        telemetry = self.rt.telemetry
        views = []
        for n in nodes:
            role = self.role_of(n)
            # A store counts the transactions it ran; a gateway serves nothing itself:
            # the payments that reached it are its load (0 tx/s on every gateway, before).
            load_tps = telemetry.rate_per_s("txns", n, 1000.0)
            load_what = LOAD_UNIT.get(role, "txn")
            if not load_tps:
                requests_tps = telemetry.rate_per_s("requests", n, 1000.0)
                if requests_tps:
                    load_tps, load_what = requests_tps, "req"
            views.append(
                NodeView(
                    id=n,
                    city=self.topology.city_of(n),
                    cell=self.topology.cell_of(n),
                    role=role,
                    status=self.rt.status(n),
                    cut=cut_state.get(n, ""),
                    leader=n in leaders,
                    skew_ms=self.skews_ms.get(n, 0.0),
                    load_tps=load_tps,
                    load_what=load_what,
                    queue=self.rt.queue_len(n),
                )
            )
        new_events = sorted(
            (e for e in self.events if e.seq > self._shown_seq), key=lambda e: (e.time_ms, e.seq)
        )
        self._shown_seq = self._seq
        return Frame(
            mode="live",
            first_target=self.first_target(),
            select=self.select_request,
            chapter=self.stage.id,
            title=self.stage.title,
            scenario=self.config.scenario,
            variant=self.options.variant,
            seed=self.config.seed,
            now_ms=now_ms,
            speed=self.speed,
            speed_actual=self.speed_actual,
            paused=self.paused,
            profile=self.traffic_now(),
            scale=self.dep.scale,
            nodes=views,
            layout=self.layout(),
            cuts=cuts,
            **self.meter.traffic_fields(now_ms, points, by_cell=self._by_cell),
            events=new_events,
            events_reset=False,
            checks=list(self.checks),
            checks_running=self.checks_running,
            message=self.message,
            faults_active=self.faults_active(cuts),
            cut_off=_cut_off(self.rt.net, self.topology) if cut else [],
            chapter_panel=chapter_panel,
        )

    def layout(self) -> dict[str, dict[str, list[str]]]:
        if not self._layout:  # the topology is fixed: made once
            self._layout = {
                city: {c: sorted(self.topology.nodes_in(c)) for c in self.topology.cells(city)}
                for city in self.topology.cities()
            }
        return self._layout

    def faults_active(self, cuts: list[str] | None = None) -> list[str]:
        """What is broken now; `cuts`: the cut links' summary, if already made."""
        out = []
        for n in self.node_order():
            status = self.rt.status(n)
            if status != "up":
                out.append(f"{n} {status}")
            if self.skews_ms.get(n):
                out.append(f"{n} clock {self.skews_ms[n]:+.0f} ms")
        out.extend(_cut_lines(self.rt.net, self.topology) if cuts is None else cuts)
        return out


# -- a saved session, run again ----------------------------------------------------------
_SCRIPT_ARITY = {
    "spike": 0,
    "resume_traffic": 0,
    "judge": 0,
    "chapter_action": 2,
    "act": 2,
    "mark": 2,
}


def replay_saved(folder: Path) -> TestResult:
    """Run a saved session (`session.json` in `folder`) again; its `TestResult`.

    HarnessError (one line, naming the file) if the file is not a session's.
    """
    from checks.harness.sessions import SESSION_FILE
    from checks.harness.spec import HarnessError

    path = folder / SESSION_FILE
    try:
        data = json.loads(path.read_text())
        config = data["config"]
        script = data["script"]
        end_ms = float(data["end_ms"])
        assert isinstance(config, dict) and isinstance(script, list), "config {}, script []"
        assert all(
            isinstance(e, dict)
            and _SCRIPT_ARITY.get(str(e.get("do"))) == len(e.get("args", ()))
            and isinstance(e.get("at_ms"), (int, float))
            for e in script
        ), "every script entry is {at_ms, do, args} with a known do"
        assert end_ms == end_ms and end_ms < 1e9, "end_ms is a finite time"
        session = Session(
            SessionConfig(
                chapter=str(config["chapter"]), scenario=str(config["scenario"]),
                seed=int(config["seed"]), variant=str(config["variant"]),
                extra=dict(config.get("extra") or {}),
            )
        )  # fmt: skip
        session.replay_script(script, end_ms)
    except (OSError, ValueError, KeyError, TypeError, AssertionError, SessionError) as exc:
        raise HarnessError(f"{path}: not a saved session: {exc}") from None
    return session.result()
