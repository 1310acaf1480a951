"""Every exercise proved both ways: unsolved it fails, with the reference solution it passes.

The cheap ones run by default; the ones whose passing run is long (the
explorer's full forget-promise space, the hunter's shrinking) are marked slow:
`pytest -m slow tests/learn` runs them all.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from learn.catalog import all_exercises, get_exercise
from learn.regions import find_region, region_text
from learn.workspace import Workspace, shown_path
from tests.learn.conftest import ROOT, check, fill, solve

# The default suite proves a cheap subset both ways (a few seconds each); the
# rest run with `-m slow` (about 5 minutes on a loaded 2-core machine: ch3's
# runs, the explorer's bigger spaces, the hunter's shrinking).
CHEAP_UNSOLVED = {
    "ch1-durable-commit",
    "ch2-empty-rollback",
    "ch2-find-fence-bug",
    "ch3-lost-checker",
    "ch4-accept-sync",
    "ch4-lease-skew",
    "ch4-durable-promise",
    "ch4-find-minority",
    "ch4-find-degrade",
    "ch5-dedup",
    "ch5-find-recommit",
    "ch5-find-count-young",
    "ch6-half-open",
    "ch6-spike-controls",
    "ch7-fail-closed",
    # a measure with no answer fails before it runs anything
    "ch1-single-point",
    "ch2-hot-shard",
    "ch2-vanished",
    "ch3-lost-at-seed-2",
    "ch3-split-brain",
    "ch6-served-late",
    "ch7-lost-tags",
}
CHEAP_SOLVED = {
    "ch1-durable-commit",
    "ch2-find-fence-bug",
    "ch4-lease-skew",
    "ch5-find-recommit",
    "ch6-half-open",
    "ch7-fail-closed",
    "ch7-lost-tags",
}


def test_the_catalog_fits_the_source() -> None:
    """Each region exists; each planted bug's lines occur once, inside its region."""
    exercises = all_exercises()
    assert len(exercises) >= 20  # issue 15: at least 20, across chapters 1-7
    assert len({e.id for e in exercises}) == len(exercises)
    assert [e.chapter for e in exercises] == sorted(e.chapter for e in exercises)
    assert {e.kind for e in exercises} == {"implement", "find-bug", "measure", "configure"}
    for chapter in (1, 2, 3, 4, 5, 6, 7):
        assert sum(e.chapter == chapter for e in exercises) >= 2, chapter
    ws = Workspace(ROOT / "unused", source=ROOT)  # solution() reads only the source
    for ex in exercises:
        assert len(set(ex.hints)) == 3 and all(h.strip() for h in ex.hints), ex.id
        assert ex.holds.strip() and ex.task.strip(), ex.id
        assert ws.solution(ex).strip(), f"{ex.id}: a reference solution"
        if ex.kind == "measure":
            assert ex.solution_note.strip() and ex.answer_help.strip(), ex.id
        if ex.file:
            text = (ROOT / ex.file).read_text()
            find_region(text, ex.region)
            for old, _new in ex.patches:
                assert text.count(old) == 1, (ex.id, old)
                assert old in region_text(text, ex.region), f"{ex.id}: the bug lies in its region"


def _unsolved_fails(ws: Workspace, ex_id: str) -> None:
    ex = get_exercise(ex_id)
    ws.start(ex)
    answer = None
    if ex.kind == "find-bug":
        answer = ex.answer  # the right name does not pass while the bug is there
    result = check(ws, ex, answer)
    assert not result.passed, result.headline
    if ex.kind == "implement":
        assert result.status == "not-done", result.headline
    else:
        assert result.status == "fail", (result.status, result.headline)


def _solved_passes(ws: Workspace, ex_id: str) -> float:
    ex = get_exercise(ex_id)
    ws.start(ex)
    answer = solve(ws, ex)
    result = check(ws, ex, answer)
    assert result.passed, (result.status, result.headline, result.lines)
    # How long it took is a figure, not an assertion: python -m learn.timing prints them.
    return result.seconds


def _split(cheap: set[str]) -> list[object]:
    return [
        pytest.param(e.id, marks=() if e.id in cheap else pytest.mark.slow) for e in all_exercises()
    ]


@pytest.mark.parametrize("ex_id", _split(CHEAP_UNSOLVED))
def test_unsolved_fails(ws: Workspace, ex_id: str) -> None:
    _unsolved_fails(ws, ex_id)


@pytest.mark.parametrize("ex_id", _split(CHEAP_SOLVED))
def test_solved_passes(ws: Workspace, ex_id: str) -> None:
    _solved_passes(ws, ex_id)


# -- wrong attempts: the feedback names what broke ---------------------------------------------


def test_a_fence_that_forgets_the_row_lets_the_late_try_in(ws: Workspace) -> None:
    ex = get_exercise("ch2-empty-rollback")
    ws.start(ex)
    fill(ws, ex, "        return True\n")
    result = check(ws, ex)
    assert result.status == "fail"
    assert any("late try" in line for line in result.lines), result.lines


def test_a_lost_payments_check_that_ignores_legs_is_wrong(ws: Workspace) -> None:
    ex = get_exercise("ch3-lost-checker")
    ws.start(ex)
    fill(
        ws,
        ex,
        "    for pid, value in acked.items():\n"
        "        if pid not in held:\n"
        "            lost.append({'id': pid, **value, 'legs_held': []})\n",
    )
    result = check(ws, ex)
    assert result.status == "fail"
    assert any("half_applied should be ['p-half']" in line for line in result.lines)


# ch7-fail-closed's rules for any untagged span, right in both attempts below.
_PRODUCTION_SPAN_RULES = (
    "    if any(_is_shadow(a) for a in writes):\n"
    '        found.append("production-write-to-shadow")\n'
    '    if int(v.get("shadow_rows_read") or 0) > 0:\n'
    '        found.append("production-read-of-shadow")\n'
    "    return found\n"
)


def test_an_isolation_checker_that_needs_a_write_is_not_failing_closed(ws: Workspace) -> None:
    ex = get_exercise("ch7-fail-closed")
    ws.start(ex)
    fill(
        ws,
        ex,
        "    if descends and any(not _is_shadow(a) for a in writes):\n"
        '        found += ["lost-tag", "tagged-write-to-production"]\n' + _PRODUCTION_SPAN_RULES,
    )
    result = check(ws, ex)
    assert result.status == "fail", result.headline
    assert any("wrote nothing" in line and "['lost-tag']" in line for line in result.lines)


def test_an_isolation_checker_fitted_to_the_small_spans_misses_the_planted_leak(
    ws: Workspace,
) -> None:
    """Rules right on the hand-made spans (they carry no node) but blind on a real run."""
    ex = get_exercise("ch7-fail-closed")
    ws.start(ex)
    fill(
        ws,
        ex,
        '    if descends and "node" not in v:\n'
        '        found.append("lost-tag")\n'
        "        if any(not _is_shadow(a) for a in writes):\n"
        '            found.append("tagged-write-to-production")\n' + _PRODUCTION_SPAN_RULES,
    )
    result = check(ws, ex)
    assert result.status == "fail", result.headline
    assert "planted leak is not caught" in result.headline


@pytest.mark.slow
def test_an_acknowledgement_before_the_sync_is_caught_by_the_explorer(ws: Workspace) -> None:
    ex = get_exercise("ch4-accept-sync")
    ws.start(ex)
    fill(
        ws,
        ex,
        "        ctx.send(src, Accepted(msg.ballot, msg.slot, True, self.promised))\n",
    )
    result = check(ws, ex)
    assert result.status == "fail"
    assert "agreement" in "\n".join(result.lines)
    assert any("crash" in line for line in result.lines), "the trace shows the crash"


def test_a_promise_kept_in_memory_is_caught_by_the_explorer(ws: Workspace) -> None:
    ex = get_exercise("ch4-durable-promise")
    ws.start(ex)
    fill(
        ws,
        ex,
        "        self.set_promised(ctx, msg.ballot, durable=False)\n        self.sync(ctx)\n",
    )
    result = check(ws, ex)
    assert result.status == "fail", result.headline
    assert any("shortest schedule" in line for line in result.lines)


@pytest.mark.slow
def test_a_fixed_bug_still_needs_its_name(ws: Workspace) -> None:
    ex = get_exercise("ch4-find-no-adopt")
    ws.start(ex)
    solve(ws, ex)
    missing = check(ws, ex)
    wrong = check(ws, ex, answer="forget-promise")
    assert missing.status == wrong.status == "fail"
    assert "name" in missing.headline and "forget-promise" in wrong.headline


@pytest.mark.slow
def test_a_wrong_measure_fails(ws: Workspace) -> None:
    ex = get_exercise("ch2-vanished")
    ws.start(ex)
    right = solve(ws, ex)
    assert right is not None
    assert check(ws, ex).status == "fail"  # no answer
    assert check(ws, ex, answer="1.00").status == "fail"
    assert check(ws, ex, answer=f"{right} yuan").passed


@pytest.mark.slow
def test_a_commit_without_sync_fails_with_a_shrunk_schedule(ws: Workspace) -> None:
    ex = get_exercise("ch1-durable-commit")
    ws.start(ex)
    fill(
        ws,
        ex,
        "        writes = txn.commit()\n"
        "        if writes:\n"
        "            ctx.disk.append(COMMIT_LOG, tuple(writes))\n",
    )
    result = check(ws, ex)
    assert result.status == "fail"
    text = "\n".join(result.lines)
    assert "ledger" in text and "smallest fault schedule" in text
    assert "crash" in text and "was not applied" in text
    saved = f"schedules/{ex.id}.json"
    here = shown_path(ws.path)  # the workspace as seen from where the check ran
    assert f"PYTHONPATH={here} d11 test ch1 --seed" in text and f"--schedule {here}/{saved}" in text
    assert (ws.path / saved).exists(), "the shrunk schedule is saved in the workspace"
    assert "The history of the operations it names (client-" in text


def test_without_hypothesis_the_run_is_shown_unshrunk(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hunter needs hypothesis; without it the check says so instead of failing."""
    from checks.harness.spec import TestSpec
    from learn.checks import _shrink

    monkeypatch.setitem(sys.modules, "hypothesis", None)
    minimal, note = _shrink(TestSpec("ch1", nemeses=("kill",), time_s=1.0, seed=1), ("ledger",))
    assert minimal is None and "pip install hypothesis" in note


@pytest.mark.slow
@pytest.mark.parametrize(
    ("ex_id", "command", "figure"),
    [
        (
            "ch2-vanished",
            "run ch2 --scenario partition --variant naive --seed 2 --no-store --json",
            lambda s: f"{(200_000_000 - s['checks']['bank']['witness'][-1]['total']) / 100:.2f}",
        ),
        (
            "ch1-single-point",
            "run ch1 --scenario crash --seed 1 --no-store --json",
            lambda s: str(s["errors"]["timeout"]),
        ),
        (
            "ch2-hot-shard",
            "run ch2 --scenario saturate --shards 16 --seed 1 --no-store --json",
            lambda s: max(s["load"]["txns_by_store"], key=s["load"]["txns_by_store"].get),
        ),
        (
            "ch3-lost-at-seed-2",
            "run ch3 --scenario crash --seed 2 --no-store --json",
            lambda s: str(len(s["checks"]["lost-payments"]["details"]["lost"])),
        ),
        (
            "ch7-lost-tags",
            "run ch7 --variant leak --seed 1 --no-store --json",
            lambda s: str(s["checks"]["isolation"]["details"]["violations"]["lost-tag"]),
        ),
    ],
)
def test_a_measure_agrees_with_the_command_the_task_shows(
    ws: Workspace, ex_id: str, command: str, figure: Callable[[dict[str, Any]], str]
) -> None:
    """The learner reads the figure off `d11 run`; the check measures the same run."""
    ex = get_exercise(ex_id)
    assert f"d11 {command.removesuffix(' --json')}" in " ".join(ex.task.split())
    d11 = Path(sys.executable).with_name("d11")
    out = subprocess.run([str(d11), *command.split()], capture_output=True, text=True, check=True)
    summary = json.loads(out.stdout)
    assert ws.run_check(ex, truth=True).truth == figure(summary)


@pytest.mark.slow
def test_check_seeds_runs_more_seeds(ws: Workspace) -> None:
    ex = get_exercise("ch1-durable-commit")
    ws.start(ex)
    solve(ws, ex)
    result = check(ws, ex, seeds=5)
    assert result.passed and "5 seed(s) (1, 2, 3, 4, 5)" in result.headline


# The implement exercises whose check with an empty region runs long (the explorer, a ch5 run).
_BLANK_SLOW = {"ch4-accept-sync", "ch5-dedup"}


@pytest.mark.parametrize(
    "ex_id",
    [
        pytest.param(e.id, marks=pytest.mark.slow if e.id in _BLANK_SLOW else ())
        for e in all_exercises()
        if e.kind == "implement"
    ],
)
def test_a_blank_emptied_fails(ws: Workspace, ex_id: str) -> None:
    """The raise deleted and nothing written in its place: the check itself must catch it
    (not only the stub's sentinel), and say so in one line."""
    ex = get_exercise(ex_id)
    ws.start(ex)
    indent = find_region((ws.path / ex.file).read_text(), ex.region).indent
    fill(ws, ex, f"{indent}pass\n")
    result = check(ws, ex)
    assert result.status in ("fail", "crash"), (result.status, result.headline)
    assert "\n" not in result.headline and "Traceback" not in result.headline


def test_the_timing_benchmark_prints_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    from learn.timing import main

    main(["ch2-find-fence-bug"])
    lines = capsys.readouterr().out.splitlines()
    row = next(line for line in lines if line.startswith("ch2-find-fence-bug"))
    assert row.split()[2] == "fail" and row.split()[6] == "pass", row
    assert lines[-1].startswith("checks_within_budget: ") and lines[-1].endswith("/1")
