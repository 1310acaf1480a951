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
# A frame over loopback to each gateway's process: the first from a client to a
# gateway opens the link; on a loaded host (load 13 to 25) it took up to 770 ms.
REACHED_WITHIN_MS = 2_000.0


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_kill_switch_reaches_every_gateway_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """`o` (the rehearsal part's `kill_switch`) 1 s into a night on real processes:
    every gateway, chapter 7's and the cells', says it got the switch (its own
    `load-test-switch` trace, from its process), and none lets a tagged payment in
    after it got it; production's still enter."""
    seen: dict[str, Any] = {"got": {}}
    start = CapstoneDeployment.start_traffic

    def got(event: Any) -> None:
        if event.kind == "load-test-switch" and not event.fields.get("enabled", True):
            seen["got"].setdefault(event.node, event.time_ms - seen["origin_ms"])

    def with_switch(
        dep: CapstoneDeployment, start_ms: float, end_ms: float, profile: str = "steady"
    ) -> None:
        rehearsal = dep.parts["rehearsal"]
        assert isinstance(rehearsal, NightRehearsal)
        seen["gateways"] = set(rehearsal.switched_gateways())
        seen["cells"] = set(dep.parts["cells"].roles["gateway"])
        seen["origin_ms"] = start_ms  # the history's times count from here
        dep.rt.telemetry.subscribe(got)  # type: ignore[attr-defined]
        dep.rt.call_at(start_ms + SWITCH_AFTER_MS, lambda: rehearsal.kill_switch(False))
        start(dep, start_ms, end_ms, profile)

    monkeypatch.setattr(CapstoneDeployment, "start_traffic", with_switch)
    result = run_test(TestSpec(chapter="double11", time_s=2.0, seed=1, backend="process"))
    gateways, cells, reached = seen["gateways"], seen["cells"], seen["got"]
    assert {"gw-hz-1", "gw-el-1"} <= cells < gateways  # chapter 7's own gateways too
    switched = [e.time_ms for e in result.history if e.f == "kill-switch"]
    assert switched, "the switch was never flipped"
    # Every gateway got it, from a client of the harness's process, over TCP.
    assert set(reached) == gateways, sorted(gateways - set(reached))
    assert all(0 <= t - switched[0] < REACHED_WITHIN_MS for t in reached.values()), reached
    entered = [
        (e.time_ms, e.value["node"], e.value.get("mark"))
        for e in result.history
        if e.f == "span" and e.value.get("node") in gateways and not e.value.get("outcome")
    ]
    assert any(m == "T" for t, _, m in entered if t < switched[0]), "no tagged traffic before"
    late = [(t, g) for t, g, m in entered if m == "T" and t > reached[g]]
    assert late == [], late[:5]
    after = max(reached.values())
    assert any(m != "T" and g in cells for t, g, m in entered if t > after), "production stopped"
