"""Chapters 5 and 6: wrong attempts are caught, and the feedback names what broke.

(Both ways for every exercise is proved in test_exercises.py; here, the
mistakes people make, and that the check says which.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from learn.catalog import get_exercise
from learn.workspace import Workspace
from tests.learn.conftest import check, fill, solve

_EFFECT = (
    '        if c.effect == "loyalty":\n'
    "            key = POINTS + data.buyer\n"
    "            ctx.disk.put(key, int(ctx.disk.get(key, 0)) + m.body.amount_cents // 100)\n"
)


def test_the_dedup_task_and_hints_name_the_shadow_buyer() -> None:
    """The text a learner follows writes where the solution writes: `data.buyer`."""
    ex = get_exercise("ch5-dedup")
    assert "POINTS + data.buyer" in " ".join(ex.task.split())
    assert "POINTS + data.buyer" in ex.hints[2]
    assert "m.body.buyer" not in ex.task + "".join(ex.hints)


def test_load_test_points_on_the_production_buyer_fail_isolation(ws: Workspace) -> None:
    """Dedup right, but a tagged event's points keyed by the payload's (production) buyer."""
    ex = get_exercise("ch5-dedup")
    ws.start(ex)
    solve(ws, ex)
    target = ws.path / ex.file
    text = target.read_text()
    assert text.count("key = POINTS + data.buyer") == 1
    target.write_text(text.replace("key = POINTS + data.buyer", "key = POINTS + m.body.buyer"))
    result = check(ws, ex)
    assert result.status == "fail", result.headline
    assert "production points" in result.headline
    text = "\n".join(result.lines)
    assert "wrote points/u7" in text and "1 tagged-write-to-production" in text, text


def test_a_consumer_without_dedup_applies_a_redelivery_twice(ws: Workspace) -> None:
    ex = get_exercise("ch5-dedup")
    ws.start(ex)
    fill(ws, ex, _EFFECT + "        ctx.disk.sync()\n")
    result = check(ws, ex)
    assert result.status == "fail", result.headline
    assert "delivery broken" in result.headline
    assert any("applied 2 times" in line for line in result.lines), result.lines


@pytest.mark.slow
def test_a_dedup_set_in_memory_forgets_across_a_crash(ws: Workspace) -> None:
    ex = get_exercise("ch5-dedup")
    ws.start(ex)
    fill(
        ws,
        ex,
        '        seen = self.__dict__.setdefault("seen_ids", set())\n'
        "        if c.idempotent and m.msg_id in seen:\n"
        "            return\n" + _EFFECT + "        seen.add(m.msg_id)\n        ctx.disk.sync()\n",
    )
    result = check(ws, ex)
    assert result.status == "fail", result.headline
    assert any("applied 2 times" in line for line in result.lines), result.lines


def test_a_half_open_breaker_that_closes_on_the_first_probe_is_caught(ws: Workspace) -> None:
    ex = get_exercise("ch6-half-open")
    ws.start(ex)
    fill(
        ws,
        ex,
        '        if self.state == "half-open":\n'
        "            if bad:\n"
        '                self._move(now_ms, "probe-failed")\n'
        "            else:\n"
        '                self._move(now_ms, "probes-succeeded")\n'
        "            return\n",
    )
    result = check(ws, ex)
    assert result.status == "fail", result.headline
    text = "\n".join(result.lines)
    assert "['closed'" in text and "stay half-open until all three" in text, text


def test_a_half_open_breaker_that_ignores_a_slow_probe_is_caught(ws: Workspace) -> None:
    ex = get_exercise("ch6-half-open")
    ws.start(ex)
    solve(ws, ex)
    target = ws.path / ex.file
    target.write_text(
        target.read_text().replace(
            '            if bad:\n                self._move(now_ms, "probe-failed")',
            '            if error:\n                self._move(now_ms, "probe-failed")',
        )
    )
    result = check(ws, ex)
    assert result.status == "fail", result.headline
    assert any("a slow probe is a bad probe" in line for line in result.lines), result.lines


@pytest.mark.slow
def test_a_broker_fixed_another_way_passes_but_needs_the_zoo_name(ws: Workspace) -> None:
    """A repeated COMMIT answered "committed" with nothing appended is a fix too."""
    ex = get_exercise("ch5-find-recommit")
    ws.start(ex)
    target = ws.path / ex.file
    planted = '            return ("committed", self._append(self._visible(msg_id, now_ms)))\n'
    text = target.read_text()
    assert text.count(planted) == 1
    target.write_text(text.replace(planted, '            return ("committed", self.ids[msg_id])\n'))
    wrong = check(ws, ex, answer="commit-after-rollback")
    assert wrong.status == "fail" and "commit-after-rollback" in wrong.headline
    assert check(ws, ex, answer="recommit").passed


@pytest.mark.slow
def test_a_spare_control_is_refused(ws: Workspace) -> None:
    ex = get_exercise("ch6-spike-controls")
    ws.start(ex)
    (ws.path / ex.config_file).write_text('controls = ["deadline", "flow", "budget", "decouple"]\n')
    result = check(ws, ex)
    assert result.status == "fail"
    assert "'deadline' is spare" in result.headline, result.headline


def test_an_unknown_control_is_one_line(ws: Workspace) -> None:
    ex = get_exercise("ch6-spike-controls")
    ws.start(ex)
    (ws.path / ex.config_file).write_text('controls = ["flow", "shed"]\n')
    result = check(ws, ex)
    assert result.status == "fail"
    assert result.headline.startswith("unknown control 'shed'"), result.headline


@pytest.mark.slow
def test_the_served_late_measure_agrees_with_the_command_the_task_shows(ws: Workspace) -> None:
    """The learner reads the figure off `d11 run`; the check measures the same run."""
    ex = get_exercise("ch6-served-late")
    ws.start(ex)
    command = "run ch6 --scenario overload-3x --variant naive-retries --seed 1 --no-store"
    assert f"d11 {command}" in " ".join(ex.task.split())
    d11 = Path(sys.executable).with_name("d11")
    out = subprocess.run(
        [str(d11), *command.split(), "--json"], capture_output=True, text=True, check=True
    )
    served_late = json.loads(out.stdout)["checks"]["slo"]["details"]["served_late"]
    assert served_late > 0
    assert ws.run_check(ex, truth=True).truth == str(served_late)
    assert check(ws, ex, answer=str(served_late + 1)).status == "fail"


def test_a_commit_after_a_rollback_must_be_refused(ws: Workspace) -> None:
    """Answering "committed" to a COMMIT after a ROLLBACK lies to the producer."""
    ex = get_exercise("ch5-find-recommit")
    ws.start(ex)
    target = ws.path / ex.file
    text = target.read_text()
    planted = 'and self.ops.get(msg_id) == "committed":\n'
    assert text.count(planted) == 1
    text = text.replace(planted, "and self.ops.get(msg_id) is not None:\n")
    recommit = 'return ("committed", self._append(self._visible(msg_id, now_ms)))'
    assert text.count(recommit) == 1  # the planted branch's (the zoo's switch is taken out)
    text = text.replace(recommit, 'return ("committed", self.ids[msg_id])')
    target.write_text(text)
    result = check(ws, ex, answer="recommit")
    assert result.status == "fail"
    assert any(line.startswith("3. the check-back rolls back") for line in result.lines)
