"""Chapter 6's panel: the rules' passed and blocked QPS, the retry budgets, breakers, switches.

It reads the payment gateways' sidecars (their guard's statistics, flow and
hot-parameter rules, breakers and switch boards), the edge's retry budget,
and the history's refusals by reason. Its keys are an operator's: flip the
selected dependency's degrade switch, slow that dependency down, tighten
or loosen the flow rule. Rule and switch changes go through the
deployment's control desk, which records each as `degrade:change` and whose
control plane pushes it to every gateway until acknowledged
(`degrade:applied`); a slowdown is recorded as a `degrade:slow` note.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import replace
from typing import Any, Protocol

from checks.history import NEMESIS, Event
from checks.slo import SloTargets
from checks.verdict import Verdict
from reference.degrade import Sidecar
from reference.degrade.switches import Switch
from tui.views.base import (
    ChapterView,
    HistoryTail,
    Lines,
    LiveCheck,
    Session,
    ViewError,
    ViewKey,
    rate_text,
)

__all__ = ["DegradeSource", "DegradeView"]

RESOURCE = "pay"
SLOW_EXTRA_MS = 2_000.0  # what `d` adds to the dependency's answers (the scenario's slowdown)
TIGHTEN, LOOSEN = 0.8, 1.25  # one press of [ or ] on the flow rule's count
FLOW_QPS_MIN = 1.0
BLOCK_WINDOW_MS = 1_000.0
ETERNITY_MS = float("inf")
BREAKER_STYLE = {"closed": "ok", "open": "bad", "half-open": "warn"}


class DegradeSource(Protocol):
    """What chapter 6's deployment exposes that this panel reads and its keys use."""

    rt: Any
    history: list[Any]
    roles: dict[str, list[str]]
    dependencies: dict[str, Any]  # path -> reference.degrade.DependencyPlan
    desk: Any  # reference.degrade.ControlDesk

    def capacity_tps(self) -> float: ...
    def change(self, what: str, value: Any) -> int: ...
    def note(self, kind: str, detail: str = "") -> None: ...
    def add_to_timeline(self, at_ms: float, kind: str, detail: str = "") -> None: ...


def window_qps(window: Any, now_ms: float) -> tuple[float, float]:
    """(passed, blocked) per second over a sliding window, read without touching it.

    `SlidingWindow.passed` resets a stale bucket first: harmless for the node,
    but the panel reads at the simulator's time, not the node's (a skewed clock),
    and must not move any state of the run."""
    # Whole buckets only (the current one is still filling): those that ended within
    # the last interval.
    bucket_ms = window.bucket_ms
    oldest_ms = now_ms - window.interval_ms - bucket_ms
    whole = [b for b in window.ring if oldest_ms < b.start_ms and b.start_ms + bucket_ms <= now_ms]
    if not whole:
        return 0.0, 0.0
    per_s = 1000.0 / (len(whole) * bucket_ms)
    return sum(b.passed for b in whole) * per_s, sum(b.blocked for b in whole) * per_s


def live_slo(
    whole: LiveCheck,
    recover_ms: float = SloTargets.recover_within_ms,
    gateways: int = 1,
    answered_within_ms: float = 0.0,
) -> LiveCheck:
    """The SLO check on a run still going, on the payments that have had their
    answers: those started `answered_within_ms` (the clients' deadline) or more
    ago (`answered_prefix`). On the whole history, the last second's payments,
    still in flight, made goodput look short and the recovery "never" (a
    newcomer saw it flip to "holds" two seconds later). A spike (`m`) is
    judged once it is over and its recovery time has passed in that prefix;
    before that, "back to normal never" would only mean "not yet". A verdict
    on a run whose rules or switches someone changed by hand (`[`, `]`, `f`)
    says so, and the flow rule in force: the chapter's claim is for its own
    rules (`by_hand`, which the live view does not count as the chapter's
    claim broken)."""

    def slo(history: list[Event]) -> Verdict:
        return _by_hand(_slo(history), history, gateways)

    def _slo(history: list[Event]) -> Verdict:
        marks = {e.f: e.time_ms for e in history if e.process == NEMESIS}
        start_ms, end_ms = marks.get("spike-start"), marks.get("spike-end")
        now_ms = history[-1].time_ms if history else 0.0
        answered_ms = now_ms - answered_within_ms  # every payment before this has ended
        if start_ms is not None and (
            end_ms is None
            or end_ms < start_ms
            or answered_ms < end_ms + recover_ms + SloTargets.window_ms
        ):
            return Verdict(
                "slo", "unknown",
                f"spike from t={start_ms / 1000:.1f} s: judged once it is over and "
                f"{recover_ms / 1000:g} s of recovery have passed (and their payments "
                "have been answered)",
            )  # fmt: skip
        return whole(answered_prefix(history, answered_ms) if answered_within_ms else history)

    return slo


def answered_prefix(history: list[Event], until_ms: float) -> list[Event]:
    """`history` without the operations started after `until_ms` (their invoke and
    their end): a client runs one operation at a time per process, so an event
    after a dropped invoke, of the same process, is that operation's end."""
    out: list[Event] = []
    dropped: set[object] = set()
    for e in history:
        if e.process == NEMESIS:
            out.append(e)
        elif e.type == "invoke" and e.time_ms > until_ms:
            dropped.add(e.process)
        elif e.process in dropped:
            dropped.discard(e.process)  # its end: dropped with its start
        else:
            out.append(e)
    return out


def _by_hand(verdict: Verdict, history: list[Event], gateways: int) -> Verdict:
    """`verdict`, labelled when it is broken after changes by hand (the desk's)."""
    changes = [e.value for e in history if e.f == "degrade:change" and isinstance(e.value, dict)]
    if verdict.valid is not False or not changes:
        return verdict
    words = []
    rules = [float(c["flow_qps"]) for c in changes if c.get("flow_qps") is not None]
    if rules:
        lowest = min(rules) * max(1, gateways)
        capacity = float(verdict.details.get("capacity_tps") or 0.0)
        share = f" = {lowest / capacity:.0%} of capacity" if capacity else ""
        words.append(f"flow rule down to {lowest:.0f}/s{share}")
    switches = sorted({f"{c['switch'][0]} {c['switch'][1]}" for c in changes if c.get("switch")})
    if switches:
        words.append("switches " + ", ".join(switches))
    label = f"after changes by hand ({'; '.join(words)}): the chapter's claim is for its own rules"
    details = {**verdict.details, "by_hand": len(changes)}
    return replace(verdict, summary=f"{verdict.summary}; {label}", details=details)


class DegradeView(ChapterView):
    titles = (
        "Controls · rules, budgets, breakers, switches",
        "Controls · rules, switches",
        "Controls",
    )
    keys = (
        ViewKey("f", "flip", "flip switch",
                "Flip the selected dependency's degrade switch as shown (on -> off, OFF -> "
                "on), by hand; against the plan, back to it (pushed to every gateway)"),
        ViewKey("d", "slow", "slow dep",
                "Make the selected dependency answer 2 s late, or on time again"),
        ViewKey("left_square_bracket", "tighten", "tighten", "Tighten the flow rule on pay "
                "(count x0.8), pushed to every gateway", display="["),
        ViewKey("right_square_bracket", "loosen", "loosen", "Loosen the flow rule on pay "
                "(count x1.25), pushed to every gateway", display="]"),
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__()
        self.tail = HistoryTail()
        self.refusals: deque[tuple[float, str]] = deque()  # (time, reason) over the last second
        self.plan_on: dict[str, bool] = {}  # path -> the plan's switch as last told in Events

    def live_checks(self, session: Session) -> dict[str, LiveCheck]:
        if "slo" not in session.dep.checks:
            return {}
        gateways = len(self.gateways(session.dep))
        deadline_ms = float(getattr(session.dep, "deadline_ms", 0.0))
        slo = live_slo(session.dep.checks["slo"], gateways=gateways, answered_within_ms=deadline_ms)
        return {"slo": slo}

    # -- reading the run -----------------------------------------------------------------
    def gateways(self, dep: DegradeSource) -> list[str]:
        return [g for g in dep.roles.get("gateway", []) if g.startswith("gw-pay")]

    def _sidecar(self, session: Session, nid: str) -> Sidecar | None:
        if session.rt.status(nid) == "crashed":
            return None
        node = session.rt.node(nid)
        return node if isinstance(node, Sidecar) else None

    def _count_refusals(self, dep: DegradeSource, now_ms: float) -> Counter[str]:
        """Refusals per reason over the last second; the plan's switch flips to Events."""
        for e in self.tail.new(dep.history):
            if e.type == "fail" and isinstance(e.extra, dict) and e.extra.get("error"):
                self.refusals.append((e.time_ms, str(e.extra["error"])))
            elif e.f == "degrade:switch" and isinstance(e.value, dict):
                self._plan_flipped(dep, e.time_ms, str(e.value["path"]), bool(e.value["on"]))
        while self.refusals and self.refusals[0][0] < now_ms - BLOCK_WINDOW_MS:
            self.refusals.popleft()
        return Counter(reason for _, reason in self.refusals)

    def _plan_flipped(self, dep: DegradeSource, at_ms: float, path: str, on: bool) -> None:
        """A switch the degrade plan flipped (on any gateway), in the Events panel with
        the plan's reason, once per change of state: the panel's OFF is explained."""
        if self.plan_on.get(path, True) == on:
            return
        self.plan_on[path] = on
        switch = next((sw for sw in _plan_switches(dep) if sw.path == path), None)
        if switch is None:
            why = "by the degrade plan"
        elif on:
            why = (f"load on {RESOURCE} below {switch.on_below:.0%} of its capacity for "
                   f"{switch.hold_ms / 1000:g} s")  # fmt: skip
        else:
            why = f"load on {RESOURCE} reached {switch.off_at:.0%} of its capacity"
        word = "on" if on else "OFF"
        dep.add_to_timeline(at_ms, "degrade:switch", f"plan turned {path} {word}: {why}")

    def flow_count(self, session: Session) -> float | None:
        """The flow rule's count on pay now: the desk's last change, else the first gateway's."""
        dep: DegradeSource = session.dep
        if dep.desk.flow_qps >= 0:
            return float(dep.desk.flow_qps)
        for gw in self.gateways(dep):
            sc = self._sidecar(session, gw)
            if sc is not None and sc.guard is not None:
                for rule in sc.guard.flow.rules:
                    if rule.resource == RESOURCE:
                        return float(rule.count)
            if sc is not None and sc.config.cluster is not None:
                return float(sc.config.cluster.count) / max(1, len(self.gateways(dep)))
        return None

    # -- the panel -----------------------------------------------------------------------
    def build(self, session: Session) -> tuple[tuple[tuple[str, str], ...], ...]:
        dep: DegradeSource = session.dep
        now_ms = session.rt.now_ms
        blocked_by = self._count_refusals(dep, now_ms)
        out = Lines()
        # At most 8 lines of at most 34 columns: the panel at the smallest screen (100 x 28).
        gateways = self.gateways(dep)
        sidecars = self._flow(session, out, blocked_by)
        out.end()
        params = [p for s in sidecars if s.guard is not None for p in s.guard.params]
        if params:
            hot = params[0].rule
            hot_blocked = sum(n for r, n in blocked_by.items() if r.startswith("param"))
            out.add("hot ", "bold").add(f"≤{hot.count:.0f}/s per {hot.param} block ")
            out.add(f"{rate_text(hot_blocked)}/s", "bad" if hot_blocked else "").end()
        others = {r: n for r, n in blocked_by.items() if not r.startswith(("flow", "param"))}
        if others:
            words = " ".join(f"{r} {rate_text(n)}/s" for r, n in sorted(others.items()))
            out.add("refused ", "bold").add(words, "warn").end()
        out.add("retries:", "bold")  # each layer's retry budget, tokens left
        budgets = 0
        for nid in [*[g for g in dep.roles.get("gateway", []) if g not in gateways], *gateways]:
            sc = self._sidecar(session, nid)
            if sc is not None and sc.throttle is not None and budgets < 2:
                t, budgets = sc.throttle, budgets + 1
                out.add(f" {nid.removeprefix('gw-')} ")
                out.add(f"{t.tokens:.1f}/{t.max_tokens:g}", "ok" if t.tokens > t.max_tokens / 2
                        else "bad")  # fmt: skip
        if not budgets:
            out.add(" no budget", "warn")
        out.end()
        out.add(f"{'path':<10}{'switch':<9}{'breaker':<10}slow", "dim").end()
        for path, word, on, state, extra_ms in self._paths(dep, sidecars, now_ms):
            out.add(f"{path:<10}").add(f"{word:<9}", "ok" if on else "warn")
            out.add(f"{state:<10}", BREAKER_STYLE.get(state, "dim"))
            out.add(f"+{extra_ms / 1000:g}s" if extra_ms else "", "bad").end()
        return out.done()

    def brief(self, session: Session, out: Lines) -> None:
        """Two lines for the capstone's panel: the flow rule; each path's switch and breaker."""
        dep: DegradeSource = session.dep
        now_ms = session.rt.now_ms
        out.add("controls ", "bold")
        sidecars = self._flow(session, out, self._count_refusals(dep, now_ms))
        out.end()
        out.add(" ")
        for path, word, on, state, extra_ms in self._paths(dep, sidecars, now_ms):
            out.add(f" {path} ").add(word, "ok" if on else "warn")
            if state not in ("closed", "—"):
                out.add(f" {state}", BREAKER_STYLE.get(state, "dim"))
            if extra_ms:
                out.add(f" +{extra_ms / 1000:g}s", "bad")
        out.end()

    def _sidecars(self, session: Session) -> list[Sidecar]:
        gateways = self.gateways(session.dep)
        return [s for s in (self._sidecar(session, g) for g in gateways) if s is not None]

    def _flow(self, session: Session, out: Lines, blocked_by: Counter[str]) -> list[Sidecar]:
        """The flow rule's count, passed and blocked per second (one line, not ended)."""
        now_ms = session.rt.now_ms
        sidecars = self._sidecars(session)
        passed = sum(window_qps(s.guard.stats.window(RESOURCE), now_ms)[0]
                     for s in sidecars if s.guard is not None)  # fmt: skip
        count = self.flow_count(session)
        flow_blocked = sum(n for r, n in blocked_by.items() if r.startswith("flow"))
        if count is None:
            out.add("flow ", "bold").add("no rule", "warn")
        else:
            out.add("flow ", "bold").add(f"≤{count:.0f}/s")
        out.add(" pass ").add(f"{rate_text(passed)}/s", "ok")
        out.add(" block ").add(f"{rate_text(flow_blocked)}/s", "bad" if flow_blocked else "")
        return sidecars

    @staticmethod
    def _paths(
        dep: DegradeSource, sidecars: list[Sidecar], now_ms: float
    ) -> list[tuple[str, str, bool, str, float]]:
        """Per best-effort path: (path, switch word, on?, breaker state, slowdown ms)."""
        board = next((s.board for s in sidecars if s.board is not None), None)
        breakers = next((s.breakers for s in sidecars if s.breakers), {})
        out = []
        for path, plan in dep.dependencies.items():
            forced = dep.desk.forced.get(path, "plan")
            on = board.is_on(path) if board is not None else True
            word = ("on" if on else "OFF") + ("" if forced == "plan" else "·you")
            b = breakers.get(path)
            out.append((path, word, on, b.state if b is not None else "—", plan.extra_ms(now_ms)))
        return out

    # -- the keys ------------------------------------------------------------------------
    def _path(self, dep: DegradeSource, node: str) -> str:
        if node not in dep.dependencies:
            paths = ", ".join(dep.dependencies)
            raise ViewError(f"pick a best-effort dependency first (↑↓: {paths})")
        return node

    def do_flip(self, session: Session, node: str) -> str:
        """Flip what the panel shows: a switch the plan turned OFF goes on by hand (not
        "off by hand", which changed nothing you could see); pinned against the plan,
        back to the plan."""
        dep: DegradeSource = session.dep
        path = self._path(dep, node)
        pinned = dep.desk.forced.get(path, "plan")  # the desk's: pushed, maybe not applied yet
        board = next((s.board for s in self._sidecars(session) if s.board is not None), None)
        plan_on = board is None or path not in board.off  # the plan's own state
        shown_on = plan_on if pinned == "plan" else pinned == "on"
        state = "on" if not shown_on else "off"
        if (state == "on") == plan_on and pinned != "plan":
            state = "plan"
        version = dep.change("switch", f"{path}={state}")
        plan_word = "on" if plan_on else "OFF"
        meaning = {
            "off": f"off by hand (the plan has it {plan_word})",
            "on": f"on by hand (the plan has it {plan_word})",
            "plan": f"back to the plan, which has it {plan_word}",
        }[state]
        return _changed(session, f"switch {path}: {meaning} (change v{version})")

    def do_slow(self, session: Session, node: str) -> str:
        dep: DegradeSource = session.dep
        path = self._path(dep, node)
        plan = dep.dependencies[path]
        now_ms = session.rt.now_ms
        if plan.extra_ms(now_ms):
            plan.slow[:] = [(a, min(b, now_ms), x) for a, b, x in plan.slow]
            dep.note("degrade:slow", f"{path} answers on time again")
            return f"{path} answers on time again"
        plan.slow.append((now_ms, ETERNITY_MS, SLOW_EXTRA_MS))
        dep.note("degrade:slow", f"{path} answers {SLOW_EXTRA_MS / 1000:g} s late")
        return f"{path} answers {SLOW_EXTRA_MS / 1000:g} s late from now (d again: on time)"

    def _scale_rule(self, session: Session, factor: float) -> str:
        count = self.flow_count(session)
        if count is None:  # no rule yet (variant none): start from the capacity
            count = session.dep.capacity_tps() / max(1, len(self.gateways(session.dep)))
        new = max(FLOW_QPS_MIN, round(count * factor, 2))
        version = session.dep.change("flow-qps", new)
        what = f"flow rule on pay: {count:.0f} -> {new:.0f}/s (change v{version})"
        return _changed(session, what)

    def do_tighten(self, session: Session, node: str) -> str:
        return self._scale_rule(session, TIGHTEN)

    def do_loosen(self, session: Session, node: str) -> str:
        return self._scale_rule(session, LOOSEN)


def _plan_switches(dep: DegradeSource) -> tuple[Switch, ...]:
    """The degrade plan's switches, from a gateway that holds them."""
    for nid in dep.roles.get("gateway", []):
        node = dep.rt.node(nid) if dep.rt.status(nid) != "crashed" else None
        if isinstance(node, Sidecar) and node.board is not None:
            return node.board.plan.switches
    return ()


def _changed(session: Session, what: str) -> str:
    """A change through the control desk, in the Events panel too (its history event,
    degrade:change, the desk records; the panel lists the timeline's rows)."""
    session.dep.add_to_timeline(session.rt.now_ms, "degrade:change", what)
    return f"{what}, pushed to every gateway"
