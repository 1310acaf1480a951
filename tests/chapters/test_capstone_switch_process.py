"""The night's kill switch on real processes (`--backend process`).

On the simulator the switch is a message each gateway sends itself; on a real
backend every gateway (chapter 7's and the pipeline's cell gateways) runs in
a process of its own, with no context in the harness's process, so the switch
goes from the operator's console, a client of the harness's process, over
TCP (`chapters.capstone.parts.NightRehearsal`). Before, it reached no gateway
there: each stayed owed the switch, and kept serving tagged payments.
"""

from __future__ import annotations

from typing import Any

import pytest

from chapters.capstone.parts import NightRehearsal
from chapters.capstone.stage import CapstoneDeployment
from checks.harness.runner import TestSpec, run_test

SWITCH_AFTER_MS = 1_000.0  # after the traffic starts
IN_FLIGHT_MS = 300.0  # a frame over loopback to a gateway's process, on a loaded host


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_kill_switch_reaches_every_gateway_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """`o` (the rehearsal part's `kill_switch`) 1 s into a night on real processes:
    past the switch and a frame's flight no gateway, chapter 7's or a cell's, lets a
    tagged payment in; production's still enter."""
    seen: dict[str, Any] = {}
    start = CapstoneDeployment.start_traffic

    def with_switch(
        dep: CapstoneDeployment, start_ms: float, end_ms: float, profile: str = "steady"
    ) -> None:
        rehearsal = dep.parts["rehearsal"]
        assert isinstance(rehearsal, NightRehearsal)
        seen["gateways"] = set(rehearsal.switched_gateways())
        seen["cells"] = set(dep.parts["cells"].roles["gateway"])
        dep.rt.call_at(start_ms + SWITCH_AFTER_MS, lambda: rehearsal.kill_switch(False))
        start(dep, start_ms, end_ms, profile)

    monkeypatch.setattr(CapstoneDeployment, "start_traffic", with_switch)
    result = run_test(TestSpec(chapter="double11", time_s=2.0, seed=1, backend="process"))
    gateways = seen["gateways"]
    cells = seen["cells"]
    assert {"gw-hz-1", "gw-el-1"} <= cells < gateways  # chapter 7's own gateways too
    # The history's times count from the traffic's start.
    entered = [
        (e.time_ms, e.value["node"], e.value.get("mark"))
        for e in result.history
        if e.f == "span" and e.value.get("node") in gateways and not e.value.get("outcome")
    ]
    switched = [e.time_ms for e in result.history if e.f == "kill-switch"]
    assert switched and abs(switched[0] - SWITCH_AFTER_MS) < IN_FLIGHT_MS, switched
    after = switched[0] + IN_FLIGHT_MS
    assert any(m == "T" for t, _, m in entered if t < switched[0]), "no tagged traffic before"
    late = [(t, g) for t, g, m in entered if m == "T" and t > after]
    assert late == [], late[:5]
    assert any(m != "T" and g in cells for t, g, m in entered if t > after), "production stopped"
    refused = [
        e for e in result.history
        if e.f == "span" and e.value.get("outcome") == "load-test-off"
        and e.value.get("node") in cells
    ]  # fmt: skip
    assert refused, "no cell gateway refused a tagged payment"
