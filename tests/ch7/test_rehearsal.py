"""`d11 rehearse`: it finds a planted bottleneck and names it; its verdict and exit code."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from chapters.ch7_rehearsal.rehearsal import RehearsalPlan, analyse, percentile
from tui.cli import app


def test_the_rehearsal_finds_a_planted_bottleneck_and_names_it(tmp_path: Path) -> None:
    page = tmp_path / "rehearsal.html"
    args = ["rehearse", "--system", "ch7", "--slow", "shard-2", "--duration-s", "1.0",
            "--no-night", "--json", "--html", str(page)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    report = json.loads(result.stdout)
    assert report["bottlenecks"][0]["node"] == "shard-2", report["bottlenecks"]
    assert report["saturation"]["shard-2"] is not None  # it saturates within 2x
    # A store four times slower cannot carry 1.1x the forecast: not ready, exit 1.
    assert report["verdict"] == "not ready" and result.exit_code == 1
    assert report["isolation"] == "valid"
    assert len(report["sweep"]) >= 6 and "sigma" in report["usl"]
    assert {"p50", "p99", "p999"} <= set(report["levels"][0]["links"]["end-to-end"])
    assert page.read_text().count("data:image/png;base64,") == 3
    kill, crash, slow_dependency = report["drills"]
    assert kill["passed"] and kill["refused_after"] > 0
    # Chapter 6's degrade plan fires: loyalty's breaker opens, its calls are shed.
    assert slow_dependency["passed"] and slow_dependency["shed"] > 0, slow_dependency
    assert slow_dependency["breaker_opened_after_ms"] > 0
    assert crash["name"].startswith("store crash")
    assert crash["checks"] == {"bank": True, "ledger": True, "isolation": True}
    # (Whether goodput comes back is the system's business: past its capacity
    # it never does. That the drill kept money and isolation right is ours.)


def _level(factor: float, *, slo: bool = True, isolation: object = True) -> dict[str, object]:
    return {
        "factor": factor, "links": {}, "queues": {"shard-0": 0.5}, "slo_met": slo,
        "checks": {"bank": True, "ledger": True, "isolation": isolation},
    }  # fmt: skip


def test_verdicts_and_exit_codes_from_the_figures() -> None:
    plan = RehearsalPlan()
    sweep = [{"n": n, "tps": 100.0 * n / (1 + 0.05 * (n - 1))} for n in (1, 2, 4, 8, 16, 32)]
    drill = [{"passed": True, "isolation": True}]
    ready = analyse(plan, 300.0, 0.01, sweep, [_level(1.0), _level(1.1)], drill, 10)
    assert ready["verdict"] == "ready" and ready["exit_code"] == 0, ready["reasons"]
    short = analyse(plan, 1200.0, 0.01, sweep, [_level(1.0), _level(1.1)], drill, 10)
    assert short["exit_code"] == 1 and "headroom" in short["reasons"][0]
    leak = analyse(plan, 300.0, 0.01, sweep, [_level(1.1, isolation=False)], drill, 10)
    assert leak["exit_code"] == 1 and leak["isolation"] == "leak"
    blind = analyse(plan, 300.0, 0.01, sweep, [_level(1.1, isolation="unknown")], drill, 10)
    assert blind["exit_code"] == 2 and blind["verdict"] == "could not tell"
    unfit = analyse(plan, 300.0, 0.01, sweep[:3], [_level(1.1)], drill, 10)
    assert unfit["exit_code"] == 2 and "error" in unfit["usl"]
    assert percentile([5.0, 1.0, 3.0], 50) == 3.0


def test_a_bad_option_is_one_line_and_exit_2() -> None:
    result = CliRunner().invoke(app, ["rehearse", "--slow", "nope"])
    assert result.exit_code == 2
    assert result.output.strip().startswith("error: --slow names no node")
    assert len(result.output.strip().splitlines()) == 1
    result = CliRunner().invoke(app, ["rehearse", "--system", "nope"])
    assert result.exit_code == 2
    assert result.output.strip() == "error: --system must be one of pipeline, ch7, not 'nope'"
    result = CliRunner().invoke(app, ["rehearse", "--slow", "shard-2"])  # ch7's, not the pipeline's
    assert result.exit_code == 2 and "(its nodes: brk-hz, brk-sh, " in result.output
    assert "shard-2" not in result.output.split("(its nodes:")[1]  # every node, not two
    assert "..." not in result.output
    result = CliRunner().invoke(app, ["rehearse", "--jobs", "-1"])
    assert result.exit_code == 2
    assert result.output.strip() == "error: --jobs must be >= 0, not -1"
    result = CliRunner().invoke(app, ["rehearse", "--slow-factor", "0"])
    assert result.output.strip() == "error: --slow-factor must be > 0, not 0"


def test_the_report_says_why_a_drill_failed_and_when_the_fit_means_nothing() -> None:
    from chapters.ch7_rehearsal.rehearsal import USL_FIT_ERROR_MAX, _switch_failures
    from chapters.ch7_rehearsal.report import render_text

    plan = RehearsalPlan()
    # A ragged curve (--slow shard-2's begins so): a 36% fit error, its "peak" meaningless.
    points = ((1, 91), (2, 151), (4, 141), (8, 104), (16, 157), (24, 60), (32, 150))
    ragged = [{"n": n, "tps": t} for n, t in points]
    switch = {
        "name": "kill switch", "stopped_after_ms": 0.0, "refused_after": 318, "isolation": False,
        "passed": False, "failed_because": _switch_failures(0.0, 318, False),
    }  # fmt: skip
    level = _level(1.1, isolation=False) | {
        "queues": {"gw-0": 0.5}, "offered_tps": 110.0, "goodput_tps": 100.0, "success": 1.0,
    }  # fmt: skip
    r = analyse(plan, 100.0, 0.01, ragged, [level], [switch], 10)
    assert r["usl"]["rmse_rel"] > USL_FIT_ERROR_MAX and r["usl"]["describes_curve"] is False
    text = render_text(r)
    assert "the law does not describe this curve; no peak predicted" in text
    assert "/s at N=" not in text.split("USL fit", 1)[1].splitlines()[0]
    assert "drill kill switch: FAILED: isolation broken: tagged payments wrote production" in text
    assert "not saturated at any level" in text and "not reached" not in text
    assert _switch_failures(0.0, 5, True) == []  # a passing drill has no reason to fail
    smooth = [{"n": n, "tps": 100.0 * n / (1 + 0.05 * (n - 1))} for n in (1, 2, 4, 8, 16, 32)]
    fits = analyse(plan, 100.0, 0.01, smooth, [level], [switch], 10)
    assert fits["usl"]["describes_curve"] is True and "/s at N=" in render_text(fits)


def test_the_report_words_verdicts_and_the_scale_as_the_other_reports_do() -> None:
    """valid/INVALID/unknown, not Python's True/False; the scale as 1/453, as `d11 run`."""
    from chapters.ch7_rehearsal.report import validity_word
    from reference.traffic.plan import format_scale

    assert [validity_word(v) for v in (True, False, "unknown", None)] == [
        "valid",
        "INVALID",
        "unknown",
        "unknown",
    ]
    assert format_scale(0.00220588) == "1/453"
