"""How late the harness's own timers fire on a real backend: the host's overload, measured.

On the simulator time is virtual and nothing is ever late. On real processes
the clients, the gateways and the database share the machine's cores with
whatever else runs there; under a load of 50 on two cores every process waits
for a core, and a payment's wall-clock latency measures that wait as much as
the controls. The probe asks the runtime's loop (where the clients run) for a
callback every `PROBE_MS` and records how late each one ran. The chapter
writes the figures into the history (`host-lag`), and the SLO checker refuses
to judge latency and goodput when the harness itself ran that late: it says
"could not tell" instead of blaming the controls for the machine.
"""

from __future__ import annotations

import os

from chapters.stage import Runtime

__all__ = ["PROBE_MS", "HostLagProbe"]

PROBE_MS = 50.0  # one callback per 50 ms: 20 samples a second, cheap next to the traffic


class HostLagProbe:
    """Start it with the traffic; `report()` stops it and returns the figures."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.lags_ms: list[float] = []
        self.running = False

    def start(self) -> None:
        if not self.running:
            self.running = True
            self._arm(self.rt.now_ms + PROBE_MS)

    def _arm(self, due_ms: float) -> None:
        self.rt.call_at(due_ms, lambda: self._tick(due_ms))

    def _tick(self, due_ms: float) -> None:
        if not self.running:
            return
        now_ms = self.rt.now_ms
        self.lags_ms.append(max(0.0, now_ms - due_ms))
        self._arm(now_ms + PROBE_MS)  # from now: a stall is one late sample, not a burst

    def report(self) -> dict[str, float]:
        """Stop; the lateness figures (ms), the 1-minute load average and the cores."""
        self.running = False
        lags = sorted(self.lags_ms)
        assert all(lag >= 0 for lag in lags)
        p99 = lags[min(len(lags) - 1, int(0.99 * len(lags)))] if lags else 0.0
        return {
            "samples": float(len(lags)),
            "p50_ms": round(lags[len(lags) // 2], 1) if lags else 0.0,
            "p99_ms": round(p99, 1),
            "max_ms": round(lags[-1], 1) if lags else 0.0,
            "load_1m": round(os.getloadavg()[0], 2),
            "cores": float(os.cpu_count() or 1),
        }
