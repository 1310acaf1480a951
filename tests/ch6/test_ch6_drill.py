"""Live changes in a run: pushed to every payment gateway until acknowledged, in the history."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from chapters import get_stage
from chapters.stage import StageError
from reference.runtime.sim import SimRuntime
from tui.cli import app

SHORT = {"spike_ms": 2_000.0, "after_ms": 3_000.0}


def test_a_change_reaches_a_gateway_that_was_down_when_it_was_made() -> None:
    stage = get_stage("ch6")
    switches = tuple((3_000.0, "switch", f"{p}=off") for p in ("notify", "loyalty", "recommend"))
    changes = ((3_000.0, "flow-qps", 20.0), *switches)
    options = stage.options(seed=1, extra={**SHORT, "changes": changes})
    rt = SimRuntime(topology=stage.topology(options), seed=options.seed)
    dep = stage.build(rt, options)
    rt.start()
    dep.apply_scenario("overload-3x")
    rt.call_at(2_900.0, lambda: dep.crash(["gw-pay"], "down while the change is made"))
    rt.call_at(3_500.0, lambda: dep.restart(["gw-pay"]))
    rt.run_until(dep.end_ms)
    made = [e for e in dep.history if e.f == "degrade:change"]
    applied = [e for e in dep.history if e.f == "degrade:applied"]
    assert [e.value["version"] for e in made] == [1, 2, 3, 4]
    assert applied and applied[0].time_ms >= 3_500.0  # re-sent until the restarted one took it
    assert applied[-1].value == {"node": "gw-pay", "version": 4}
    settled_ms = applied[-1].time_ms + 50.0  # calls started before it end soon after
    after = [e for e in dep.history if e.f == "degrade:best-effort" and e.time_ms > settled_ms]
    for path in ("notify", "loyalty", "recommend"):  # each switch, drilled
        outcomes = [e.value["outcome"] for e in after if e.value["path"] == path]
        assert outcomes and set(outcomes) == {"shed"}, path


def test_bad_changes_are_one_line_errors() -> None:
    stage = get_stage("ch6")
    for bad in ((0, "flow-qps", -1.0), (0, "switch", "payments=off"), (0, "reboot", 1)):
        with pytest.raises(StageError):
            stage.options(extra={"changes": (bad,)})
    result = CliRunner().invoke(app, ["degrade", "drill", "--switch", "nothing=off"])
    assert result.exit_code == 2 and result.stderr.startswith("error: ")
