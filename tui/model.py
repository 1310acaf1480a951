"""What the panels show, as plain data: one `Frame` per refresh.

A live session (`tui.session.Session`) and a replayed store folder
(`tui.replay.Replay`) both produce frames, so every widget draws the same
way whether the run is happening now or happened in CI last night. Nothing
here imports Textual: the frames are tested without a terminal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "LOAD_WHAT",
    "ChapterPanelView",
    "CheckView",
    "EventLine",
    "Frame",
    "NodeView",
    "Severity",
    "format_rate",
]

Severity = Literal["info", "fault", "heal", "warn", "ok"]

# Trace kinds worth a line in the event log. Nodes may trace more (per
# request); the log keeps what a person watching a failure wants to see.
EVENT_WORDS: tuple[str, ...] = (
    "crash", "restart", "pause", "resume", "clock", "partition", "heal", "cut",
    "isolate", "leader", "elect", "failover", "breaker", "route", "rule", "remap",
    "degrade", "flow", "fence", "recover", "lease", "takeover", "promote", "demote",
    "spike", "traffic", "skew", "judge", "final", "save", "speed", "switch",
)  # fmt: skip
FAULT_WORDS: tuple[str, ...] = ("crash", "pause", "partition", "cut", "isolate", "skew", "clock")
HEAL_WORDS: tuple[str, ...] = ("restart", "resume", "heal", "recover")


def severity_of(kind: str) -> Severity:
    """Colour class of an event kind: faults red, heals green, the rest plain."""
    low = kind.lower()
    if any(w in low for w in HEAL_WORDS):
        return "heal"
    if any(w in low for w in FAULT_WORDS):
        return "fault"
    if any(w in low for w in ("leader", "failover", "breaker", "degrade", "remap", "takeover")):
        return "warn"
    return "info"


def wanted_event(kind: str) -> bool:
    low = kind.lower()
    return any(w in low for w in EVENT_WORDS)


# A node's load, by what it counts: the unit the topology shows ("txn/s") and its words.
LOAD_WHAT: dict[str, str] = {
    "txn": "transactions it ran",
    "req": "payments that reached it",
    "msg": "messages it handled",
    "pay": "payments it served",
    "dec": "payments it decided",
}


@dataclass(frozen=True, slots=True)
class NodeView:
    """One node as the topology panel draws it."""

    id: str
    city: str
    cell: str
    role: str  # gateway, shard, replica, config, controller, client, or ""
    status: str  # up | crashed | paused
    cut: str = ""  # "" (all links up) | "partial" | "isolated"
    leader: bool = False
    skew_ms: float = 0.0
    load_tps: float = 0.0  # what it served lately, per simulated second: `load_what`s
    # What load_tps counts (LOAD_WHAT): a store's transactions (both lanes, each leg of
    # a cross-shard payment), not payments; a gateway's requests; a consumer's messages.
    load_what: str = "txn"
    queue: int = 0  # events waiting at it (busy or paused)

    @property
    def is_client(self) -> bool:
        return self.role == "client"


@dataclass(frozen=True, slots=True)
class EventLine:
    """One line of the event log, in simulated time."""

    seq: int
    time_ms: float
    kind: str
    node: str
    detail: str
    severity: Severity = "info"


@dataclass(frozen=True, slots=True)
class CheckView:
    """One checker's latest verdict, set against what the chapter expects."""

    name: str
    valid: bool | str  # True | False | "unknown" | "pending"
    summary: str
    outcome: str = ""  # pass | expected-failure | unexpected-failure | unexpected-pass | unknown
    # | by-hand (broken after rules changed by hand: not the chapter's claim)
    expected: str = ""  # the chapter's explanation, when it expects something
    at_ms: float = 0.0  # simulated time of the history it judged
    events: int = 0  # how many history events it judged


@dataclass(frozen=True, slots=True)
class ChapterPanelView:
    """The panel a chapter adds (chapters 5-7: queues, controls, the rehearsal), as styled lines.

    Built by the chapter's view (`tui.views`) from what its stage exposes;
    a style is "", "ok", "bad", "warn", "dim" or "bold".
    """

    titles: tuple[str, ...]  # border titles, fullest first
    lines: tuple[tuple[tuple[str, str], ...], ...]  # each line: (text, style) segments
    keys: str = ""  # the chapter's keys, for the panel's bottom edge


@dataclass
class Frame:
    """Everything on screen at one moment."""

    mode: Literal["live", "replay"]
    chapter: str
    title: str
    scenario: str
    variant: str
    seed: int
    now_ms: float
    speed: float  # asked for: simulated seconds per wall second (0: paused)
    speed_actual: float  # achieved over the last second of wall time
    paused: bool
    profile: str  # traffic profile now: steady, double11, saturate, judged, off
    scale: float
    nodes: list[NodeView]
    layout: dict[str, dict[str, list[str]]]  # city -> cell -> node ids
    cuts: list[str]  # human lines: "hangzhou ✂ shanghai", ...
    bucket_ms: float
    offered: list[float]  # payments started per simulated second, per bucket
    served: list[float]  # payments ok per simulated second, per bucket
    failed: list[float]  # payments failed/unknown per simulated second, per bucket
    p99: list[float]  # reply p99 per bucket (ms)
    served_by_cell: dict[str, list[float]]  # goodput per LDC cell (or per store: served_by)
    offered_tps: float  # over the last second of whole buckets (tui.meter.window_bounds)
    served_tps: float
    p50_ms: float
    p99_ms: float
    in_flight: int
    errors: dict[str, int]  # error kind -> count, last window
    errors_total: dict[str, int]  # error kind -> count, whole run
    payments_total: int
    ok_total: int
    events: list[EventLine]  # new since the last frame (all of them when events_reset)
    events_reset: bool
    checks: list[CheckView]
    checks_running: bool = False
    message: str = ""  # one line for the status bar (last action's result)
    faults_active: list[str] = field(default_factory=list)
    cut_off: list[str] = field(default_factory=list)  # cities and cells cut from the rest
    # What served_by_cell groups by: "cell", or "node" (the store, or the gateway that
    # coordinated a cross-shard payment: the node its reply names as deciding it).
    served_by: str = "cell"
    served_by_cell_tps: dict[str, float] = field(default_factory=dict)  # as served_tps
    failed_tps: float = 0.0  # failed or timed out, over the window served_tps is
    traffic_lane: str = ""  # "production": load-test payments ran beside, not counted
    first_target: str = ""  # the node the topology selects until someone picks one
    # A key's request to move the topology's selection (its count, the node): `x` in
    # chapter 5 selects the producer it killed, so that `r` restarts that one.
    select: tuple[int, str] = (0, "")
    replay_end_ms: float = 0.0  # replay: the stored run's last event time
    chapter_panel: ChapterPanelView | None = None  # chapters 5-7: their own panel (live)


def format_rate(per_s: float) -> str:
    """1234.5 -> '1.23k', 583000 -> '583k': rates in a narrow column."""
    if per_s >= 1e6:
        return f"{per_s / 1e6:.2f}M"
    if per_s >= 1e4:
        return f"{per_s / 1e3:.0f}k"
    if per_s >= 1e3:
        return f"{per_s / 1e3:.2f}k"
    return f"{per_s:.0f}"
