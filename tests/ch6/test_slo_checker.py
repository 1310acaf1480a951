"""The SLO checker on small hand-made histories: each problem it names, it finds."""

from __future__ import annotations

from typing import Any

from checks.history import Event
from checks.slo import SloTargets, check_slo

TARGETS = SloTargets(capacity_tps=10.0, deadline_ms=1_000.0, recover_within_ms=2_000.0)


class H:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.proc = 0

    def add(self, type_: str, process: Any, f: str, value: Any, t: float, **extra: Any) -> None:
        self.events.append(Event(type_, process, f, value, t, len(self.events), extra))

    def pay(self, t: float, latency_ms: float, ok: bool = True) -> None:
        self.proc += 1
        self.add("invoke", self.proc, "transfer", {}, t)
        self.add("ok" if ok else "fail", self.proc, "transfer", {}, t + latency_ms,
                 **({} if ok else {"error": "deadline"}))  # fmt: skip

    def mark(self, f: str, t: float, value: Any = "") -> None:
        self.add("info", "nemesis", f, value, t)


def steady(h: H, start_ms: float, end_ms: float, ok: bool = True) -> None:
    t = start_ms
    while t < end_ms:
        h.pay(t, 50.0, ok)
        t += 100.0  # 10 per second: the capacity


def test_a_healthy_history_passes() -> None:
    h = H()
    h.mark("spike-start", 0.0)
    steady(h, 0.0, 3_000.0)
    h.mark("spike-end", 3_000.0)
    steady(h, 3_000.0, 8_000.0)
    v = check_slo(sorted(h.events, key=lambda e: e.time_ms), TARGETS)
    assert v.valid is True, v.summary
    assert v.details["goodput_share"] >= 0.9


def test_collapse_and_no_recovery_are_caught() -> None:
    h = H()
    h.mark("spike-start", 0.0)
    steady(h, 0.0, 3_000.0, ok=False)
    h.mark("spike-end", 3_000.0)
    steady(h, 3_000.0, 8_000.0, ok=False)
    v = check_slo(sorted(h.events, key=lambda e: e.time_ms), TARGETS)
    assert v.valid is False
    assert v.details["goodput_share"] == 0.0
    assert v.details["recovered_after_ms"] is None
    assert "never" in v.summary


def test_slow_recovery_is_caught_and_measured() -> None:
    h = H()
    h.mark("spike-start", 0.0)
    steady(h, 0.0, 3_000.0)
    h.mark("spike-end", 3_000.0)
    steady(h, 3_000.0, 6_000.0, ok=False)  # 3 s of failures after the spike
    steady(h, 6_000.0, 10_000.0)
    v = check_slo(sorted(h.events, key=lambda e: e.time_ms), TARGETS)
    assert v.details["recovered_after_ms"] == 3_000.0
    assert v.valid is False  # allowed 2 s


def test_late_service_and_shedding_order_are_caught() -> None:
    h = H()
    h.mark("spike-start", 0.0)
    steady(h, 0.0, 3_000.0)
    h.pay(100.0, 900.0, ok=False)  # a payment failed...
    h.mark("degrade:switch", 2_000.0, {"path": "recommend", "on": False})  # ...before this
    h.mark("degrade:served-late", 500.0, {"req_id": "r1"})
    h.mark("spike-end", 3_000.0)
    steady(h, 3_000.0, 8_000.0)
    v = check_slo(sorted(h.events, key=lambda e: e.time_ms), TARGETS)
    assert v.valid is False
    assert "best-effort" in v.summary and "after their deadline" in v.summary
    assert v.details["served_late"] == 1


def test_p99_over_the_deadline_is_caught() -> None:
    h = H()
    h.mark("spike-start", 0.0)
    t = 0.0
    while t < 3_000.0:
        h.pay(t, 1_500.0)
        t += 100.0
    h.mark("spike-end", 3_000.0)
    steady(h, 3_000.0, 8_000.0)
    v = check_slo(sorted(h.events, key=lambda e: e.time_ms), TARGETS)
    assert v.valid is False and "p99" in v.summary


def test_without_a_spike_only_latency_and_deadlines_are_judged() -> None:
    h = H()
    steady(h, 0.0, 3_000.0, ok=False)  # a crash took everything down: not the load's doing
    assert check_slo(h.events, TARGETS).valid is True
    h.mark("degrade:served-late", 500.0, {"req_id": "r1"})
    v = check_slo(sorted(h.events, key=lambda e: e.time_ms), TARGETS)
    assert v.valid is False and v.details["served_late"] == 1
