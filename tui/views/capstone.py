"""The capstone's panel (`d11 tui double11`): chapters 5, 6 and 7's panels in brief, one night.

The capstone runs each chapter's stage as it is, side by side on one
simulator (`chapters.capstone`), and exposes them as `parts`. This view
gives each of chapters 5-7's views its part, as if that part were the
session's whole deployment (`PartSession`), asks each for two lines, and
adds the night's own drills (the city lost, the stalled group, the elastic move). Every
chapter key works here too, on its part: `l` and `x` on the queue, `f`,
`d`, `[` and `]` on the degrade controls, `o` on the load test.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Protocol

from checks.history import Event
from checks.verdict import Verdict
from tui.model import CheckView
from tui.views.base import (
    ChapterView,
    Lines,
    LiveCheck,
    Session,
    ViewError,
    ViewKey,
    final_reads_in,
)
from tui.views.degrade import DegradeView
from tui.views.mq import MqView, mq_live_checks
from tui.views.rehearsal import RehearsalView

__all__ = ["CapstoneSource", "CapstoneView", "PartSession"]

PARTS: dict[str, tuple[str, type[ChapterView]]] = {  # part -> (its chapter, its view)
    "mq": ("ch5", MqView),
    "degrade": ("ch6", DegradeView),
    "rehearsal": ("ch7", RehearsalView),
}
NIGHT_KINDS = ("city-lost", "consumer-lag", "consumer-resume", "drained", "crash", "isolate",
               "kill-switch", "spike", "failover-complete", "elastic-move")  # fmt: skip
NIGHT_SHOWN = 2
PIPELINE = "double11:pipeline"
IN_FLIGHT = "paid-not-settled"  # on a prefix: paid, its settlement still on its way


class CapstoneSource(Protocol):
    """What the capstone's deployment exposes that this panel reads."""

    parts: dict[str, Any]  # part name -> that chapter's deployment
    timeline: list[tuple[float, str, str]]

    def part_history(self, name: str, merged: list[Any] | None = None) -> list[Any]: ...


class PartSession:
    """The session as one part's view sees it: that part's deployment, that part's checks
    (the capstone names them `ch5:delivery`; the view knows `delivery`)."""

    def __init__(self, session: Session, part: Any, chapter: str) -> None:
        self._session = session
        self._prefix = f"{chapter}:"
        self.dep = part
        self.rt = session.rt

    @property
    def checks(self) -> list[CheckView]:
        n = len(self._prefix)
        return [
            replace(c, name=c.name[n:]) for c in self._session.checks if c.name[:n] == self._prefix
        ]

    def step(self, sim_ms: float = 100.0) -> None:
        self._session.step(sim_ms)

    def kill(self, node: str) -> None:
        self._session.kill(node)

    def restart(self, node: str) -> None:
        self._session.restart(node)

    def toggle_node_pause(self, node: str) -> None:
        self._session.toggle_node_pause(node)

    def select(self, node: str) -> None:
        self._session.select(node)

    def history_cut(self) -> bool:
        return self._session.history_cut()


# On the night the kill switch (chapter 7's `o`) reaches the pipeline's cell gateways
# too (chapters.capstone.parts.NightRehearsal): its help says so.
NIGHT_KILL_SWITCH = (
    "The kill switch: every gateway, chapter 7's and the pipeline's cell gateways, "
    "stops (or resumes) load-test traffic at once"
)


def _night_key(k: ViewKey) -> ViewKey:
    return replace(k, help=NIGHT_KILL_SWITCH) if k.action == "kill-switch" else k


class CapstoneView(ChapterView):
    titles = ("Double 11 night · queues, controls, load test", "Night · queues, controls", "Night")
    keys: tuple[ViewKey, ...] = tuple(
        _night_key(k) for _, view in PARTS.values() for k in view.keys
    )

    def __init__(self) -> None:
        super().__init__()
        self.views: dict[str, ChapterView] = {name: view() for name, (_, view) in PARTS.items()}

    def _part(self, session: Session, name: str) -> PartSession | None:
        dep: CapstoneSource = session.dep
        part = dep.parts.get(name)
        return PartSession(session, part, PARTS[name][0]) if part is not None else None

    def build(self, session: Session) -> tuple[tuple[tuple[str, str], ...], ...]:
        out = Lines()
        for name, view in self.views.items():
            part = self._part(session, name)
            if part is not None:
                view.brief(part, out)
        dep: CapstoneSource = session.dep
        night = [(t, k, d) for t, k, d in dep.timeline if k in NIGHT_KINDS][-NIGHT_SHOWN:]
        if night:
            out.add("night ", "bold")
            out.add("; ".join(f"{t / 1000:.0f}s {k} {d}" for t, k, d in night), "dim").end()
        return out.done()

    def live_checks(self, session: Session) -> dict[str, LiveCheck]:
        """Chapter 5's delivery and half-message checks judge the queue part's prefix."""
        dep: CapstoneSource = session.dep
        part = dep.parts.get("mq")
        if part is None:
            return {}
        live = mq_live_checks(part, session.history_cut, lambda h: _mq_events(dep, h))
        checks = {f"{PARTS['mq'][0]}:{name}": check for name, check in live.items()}
        whole = session.dep.checks.get(PIPELINE)
        if whole is not None:
            checks[PIPELINE] = live_pipeline(whole)
        return checks

    def act(self, session: Session, action: str, node: str) -> str:
        self.dirty = True
        for name, view in self.views.items():
            if any(k.action == action for k in view.keys):
                part = self._part(session, name)
                if part is None:
                    raise ViewError(f"this night has no {name} part")
                return view.act(part, action, node)
        raise AssertionError(action)


def live_pipeline(whole: LiveCheck) -> LiveCheck:
    """The capstone's pipeline check on a run still going: a payment paid and not
    settled yet is in flight (its message is on its way through the queue, or the
    settlement group is stalled), not a violation; until j's final reads, only a
    payment settled twice, or settled though its user saw it declined, is red."""

    def pipeline(history: list[Event]) -> Verdict:
        verdict: Verdict = whole(history)
        if verdict.valid is not False or final_reads_in(history):
            return verdict
        problems = verdict.details.get("problems", {})
        waiting = int(problems.get(IN_FLIGHT, 0))
        wrong = {k: n for k, n in problems.items() if k != IN_FLIGHT}
        in_flight = f"{waiting} paid and not settled yet are in flight (j's final reads judge them)"
        details = {**verdict.details, "in_flight": waiting, "problems": wrong}
        if wrong:
            witness = [p for p in verdict.witness or [] if p.get("kind") != IN_FLIGHT]
            kinds = ", ".join(f"{k} x{n}" for k, n in wrong.items())
            summary = f"Payments and settlements disagree ({kinds}); so far {in_flight}."
            return Verdict(verdict.checker, False, summary, details, witness)
        paid, settled = verdict.details.get("paid", 0), verdict.details.get("settled", 0)
        summary = f"So far {paid} paid, {settled} settled, none twice or unpaid; {in_flight}."
        return Verdict(verdict.checker, True, summary, details)

    return pipeline


def _mq_events(dep: CapstoneSource, history: list[Any]) -> list[Any]:
    """The queue part's events in the merged history, without the trace spans the
    merged history shares out (chapter 7's): a span has no invoke, and the delivery
    checker, reading them as operations, stopped at the first one."""
    return dep.part_history("mq", [e for e in history if e.process != "trace"])
