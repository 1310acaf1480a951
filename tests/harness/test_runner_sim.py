"""The harness on the simulator: verdicts, exact replays, store folders, the hunter."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from typer.testing import CliRunner

from checks.harness.hunt import hunt
from checks.harness.junit import write_junit
from checks.harness.runner import HarnessError, TestSpec, run_test
from checks.harness.store import load_store, write_store
from tui.cli import app

NAIVE = TestSpec(chapter="ch2", variant="naive", nemeses=("kill",), time_s=2.0, seed=1)


@pytest.fixture(scope="module")
def naive_run():
    return run_test(NAIVE)


def test_a_control_run_is_valid_and_deterministic() -> None:
    spec = TestSpec(chapter="ch1", time_s=1.0, seed=3)
    one, two = run_test(spec), run_test(spec)
    assert one.valid is True and one.exit_code == 0
    assert one.digest == two.digest
    assert one.schedule.actions == ()


def test_naive_transfers_under_kill_are_caught_breaking_the_bank(naive_run) -> None:
    assert naive_run.valid is False and naive_run.exit_code == 1
    assert naive_run.verdicts["bank"].valid is False
    # The chapter says so: an expected failure, reported with its reason.
    assert naive_run.judged["bank"].outcome == "expected-failure"
    # Every fault the schedule ran is in the history, as a nemesis event.
    nemesis_ops = [e.f for e in naive_run.history if e.process == "nemesis"]
    for action in naive_run.schedule.actions:
        assert action.op in nemesis_ops


def test_a_stored_failing_run_replays_to_the_same_digest_and_verdict(
    naive_run, tmp_path: Path
) -> None:
    folder = write_store(naive_run, tmp_path)
    for name in ("test.json", "schedule.json", "history.jsonl", "verdicts.json", "report.html"):
        assert (folder / name).is_file(), name
    assert any((folder / "nodes").iterdir()), "per-node logs"
    stored = load_store(folder)
    replayed = run_test(stored.spec, stored.schedule)
    assert replayed.digest == stored.digest == naive_run.digest
    assert replayed.valid is False
    assert len(replayed.history) == len(stored.history)


def test_junit_reports_each_checker(naive_run, tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    write_junit(naive_run, path)
    suite = ET.parse(path).getroot()
    assert suite.get("failures") == str(
        sum(1 for v in naive_run.verdicts.values() if v.valid is False)
    )
    assert {case.get("name") for case in suite.iter("testcase")} == set(naive_run.verdicts)


def test_a_corrupt_stored_history_is_a_clear_error(naive_run, tmp_path: Path) -> None:
    folder = write_store(naive_run, tmp_path, html=False)
    lines = (folder / "history.jsonl").read_text().splitlines()
    lines[5] = lines[5][: len(lines[5]) // 2]
    (folder / "history.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(HarnessError, match=r"corrupt history.*line 6"):
        load_store(folder)
    result = CliRunner().invoke(app, ["replay", str(folder)])
    assert result.exit_code == 2
    assert "corrupt history" in result.output and "Traceback" not in result.output


def test_the_hunter_finds_and_shrinks_the_naive_transfer_bug() -> None:
    base = TestSpec(chapter="ch2", variant="naive", nemeses=("kill", "pause"), time_s=2.0, seed=4)
    found = hunt(base, budget=8)
    assert found.found and found.minimal is not None
    assert len(found.minimal.schedule.intervals()) <= 2
    # The minimal schedule replays to the same failure.
    again = run_test(found.minimal.spec, found.minimal.schedule)
    assert again.valid is False and again.digest == found.minimal.digest


def test_the_budget_bounds_shrinking_too(tmp_path: Path) -> None:
    """--budget counts every simulation, the shrinker's too: a failure found on the
    first run gets one more to shrink with, and the smallest failing run is kept.
    (Hypothesis's max_examples bounds only the search: `d11 hunt ch5 --budget 5`
    shrank for 205 s.)"""
    base = TestSpec(chapter="ch2", variant="naive", nemeses=("kill", "pause"), time_s=2.0, seed=4)
    runs: list[tuple[object, int]] = []
    found = hunt(
        base, budget=2, on_run=lambda n, r: runs.append((r.valid, len(r.schedule.intervals())))
    )
    assert found.runs == len(runs) == 2 and found.shrink_cut
    assert found.minimal is not None and found.minimal.valid is False
    failing = [faults for valid, faults in runs if valid is False]
    assert len(found.minimal.schedule.intervals()) == min(failing)
    result = CliRunner().invoke(
        app,
        ["hunt", "ch2", "--variant", "naive", "--nemesis", "kill,pause", "--time", "2",
         "--seed", "4", "--budget", "2", "--store", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "shrunk over 2 runs" in result.output
    assert "shrinking stopped early at the budget (2 runs)" in result.output
    # Cut short, the table does not claim a minimum it did not prove.
    assert "shortest failing schedule found" in result.output
    assert "minimal schedule" not in result.output
    # The printed `or:` command stores its run under the schedule's faults, not "none".
    line = next(ln for ln in result.output.splitlines() if ln.startswith("or: "))
    words = shlex.split(line)
    args = words[words.index("test") :]  # past "or:" and however d11 was invoked
    again = CliRunner().invoke(app, [*args, "--store", str(tmp_path / "or")])
    assert again.exit_code == 1, again.output
    (test_folder,) = (tmp_path / "or").iterdir()
    assert not test_folder.name.endswith("-none"), test_folder.name
    assert test_folder.name.startswith("ch2-naive-payments-"), test_folder.name


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["test", "ch2", "--backend", "mainframe"], "unknown backend 'mainframe'"),
        (["test", "ch2", "--nemesis", "meteor"], "unknown nemesis 'meteor'"),
        (["test", "ch9"], "no chapter 'ch9'"),
        (["test", "ch2", "--workload", "nap"], "unknown workload 'nap'"),
        (["test", "ch2", "--schedule", "/nonexistent.json"], "cannot read"),
        (["hunt", "ch2", "--budget", "0"], "error: invalid value for --budget"),
    ],
)
def test_bad_options_exit_2_with_one_line(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_d11_test_prints_json_and_exits_with_the_verdict(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "test",
            "ch2",
            "--variant",
            "naive",
            "--nemesis",
            "kill",
            "--time",
            "2",
            "--seed",
            "1",
            "--json",
            "--store",
            str(tmp_path),
            "--junit",
            str(tmp_path / "j.xml"),
        ],
    )
    assert result.exit_code == 1, result.output
    outcome = json.loads(result.output)
    assert outcome["valid"] is False
    assert outcome["checks"]["bank"]["valid"] is False
    assert Path(outcome["store"]).is_dir()
    assert (tmp_path / "j.xml").is_file()


def test_the_hunters_table_reads_as_words_not_raw_json(naive_run) -> None:
    from checks.harness import cli

    with cli.console.capture() as captured:
        cli._print_side_by_side(naive_run)
    text = captured.get()
    crash = next(a for a in naive_run.schedule.actions if a.op == "crash")
    assert f"crash {crash.params['node']}" in text
    assert "wrong-total at event" in text or "half-applied at event" in text
    assert '{"' not in text and '"kind"' not in text
