"""`d11 check ledger` on a capstone history: one ledger per part, each checked alone."""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from checks.history import Event, write_jsonl
from tui.cli import app

runner = CliRunner()
pytestmark = pytest.mark.slow  # the capstone's run: about 15 s of CPU


@functools.cache
def _capstone() -> list[Event]:
    from chapters.run import simulate

    return simulate("double11", "steady", seed=1, duration_s=1.0, checks=()).history


def _ledger(tmp_path: Path, events: list[Event], *args: str) -> tuple[int, dict[str, object]]:
    write_jsonl(tmp_path / "history.jsonl", events)
    res = runner.invoke(app, ["check", "ledger", str(tmp_path), "--json", *args])
    return res.exit_code, json.loads(res.stdout)


def test_each_ledger_part_is_checked_alone_and_the_queue_set_aside(tmp_path: Path) -> None:
    code, verdict = _ledger(tmp_path, _capstone())
    assert (code, verdict["valid"]) == (0, True), verdict["summary"]
    details = verdict["details"]
    assert isinstance(details, dict)
    assert sorted(details["parts_checked"]) == ["cells", "degrade", "rehearsal"]
    assert list(details["parts_set_aside"]) == ["mq"]
    code, one = _ledger(tmp_path, _capstone(), "--part", "degrade")
    assert code == 0 and isinstance(one["details"], dict)
    assert list(one["details"]["parts_checked"]) == ["degrade"]
    code, bad = _ledger(tmp_path, _capstone(), "--part", "nowhere")
    assert code == 2 and "has parts cells, degrade, mq, rehearsal" in str(bad["error"])


def test_the_exit_status_is_the_worst_part_s(tmp_path: Path) -> None:
    """A final read in the degrade part that saw a cent more: that part is invalid,
    the others valid, the whole exits 1."""
    events = list(_capstone())
    i = max(
        i
        for i, ev in enumerate(events)
        if ev.f == "read" and ev.type == "ok" and ev.extra.get("part") == "degrade"
    )
    value = dict(events[i].value)
    first = next(iter(value))
    value[first] += 1
    events[i] = dataclasses.replace(events[i], value=value)
    code, verdict = _ledger(tmp_path, events)
    assert (code, verdict["valid"]) == (1, False), verdict["summary"]
    details = verdict["details"]
    assert isinstance(details, dict)
    checked = details["parts_checked"]
    assert {k: v["valid"] for k, v in checked.items()} == {
        "cells": True,
        "degrade": False,
        "rehearsal": True,
    }
