"""Chapter 7's panel: load-test traffic beside production, where it wrote, the isolation verdict.

It reads the history the stage writes: the clients' operations (a tagged
payment is `f="load-test:transfer"`) and every traced hop's span
(`process="trace"`, `f="span"`, with its mark and the accounts it wrote);
the verdict is the isolation checker's latest, as the checks panel has it.
Its key is the drill every load test needs first: the kill switch that
stops all tagged traffic at once (the stage's `kill_switch`, noted in the
history). A crash or a city cut at the peak are the usual keys (k, c).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol

from tui.meter import LOAD_TEST_F, window_bounds
from tui.model import ChapterPanelView
from tui.views.base import ChapterView, HistoryTail, Lines, Session, ViewKey, rate_text

__all__ = ["RehearsalSource", "RehearsalView"]

SHADOW_PREFIX = "pt_"  # as reference.tracing names shadow accounts
# Rates over the traffic panel's window (tui.meter.window_bounds): production's row
# here is its headline, figure for figure ("offered 170" there, "182" here, before).
RATE_WINDOW_MS = 1_000.0
DRILL_KINDS = ("crash", "restart", "isolate", "heal", "kill-switch", "spike", "pause", "resume")
TAGGED_IDS_MAX = 50_000  # load-test payments remembered to find their untagged hops
DRILLS_SHOWN = 2  # the latest ones (the event log has them all)


class RehearsalSource(Protocol):
    """What chapter 7's deployment exposes that this panel reads and its key uses."""

    rt: Any
    history: list[Any]
    timeline: list[tuple[float, str, str]]

    def kill_switch(self, enabled: bool) -> None: ...


class RehearsalView(ChapterView):
    titles = ("Rehearsal · load test beside production", "Rehearsal")
    keys = (
        ViewKey("o", "kill-switch", "load test off/on",
                "The kill switch: every gateway stops (or resumes) load-test traffic at once"),
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__()
        self.tail = HistoryTail()
        # (time, lane, what): lane "prod" | "test"; what "invoke" | "ok" | "fail"
        self.ops: deque[tuple[float, str, str]] = deque()
        # (time, tagged, wrote shadow, wrote production)
        self.spans: deque[tuple[float, bool, int, int]] = deque()
        self.lost_tags = 0  # untagged spans of load-test payments (whole run): the leak
        self.tagged_ids: dict[str, None] = {}  # recent load-test payment ids, oldest first
        self.load_test_on = True
        self._window_ms = window_bounds(0.0, RATE_WINDOW_MS)  # the one counted over

    def panel(self, session: Session) -> ChapterPanelView:
        """Rebuilt as soon as the window moves, so it never shows the last one's rates
        beside a traffic panel showing this one's."""
        if window_bounds(session.rt.now_ms, RATE_WINDOW_MS) != self._window_ms:
            self.dirty = True
        return super().panel(session)

    def _feed(self, dep: RehearsalSource, now_ms: float) -> None:
        for e in self.tail.new(dep.history):
            if e.f == "span" and e.process == "trace" and isinstance(e.value, dict):
                v = e.value
                tagged = v.get("mark") == "T"
                writes = [str(a) for a in v.get("writes", ())]
                shadow = sum(1 for a in writes if a.startswith(SHADOW_PREFIX))
                prod = len(writes) - shadow
                ids = self.tagged_ids
                if not tagged and (v.get("trace_id") in ids or v.get("payment") in ids):
                    self.lost_tags += 1  # as the isolation checker: fail closed
                self.spans.append((e.time_ms, tagged, shadow, prod))
            elif e.f in ("transfer", LOAD_TEST_F) and e.type in ("invoke", "ok", "fail", "info"):
                # A timeout ("info": unknown) is failed here, as in the traffic panel.
                what = "fail" if e.type == "info" else e.type
                self.ops.append((e.time_ms, "test" if e.f == LOAD_TEST_F else "prod", what))
                if e.f == LOAD_TEST_F and e.type == "invoke" and isinstance(e.value, dict):
                    self.tagged_ids[str(e.value.get("id"))] = None
                    if len(self.tagged_ids) > TAGGED_IDS_MAX:
                        del self.tagged_ids[next(iter(self.tagged_ids))]
        self._window_ms = window_bounds(now_ms, RATE_WINDOW_MS)
        oldest_ms = self._window_ms[0]
        while self.ops and self.ops[0][0] < oldest_ms:
            self.ops.popleft()
        while self.spans and self.spans[0][0] < oldest_ms:
            self.spans.popleft()

    def build(self, session: Session) -> tuple[tuple[tuple[str, str], ...], ...]:
        dep: RehearsalSource = session.dep
        self._feed(dep, session.rt.now_ms)
        start_ms, end_ms = self._window_ms
        per_s = 1000.0 / (end_ms - start_ms)
        spans = [s for s in self.spans if s[0] < end_ms]  # not the bucket still filling
        out = Lines()
        # At most 8 lines of at most 34 columns: the panel at the smallest screen (100 x 28).
        out.add(f"{'per second':<12}{'offered':>8}{'ok':>7}{'failed':>7}", "dim").end()
        for lane, label in (("prod", "production"), ("test", "load test")):
            n = self._rates(lane)
            out.add(f"{label:<12}", "bold")
            out.add(f"{rate_text(n['invoke']):>8}").add(f"{rate_text(n['ok']):>7}", "ok")
            out.add(f"{rate_text(n['fail']):>7}", "bad" if n["fail"] else "").end()
        on = self.load_test_on
        out.add("load test ").add("on" if on else "OFF (kill switch)", "ok" if on else "warn").end()
        tagged = [s for s in spans if s[1]]
        plain = [s for s in spans if not s[1]]
        to_shadow = sum(s[2] for s in tagged) * per_s
        out.add("tagged writes ").add(f"shadow {rate_text(to_shadow)}", "ok")
        leak_now = sum(s[3] for s in tagged) * per_s
        out.add(" prod ").add(rate_text(leak_now), "bad" if leak_now else "ok").end()
        stray = sum(s[2] for s in plain) * per_s
        out.add("prod writes   ").add(f"prod {rate_text(sum(s[3] for s in plain) * per_s)}")
        out.add(" shadow ").add(rate_text(stray), "bad" if stray else "ok").end()
        self._isolation(session, out)
        out.end()
        drills = [(t, k, d) for t, k, d in dep.timeline if k in DRILL_KINDS][-DRILLS_SHOWN:]
        if drills:
            out.add("drills ", "bold")
            out.add("; ".join(f"{t / 1000:.0f}s {k} {d}" for t, k, d in drills), "dim").end()
        return out.done()

    def brief(self, session: Session, out: Lines) -> None:
        """Two lines for the capstone's panel: both lanes' goodput; the isolation verdict."""
        self._feed(session.dep, session.rt.now_ms)
        prod, test = self._rates("prod"), self._rates("test")
        out.add("load ", "bold").add(f"ok/s prod {rate_text(prod['ok'])} test ")
        # Two rates over the last second, not a share: ok can outrun sent (answers to
        # payments sent the second before), so not "75 of 73".
        out.add(rate_text(test["ok"]), "ok").add(" sent ").add(rate_text(test["invoke"]))
        on = self.load_test_on
        out.add(" on" if on else " OFF", "ok" if on else "warn").end()
        out.add("  ")
        self._isolation(session, out)
        out.end()

    def _rates(self, lane: str) -> dict[str, float]:
        """Offered ("invoke"), acknowledged ("ok") and failed or timed out per second in
        `lane`, over the window (`_feed` moved it)."""
        start_ms, end_ms = self._window_ms
        per_s = 1000.0 / (end_ms - start_ms)
        return {
            k: sum(1 for t, ln, w in self.ops if ln == lane and w == k and t < end_ms) * per_s
            for k in ("invoke", "ok", "fail")
        }

    def _isolation(self, session: Session, out: Lines) -> None:
        """The isolation checker's latest verdict and the lost tags seen (not ended)."""
        verdict = next((c for c in session.checks if c.name == "isolation"), None)
        out.add("isolation ", "bold")
        if verdict is None or verdict.valid == "pending":
            out.add("… pending", "dim")
        elif verdict.valid is True:
            out.add("✔ holds", "ok")
        elif verdict.valid is False:
            out.add("✖ BROKEN", "bad")
        else:
            out.add("? unknown", "warn")
        lost = self.lost_tags
        out.add(" lost tags ").add(f"{lost:,}", "bad" if lost else "ok")

    def do_kill_switch(self, session: Session, node: str) -> str:
        self.load_test_on = not self.load_test_on
        session.dep.kill_switch(self.load_test_on)
        if self.load_test_on:
            return "kill switch released: load-test traffic resumes at every gateway"
        return "kill switch: every gateway refuses load-test traffic from now (o again resumes)"
