"""Chapters 5-7's panels in a replay (`d11 tui --attach STORE`): what the stored history holds.

A live panel reads node state (the broker leader's queues, the gateways'
rules and breakers, the load test's switch); a store folder keeps the
history, not that state. Chapter 5's history records each message's life
(the half message sent, its commit or rollback, each group's receive), so
its panel is rebuilt from the history at the replay's cursor: each group's
lag, the half messages waiting, the verdicts. Chapters 6 and 7 show what
their history holds and say what only a live run shows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from tui.model import ChapterPanelView
from tui.views.base import Lines

__all__ = ["replay_panel"]

RATE_WINDOW_MS = 1_000.0  # ch6: the events of the last simulated second
LAG_WARN = 100  # as the live panel: this many behind shows in the warning colour
Panel = tuple[tuple[tuple[str, str], ...], ...]


def replay_panel(chapter: str, events: list[Any], at_ms: float) -> ChapterPanelView | None:
    """The chapter's panel at the cursor (`events`: the history up to `at_ms`), or None."""
    if chapter == "ch5":
        return ChapterPanelView(("Queues · rebuilt from the stored history", "Queues"),
                                _mq(events, at_ms))  # fmt: skip
    if chapter == "ch6":
        return ChapterPanelView(("Controls · from the stored history", "Controls"),
                                _degrade(events, at_ms))  # fmt: skip
    if chapter == "ch7":
        return ChapterPanelView(("Rehearsal · from the stored history", "Rehearsal"),
                                _rehearsal(events))  # fmt: skip
    if chapter == "double11":
        out = list(_mq(events, at_ms, lines_max=5))
        out.append((("controls, load test: live only", "dim"),))
        return ChapterPanelView(("Night · rebuilt from the stored history", "Night"), tuple(out))
    return None


def _id(value: Any) -> Any:
    return value.get("id") if isinstance(value, Mapping) else None


def _mq(events: list[Any], at_ms: float, lines_max: int = 8) -> Panel:
    """Chapter 5's queues from the history: what each group has not received of what committed."""
    committed: set[Any] = set()
    resolved: set[Any] = set()  # committed or rolled back, delivered, or set aside
    received: dict[str, set[Any]] = {}
    halves: dict[Any, tuple[float, str]] = {}  # id -> (stored at, producer)
    verdicts: Counter[str] = Counter()
    for e in events:
        if e.type != "ok" or e.f not in ("send", "publish", "commit", "rollback", "receive",
                                          "check-max"):  # fmt: skip
            continue
        mid = _id(e.value)
        if e.f == "send":
            halves.setdefault(mid, (e.time_ms, str(e.process).split("#")[0]))
            continue
        resolved.add(mid)
        if e.f in ("commit", "publish"):
            committed.add(mid)
        if e.f == "receive":
            received.setdefault(str(e.value.get("group", "default")), set()).add(mid)
        else:
            verdicts[e.f] += 1
            if isinstance(e.value, Mapping) and e.value.get("by") == "check":
                verdicts["by-check"] += 1
    out = Lines()
    out.add(f"{'group':<15}{'lag':>6}{'received':>10}", "dim").end()
    for group, got in received.items():
        lag = len(committed - got)
        out.add(f"  {group:<13}", "bold").add(f"{lag:>6,}", "warn" if lag >= LAG_WARN else "")
        out.add(f"{len(got):>10,}").end()
    if not received:
        out.add("no delivery yet", "dim").end()
    waiting = {mid: h for mid, h in halves.items() if mid not in resolved}
    out.add("half msgs waiting ").add(f"{len(waiting):,}", "warn" if waiting else "ok")
    if waiting:
        age_s = (at_ms - min(t for t, _ in waiting.values())) / 1000.0
        out.add(f", oldest {age_s:.0f} s", "dim")
    out.end()
    out.add("commit ").add(f"{verdicts['commit']:,}", "ok")
    out.add(f" rollback {verdicts['rollback']:,}")
    out.add(" check ").add(f"{verdicts['by-check']:,}", "warn" if verdicts["by-check"] else "")
    out.end()
    lines = list(out.done())[: lines_max - 1]
    lines.append((("retries, dead letters: live only", "dim"),))
    return tuple(lines)


def _degrade(events: list[Any], at_ms: float) -> Panel:
    """Chapter 6: its decisions the history records, per second; rules and breakers are state."""
    recent = Counter(
        e.f.removeprefix("degrade:")
        for e in events
        if e.f.startswith("degrade:") and e.time_ms > at_ms - RATE_WINDOW_MS
    )
    changes = sum(1 for e in events if e.f in ("degrade:change", "degrade:applied"))
    out = Lines()
    out.add("last 1 s, as recorded", "dim").end()
    for kind, n in recent.most_common(4):
        out.add(f"  {kind:<18}").add(f"{n:>6,}").end()
    if not recent:
        out.add("  no control acted", "dim").end()
    out.add("operator changes ").add(f"{changes:,}").end()
    out.add("rules, breakers, switches: live", "dim").end()
    out.add("only (not in a store)", "dim").end()
    return out.done()


def _rehearsal(events: list[Any]) -> Panel:
    """Chapter 7: the load test's payments beside production's, and the marked spans."""
    counts = Counter((e.f, e.type) for e in events if e.f in ("transfer", "load-test:transfer"))
    marked = sum(
        1
        for e in events
        if e.f == "span" and isinstance(e.value, Mapping) and e.value.get("mark") == "T"
    )
    out = Lines()
    out.add(f"{'':<12}{'paid':>8}{'ok':>8}", "dim").end()
    for label, f in (("production", "transfer"), ("load test", "load-test:transfer")):
        out.add(f"{label:<12}", "bold").add(f"{counts[(f, 'invoke')]:>8,}")
        out.add(f"{counts[(f, 'ok')]:>8,}", "ok").end()
    out.add("spans marked T ").add(f"{marked:,}").end()
    out.add("isolation: the checks (end)", "dim").end()
    out.add("kill switch state: live only", "dim").end()
    return out.done()
