"""Store folders, schedule.json and test.json as untrusted input.

`d11 replay`, `d11 test --schedule` and `d11 tui --attach` read files a user
may have edited, cut short or written by hand. Whatever they hold, the answer
is a verdict on the run or exit 2 with one line naming the file: never a
traceback, never a replay that "reproduces" a history it did not check.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from checks.harness.runner import HarnessError, TestSpec, run_test
from checks.harness.store import load_store, write_manifest, write_store
from tui.cli import app

CONTROL = TestSpec(chapter="ch1", time_s=1.0, seed=3)
FEW = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A whole store folder of a short valid ch1 run (no HTML: small and quick to copy)."""
    return write_store(run_test(CONTROL), tmp_path_factory.mktemp("store"), html=False)


def copy_of(folder: Path, tmp_path: Path, name: str = "copy") -> Path:
    target = tmp_path / name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(folder, target)
    return target


def invoke(args: list[str]) -> Any:
    return CliRunner().invoke(app, args)


def assert_refused(result: Any, *words: str) -> None:
    """Exit 2, one line, no traceback, and the line says what it should."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert "a bug in d11" not in result.output, "refused by the loader, not the last resort"
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    for word in words:
        assert word in lines[0], result.output


# -- the manifest: a folder whose files changed is refused --------------------------------


def test_a_store_folder_records_the_sha256_of_each_file(stored: Path) -> None:
    manifest = json.loads((stored / "manifest.json").read_text())
    assert manifest["algorithm"] == "sha256"
    assert {"test.json", "schedule.json", "history.jsonl", "verdicts.json"} <= set(
        manifest["files"]
    )
    assert all(len(h) == 64 for h in manifest["files"].values())


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda f: (f / "history.jsonl").write_text(""), "history.jsonl"),  # emptied
        (lambda f: _drop_last_event(f / "history.jsonl"), "history.jsonl"),  # still well formed
        (lambda f: _edit_json(f / "verdicts.json", lambda v: {}), "verdicts.json"),
        (lambda f: (f / "manifest.json").unlink(), "manifest.json"),
        (lambda f: (f / "schedule.json").unlink(), "schedule.json"),
        (lambda f: next((f / "nodes").iterdir()).write_text("x\n"), "nodes/"),
    ],
    ids=["emptied", "one-event-less", "verdicts", "no-manifest", "no-schedule", "node-log"],
)
def test_a_changed_folder_is_refused_naming_the_file(
    stored: Path, tmp_path: Path, edit: Any, named: str
) -> None:
    folder = copy_of(stored, tmp_path)
    edit(folder)
    with pytest.raises(HarnessError, match=named):
        load_store(folder)
    assert_refused(invoke(["replay", str(folder), "--store", str(tmp_path / "out")]), named)
    assert not (tmp_path / "out").exists(), "refused before anything ran"
    assert_refused(invoke(["tui", "--attach", str(folder)]), named)


def _drop_last_event(path: Path) -> None:
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]))


def _edit_json(path: Path, change: Any) -> None:
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def test_a_replay_compares_the_history_not_only_the_digest(stored: Path, tmp_path: Path) -> None:
    """A history changed and the manifest rewritten to match: the replay still sees it."""
    folder = copy_of(stored, tmp_path)
    _drop_last_event(folder / "history.jsonl")
    write_manifest(folder)
    result = invoke(["replay", str(folder), "--store", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert "not reproduced" in result.output and "history" in result.output


def test_replay_help_says_what_its_exit_status_means() -> None:
    result = invoke(["replay", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "0 the run was reproduced exactly" in text and "whatever that verdict is" in text
    assert "1 it was not reproduced" in text and "2 it could not be replayed" in text


# -- schedule.json, checked against the stage it runs on ----------------------------------

NODE_OPS = ("crash", "restart", "pause", "resume")
BAD_NUMBERS = [math.nan, math.inf, -math.inf, "1", True, None, [], {}, 10**400]


def _bad_action() -> st.SearchStrategy[dict[str, Any]]:
    """One action that cannot run on chapter 1 (nodes monolith, client-1, client-2)."""
    at = st.sampled_from([0.0, 300.0])
    bad_name = st.sampled_from(["nope", "", "client-9", "Monolith", "client-1"]) | st.integers()
    bad_share = st.sampled_from([*BAD_NUMBERS, -0.1, 1.5, 5])
    bad_skew = st.sampled_from([*BAD_NUMBERS, 1e12, "abc"])
    net = {"loss": 0.0, "duplicate": 0.0, "reorder": 0.0}
    return st.one_of(
        st.builds(lambda op, n, t: {"op": op, "node": n, "at_ms": t},
                  st.sampled_from(NODE_OPS), bad_name, at),
        st.builds(lambda t: {"op": "crash", "at_ms": t}, at),  # no node
        st.builds(lambda t, n: {"op": "crash", "node": "monolith", "at_ms": n},
                  at, st.sampled_from([*BAD_NUMBERS, -1, 1e300])),
        st.builds(lambda k, v, t: {"op": "skew", "node": "monolith", "skew_ms": 5.0,
                                   "drift_ppm": 0.0, k: v, "at_ms": t},
                  st.sampled_from(["skew_ms", "drift_ppm"]), bad_skew, at),
        st.builds(lambda k, v, t: {"op": "net", **net, k: v, "at_ms": t},
                  st.sampled_from(list(net)), bad_share, at),
        st.builds(lambda g, t: {"op": "partition", "groups": g, "one_way": False, "at_ms": t},
                  st.sampled_from([[["monolith"]], [["monolith"], ["monolith"]],
                                   [["nope"], ["monolith"]], "monolith", [[1], ["x"]],
                                   [["hz-1"], ["monolith"]], [["hangzhou"], ["client-1"]]]),
                  at),
        st.builds(lambda w, t: {"op": "partition", "groups": [["monolith"], ["client-1"]],
                                "one_way": w, "at_ms": t},
                  st.sampled_from(["yes", 1, None, []]), at),
        st.builds(lambda x, t: {"op": "isolate", "target": x, "at_ms": t},
                  st.sampled_from(["mars", 3, None, ["monolith"]]), at),
        st.builds(lambda links, t: {"op": "cut", "links": links, "at_ms": t},
                  st.sampled_from([[["monolith", "nope"]], [["monolith"]], "x", [[1, 2]]]), at),
        st.builds(lambda op, t: {"op": op, "at_ms": t},
                  st.sampled_from(["explode", 3, None, ""]), at),
    )  # fmt: skip


def _bad_schedule() -> st.SearchStrategy[Any]:
    good = st.just({"op": "crash", "node": "monolith", "at_ms": 300.0})
    return st.one_of(
        st.builds(
            lambda before, bad: {"version": 1, "seed": 3, "nemeses": ["kill"],
                                 "actions": [*before, bad]},
            st.lists(good, max_size=2), _bad_action(),
        ),
        st.sampled_from([
            [], "schedule", 3, None, {"actions": "all"}, {"actions": [1]},
            {"version": 2, "actions": []}, {"seed": "x", "actions": []},
            {"nemeses": ["meteor"], "actions": []},
            {"nemeses": 5, "actions": []},
            {"seed": True, "actions": []},
            {"version": [1], "actions": []},
            {"actions": [{"op": "crash", "node": "monolith", "at_ms": 10**400}]},
            {"actions": [{"op": "crash", "node": "monolith", "at_ms": 1, "fault": {}}]},
            {"actions": [{"op": "heal", "at_ms": 1.0}] * 10_001},
        ]),
    )  # fmt: skip


@FEW
@given(schedule=_bad_schedule())
def test_a_bad_schedule_is_refused_by_test_and_replay(
    stored: Path, tmp_path: Path, schedule: Any
) -> None:
    path = tmp_path / "schedule.json"
    path.write_text(json.dumps(schedule))  # NaN and Infinity as Python's json writes them
    result = invoke(["test", "ch1", "--time", "1", "--schedule", str(path),
                     "--store", str(tmp_path / "out")])  # fmt: skip
    assert_refused(result)
    folder = copy_of(stored, tmp_path)
    shutil.copy(path, folder / "schedule.json")
    write_manifest(folder)  # as if the folder had been written so: content checks alone
    assert_refused(invoke(["replay", str(folder), "--store", str(tmp_path / "out")]))
    assert not (tmp_path / "out").exists(), "refused before anything ran"


def test_a_schedule_naming_an_unknown_node_says_which() -> None:
    from checks.harness.inputs import check_schedule
    from checks.nemesis import Schedule

    schedule = Schedule.from_json({"actions": [{"op": "crash", "node": "nope", "at_ms": 5}]})
    with pytest.raises(HarnessError, match=r"action 0 \(crash at 5 ms\): no node 'nope'"):
        check_schedule(schedule, CONTROL)


# -- test.json ------------------------------------------------------------------------------

_BAD_FIELDS: dict[str, list[Any]] = {
    "chapter": [3, None, "ch9", ["ch1"]],
    "workload": ["nap", 1],
    "nemeses": ["kill", ["meteor"], [1], {}],
    "time_s": [math.nan, math.inf, -1, 0, 1e9, "4", True],
    "seed": ["x", 1.5, True, 2**70, None],
    "backend": ["mainframe", 0],
    "variant": ["nope", 1],
    "shards": [-1, 10**6, 1.5, "2"],
    "cells": [-1, 10**6, True],
    "interval_ms": [math.nan, 0, -5, "x", 1e12],
    "fault_ms": [math.nan, 0, "x", math.inf],
    "extra": [
        [],
        "x",
        {"warp": {"deep": 1}},
        {"warp": [math.inf]},
        {"steady_tps": 1e12},
        {"users": "many"},
        {"steady_tps": math.nan},
    ],
    "scenario": ["lunch", 7],
    "scale": [2, -1, math.nan, "1/453"],
    "surprise": [1],
}


@FEW
@given(data=st.data())
def test_a_bad_test_json_is_refused_at_load_time(
    stored: Path, tmp_path: Path, data: st.DataObject
) -> None:
    folder = copy_of(stored, tmp_path)
    record = json.loads((folder / "test.json").read_text())
    where = data.draw(st.sampled_from(["spec", "record", "whole"]))
    if where == "spec":
        field = data.draw(st.sampled_from(sorted(_BAD_FIELDS)))
        record["spec"][field] = data.draw(st.sampled_from(_BAD_FIELDS[field]))
    elif where == "record":
        key, value = data.draw(
            st.sampled_from([("valid", "yes"), ("valid", None), ("digest", 5), ("spec", [])])
        )
        record[key] = value
    else:
        record = data.draw(st.sampled_from([[], "x", None, {"valid": True}]))
    (folder / "test.json").write_text(json.dumps(record))
    write_manifest(folder)
    result = invoke(["replay", str(folder), "--store", str(tmp_path / "out")])
    assert_refused(result, "test.json")


# -- malformed folders as a whole ------------------------------------------------------------


def _break(folder: Path, how: str) -> None:
    if how == "history-binary":
        (folder / "history.jsonl").write_bytes(b"\xff\xfe\x00garbage")
    elif how == "history-is-a-folder":
        (folder / "history.jsonl").unlink()
        (folder / "history.jsonl").mkdir()
    elif how == "test-not-json":
        (folder / "test.json").write_text("{")
    elif how == "test-deep":
        (folder / "test.json").write_text("[" * 100_000)
    elif how == "verdicts-list":
        (folder / "verdicts.json").write_text("[1, 2]")
    elif how == "manifest-not-json":
        (folder / "manifest.json").write_text("nope")
    elif how == "manifest-escapes":
        (folder / "manifest.json").write_text(json.dumps({"files": {"../../etc/passwd": "0"}}))
    elif how == "manifest-files-list":
        (folder / "manifest.json").write_text(json.dumps({"files": ["test.json"]}))
    elif how == "empty-folder":
        for path in folder.iterdir():
            shutil.rmtree(path) if path.is_dir() else path.unlink()


BREAKS = ["history-binary", "history-is-a-folder", "test-not-json", "test-deep",
          "verdicts-list", "manifest-not-json", "manifest-escapes", "manifest-files-list",
          "empty-folder"]  # fmt: skip


@FEW
@given(how=st.sampled_from(BREAKS), remanifest=st.booleans())
def test_a_malformed_store_folder_is_refused_by_replay_and_attach(
    stored: Path, tmp_path: Path, how: str, remanifest: bool
) -> None:
    from tui.replay import Replay, ReplayError

    folder = copy_of(stored, tmp_path)
    _break(folder, how)
    if remanifest and not how.startswith("manifest"):
        write_manifest(folder)
    assert_refused(invoke(["replay", str(folder), "--store", str(tmp_path / "out")]))
    with pytest.raises(ReplayError):
        Replay(folder)


# -- every folder the project writes replays and attaches ---------------------------------


def test_a_d11_run_folder_replays_exactly_and_attaches(tmp_path: Path) -> None:
    from tui.replay import Replay

    folder = tmp_path / "run"
    args = ["run", "ch1", "--scenario", "crash", "--seed", "3", "--duration-s", "1"]
    ran = invoke([*args, "--store", str(folder)])
    assert ran.exit_code == 0, ran.output
    assert (folder / "test.json").is_file() and (folder / "manifest.json").is_file()
    replayed = invoke(["replay", str(folder), "--store", str(tmp_path / "out")])
    assert replayed.exit_code == 0, replayed.output
    assert "reproduced: same digest, history and verdict" in " ".join(replayed.output.split())
    replay = Replay(folder)
    replay.scrub_to(-1)
    frame = replay.frame()
    assert frame.scenario == "crash" and frame.chapter == "ch1"


# -- unwritable destinations, found before the run -------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["test", "ch1", "--time", "1", "--store", "{file}"],
        ["test", "ch1", "--time", "1", "--junit", "{dir}"],
        ["test", "ch1", "--time", "1", "--junit", "{file}/j.xml"],
        ["hunt", "ch1", "--budget", "1", "--store", "{file}/sub"],
        ["run", "ch1", "--duration-s", "1", "--store", "{file}"],
        ["replay", "{stored}", "--store", "{file}"],
    ],
    ids=["test-store", "test-junit-dir", "test-junit-under-file", "hunt", "run", "replay"],
)
def test_an_unwritable_destination_is_refused_before_the_run(
    stored: Path, tmp_path: Path, args: list[str]
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder\n")
    values = {"file": str(a_file), "dir": str(tmp_path), "stored": str(stored)}
    result = invoke([a.format(**values) for a in args])
    assert_refused(result)
    assert "--store" in result.output or "--junit" in result.output


def test_a_folder_saved_from_the_tui_says_why_it_does_not_reproduce(tmp_path: Path) -> None:
    from dataclasses import replace

    folder = write_store(replace(run_test(CONTROL), origin="tui"), tmp_path / "tui", html=False)
    _drop_last_event(folder / "history.jsonl")  # a live session's run differs from its spec's
    write_manifest(folder)
    result = invoke(["replay", str(folder), "--store", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert "saved from a live d11 tui session" in " ".join(result.output.split())


def test_a_schedule_may_not_crash_a_client() -> None:
    """A restarted client would reuse its process ids, and the history would break."""
    from checks.harness.inputs import check_schedule
    from checks.nemesis import Schedule

    schedule = Schedule.from_json({"actions": [{"op": "crash", "node": "client-1", "at_ms": 1}]})
    with pytest.raises(HarnessError, match="client-1 is a client"):
        check_schedule(schedule, CONTROL)
