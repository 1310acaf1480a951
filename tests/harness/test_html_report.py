"""The HTML report: a legend, the chapter's expectation beside each verdict, named lanes."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from pathlib import Path

import pytest

from checks.harness.report import client_lanes, latency_points, run_outcome, write_report
from checks.harness.runner import TestResult, TestSpec, run_test
from checks.history import pair_operations


@pytest.fixture(scope="module")
def naive() -> TestResult:
    """Chapter 2's naive transfer under a kill: the failure the chapter teaches."""
    return run_test(TestSpec(chapter="ch2", variant="naive", nemeses=("kill",), time_s=2.0))


def report_of(result: TestResult, tmp_path: Path) -> str:
    path = tmp_path / "report.html"
    write_report(result, path)
    return path.read_text()


def test_an_expected_failure_does_not_read_as_an_alarm(naive: TestResult, tmp_path: Path) -> None:
    assert naive.valid is False and naive.judged["bank"].outcome == "expected-failure"
    assert run_outcome(naive) == "as-expected-invalid"
    text = report_of(naive, tmp_path)
    assert '<p class="verdict">INVALID, AS EXPECTED</p>' in text
    assert "the lesson, not an alarm" in text
    why = naive.judged["bank"].expected.why  # type: ignore[union-attr]
    assert html.escape("expected to fail: " + why) in text


def test_an_unexpected_failure_does(naive: TestResult, tmp_path: Path) -> None:
    judged = {n: replace(j, outcome="unexpected-failure") for n, j in naive.judged.items()}
    result = replace(naive, judged=judged)
    assert run_outcome(result) == "unexpected"
    assert '<p class="verdict">INVALID, UNEXPECTED</p>' in report_of(result, tmp_path)


def test_the_report_has_a_legend_for_its_colours(naive: TestResult, tmp_path: Path) -> None:
    text = report_of(naive, tmp_path)
    legend = re.search(r'<p class="legend">(.*?)</p>', text)
    assert legend is not None
    for words in ("ok: acknowledged", "fail: certainly no effect", "info: outcome unknown",
                  "in flight at the end", "a fault in force", "violation"):  # fmt: skip
        assert words in legend.group(1)


def test_lanes_are_labelled_by_client_and_every_client_has_some(naive: TestResult) -> None:
    ops = pair_operations([e for e in naive.history if e.process != "nemesis"])
    labels = [label for _, label in client_lanes(ops)]
    assert "client-1 · 0" in labels and "client-2 · 0" in labels
    assert not any(re.fullmatch(r"\d+", label) for label in labels), "no bare process numbers"


def test_no_latency_is_made_up(naive: TestResult) -> None:
    ops = pair_operations([e for e in naive.history if e.process != "nemesis"])
    assert any(op.completion is not None and op.completion.time_ms == op.invoke.time_ms
               for op in ops), "the setup's opening balances take no time"  # fmt: skip
    points = latency_points(ops)
    assert points and min(latency_ms for _, latency_ms, _ in points) > 0.01
