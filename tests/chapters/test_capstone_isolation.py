"""Chapter 7's load test through the capstone's pipeline: the isolation checker is
trusted on the night only once it catches a planted leak there.

Each planted node (`--set leak=gateway|producer|consumer`) drops the tag on
one hop of the pipeline; `ch5:isolation` must fail, naming the hop that lost
it, and the night must judge the failure as planted (expected), not as a
broken system. Half the payments are tagged so that a 2 s night at 1/4000
sends tagged payments through the first payment service (the producer leak's)
before Hangzhou, where it lives, is lost at the peak.
"""

from __future__ import annotations

from typing import Any

import pytest

from chapters.capstone.stage import LEAK_BREAKS
from chapters.run import RunResult, simulate

# Where the first untagged span of tagged traffic points: the planted node's own
# span (its hop ran untagged), or for the gateway, whose span records the request
# as it came in, the next hop's, whose parent span is the gateway's.
LEAKY_HOP = {
    "gateway": ("parent", "gw-"),
    "producer": ("node", "pay-hz-1"),
    "consumer": ("node", "pt_settlement-"),
}


def _leaky_night(leak: str) -> RunResult:
    extra = {"leak": leak, "load_test_share": 0.5}
    return simulate("double11", "double11", seed=2, duration_s=2.0, scale=1 / 4000, extra=extra)


def _caught(result: RunResult, leak: str) -> None:
    verdict = result.verdicts["ch5:isolation"]
    assert verdict.valid is False, verdict.summary
    assert verdict.details["violations"].get("lost-tag", 0) > 0, verdict.details
    # The trace names the hop that dropped the tag.
    lost = [w for w in verdict.witness or [] if w["violation"] == "lost-tag"]
    field, hop = LEAKY_HOP[leak]
    assert lost and str(lost[0]["span"][field]).startswith(hop), lost[:1]
    # Judged as planted: every failing check is one the leak may break.
    failed = {name for name, v in result.verdicts.items() if v.valid is not True}
    assert failed <= set(LEAK_BREAKS[leak]), failed - set(LEAK_BREAKS[leak])
    assert all(j.ok for j in result.judged.values()), {
        k: j for k, j in result.judged.items() if not j.ok
    }


@pytest.mark.slow
def test_a_payment_service_that_drops_the_tag_is_caught_on_the_night() -> None:
    _caught(_leaky_night("producer"), "producer")


@pytest.mark.slow
@pytest.mark.parametrize("leak", ["gateway", "consumer"])
def test_a_gateway_or_a_shadow_consumer_that_drops_the_tag_is_caught(leak: str) -> None:
    _caught(_leaky_night(leak), leak)


def test_a_leak_the_pipeline_has_no_node_for_is_refused() -> None:
    from chapters import get_stage
    from chapters.stage import StageError

    with pytest.raises(StageError, match="leak"):
        get_stage("double11").options(extra={"leak": "ledger"})
    with pytest.raises(StageError, match="load-test traffic"):
        get_stage("double11").options(extra={"leak": "producer", "load_test_share": 0.0})


SWITCH_AT_MS = 1_000.0
IN_FLIGHT_MS = 50.0  # the switch is a message each gateway sends itself: delivered at once
CROSS_CITY_MS = 100.0  # ... or from a client in the host city, to every city's gateways


class _ServersElsewhere:
    """The simulator as the process backend shows it to the harness: only the
    clients run here (`context` of any other node is None); the rest is the same."""

    def __init__(self, rt: Any, here: set[str]) -> None:
        self._rt, self._here = rt, here

    def context(self, node_id: str) -> Any:
        return self._rt.context(node_id) if node_id in self._here else None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rt, name)


def _switched_night(down: str = "", elsewhere: bool = False) -> list[tuple[float, str, object]]:
    """The steady night, the kill switch flipped off at SWITCH_AT_MS as the TUI's `o`
    does; `down`, a cell gateway, is crashed then and restarted 100 ms later (before
    any controller fails its cell over); `elsewhere`: the gateways have no context
    in the switch's process, as on `--backend process`. Returns (time, gateway,
    mark) of every payment a cell gateway let in."""
    from chapters.capstone.parts import NightRehearsal
    from chapters.capstone.stage import STAGE, CapstoneDeployment
    from reference.runtime.sim import SimRuntime

    opts = STAGE.options(seed=1, duration_s=2.0, scale=1 / 4000)
    rt = SimRuntime(topology=STAGE.topology(opts), seed=1)
    dep = STAGE.build(rt, opts)
    assert isinstance(dep, CapstoneDeployment)
    rt.start()
    dep.apply_scenario("steady")
    rt.run_until(SWITCH_AT_MS)
    if down:
        rt.crash(down)
        rt.call_at(SWITCH_AT_MS + 100.0, lambda: rt.restart(down))
    rehearsal = dep.parts["rehearsal"]
    assert isinstance(rehearsal, NightRehearsal)
    if elsewhere:
        rehearsal.rt = _ServersElsewhere(rt, set(dep.roles["client"]))
    rehearsal.kill_switch(False)  # what the TUI's `o` calls on the night
    rt.run_until(SWITCH_AT_MS + 600.0)
    gateways = set(dep.parts["cells"].roles["gateway"])
    return [
        (e.time_ms, e.value["node"], e.value.get("mark"))
        for e in dep.parts["mq"].history
        if e.f == "span" and e.value.get("node") in gateways and not e.value.get("outcome")
    ]


def test_the_kill_switch_stops_the_pipelines_tagged_traffic_too() -> None:
    """The TUI's `o` calls the rehearsal part's `kill_switch` (chapter 7's system):
    on the night it reaches the pipeline's gateways too, so past the switch (and a
    message's flight) no tagged payment enters a cell gateway, and production's do."""
    entered = _switched_night()
    after = SWITCH_AT_MS + IN_FLIGHT_MS
    assert any(m == "T" for t, _, m in entered if t < SWITCH_AT_MS), "no tagged traffic before"
    assert [t for t, _, m in entered if m == "T" and t > after] == []
    assert any(m != "T" for t, _, m in entered if t > after), "production stopped too"


@pytest.mark.slow
def test_the_kill_switch_reaches_gateways_in_other_processes() -> None:
    """On a real backend no gateway has a context in the harness's process: the
    switch goes from a client there, over the network (before, it reached none,
    each gateway owed it: tagged payments went on). The real thing, on processes:
    `test_capstone_switch_process.py` (slow)."""
    entered = _switched_night(elsewhere=True)
    after = SWITCH_AT_MS + CROSS_CITY_MS
    assert any(m == "T" for t, _, m in entered if t < SWITCH_AT_MS), "no tagged traffic before"
    assert [(t, g) for t, g, m in entered if m == "T" and t > after] == []
    assert any(m != "T" for t, _, m in entered if t > after), "production stopped too"


@pytest.mark.slow
def test_a_gateway_down_when_the_switch_is_flipped_gets_it_when_it_restarts() -> None:
    """Its disk never heard the switch: without the operator's resend it would serve
    tagged payments again once it is back."""
    down = "gw-hz-1"
    entered = _switched_night(down)
    back = SWITCH_AT_MS + 100.0
    assert any(g == down and t > back for t, g, _ in entered), "the gateway took nothing back"
    assert [t for t, g, m in entered if g == down and m == "T" and t > back] == []
