"""The delivery witness names the events it cites by their history.jsonl lines.

`d11 test double11 --nemesis kill,partition-halves --seed 1` said "effect applied
2 times (indices [9360, 48288])" (the trial's F17): positions in chapter 5's part
of the night, numbered anew for its checkers (`CapstoneDeployment.part_history`),
while history.jsonl holds the whole night; line 9361 of it was a span of another
part. The witness now gives each event's line in the run's history.jsonl,
counted from 1 as an editor shows them: the two applies' ok events at lines
13941 and 61335 of that run's file.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from chapters.capstone.stage import CapstoneDeployment
from checks.delivery import check_delivery
from checks.history import Event
from checks.verdict import Verdict
from learn.feedback import history_lines

MSG = "client-1-388"
APPLY = {"id": MSG, "group": "g"}
RECEIVE = {"id": MSG, "key": "k", "group": "g"}


def _story() -> list[tuple[str, str, str, dict[str, Any]]]:
    """(part, type, f, value): a message sent, committed, received and applied twice."""
    return [
        ("mq", "invoke", "send", {"id": MSG, "key": "k"}),
        ("mq", "ok", "send", {"id": MSG, "key": "k"}),
        ("mq", "invoke", "commit", {"id": MSG}),
        ("mq", "ok", "commit", {"id": MSG}),
        ("mq", "invoke", "receive", RECEIVE),
        ("mq", "ok", "receive", RECEIVE),
        ("mq", "invoke", "apply", APPLY),
        ("mq", "ok", "apply", APPLY),  # line 8 of the part alone
        ("mq", "invoke", "receive", RECEIVE),
        ("mq", "ok", "receive", RECEIVE),
        ("mq", "invoke", "apply", APPLY),
        ("mq", "ok", "apply", APPLY),  # line 12 of the part alone
    ]


def _process(f: str) -> str:
    return "producer" if f in ("send", "commit") else "consumer"


def test_a_history_judged_whole_is_cited_by_its_lines() -> None:
    events = [
        Event(t, _process(f), f, v, float(i), i) for i, (_, t, f, v) in enumerate(_story())
    ]  # fmt: skip
    v = check_delivery(events)
    assert v.valid is False, v.summary
    assert "effect applied 2 times (history.jsonl lines [8, 12])" in v.summary
    assert isinstance(v.witness, list) and v.witness[0]["line"] == 12


def test_a_capstone_part_is_cited_by_its_lines_in_the_whole_night() -> None:
    """Another part's event before each of chapter 5's: the part's checkers read
    its events numbered 0, 1, ..., and cite the night's lines (2, 4, ...)."""
    merged: list[Event] = []
    for part, t, f, v in _story():
        merged.append(Event("invoke", 7, "transfer", {"id": "c1"}, 0.0, len(merged),
                            {"part": "degrade"}))  # fmt: skip
        merged.append(Event(t, _process(f), f, v, 0.0, len(merged), {"part": part}))
    night: Any = SimpleNamespace(parts={"mq": None, "cells": None, "degrade": None})
    events = CapstoneDeployment.part_history(night, "mq", merged)
    assert [e.index for e in events] == list(range(12))  # the part's own numbering
    v = check_delivery(events)
    assert "effect applied 2 times (history.jsonl lines [16, 24])" in v.summary, v.summary
    assert [merged[n - 1].f for n in (16, 24)] == ["apply", "apply"]
    # The learner's excerpt shows the two applies the witness names (by line).
    verdict = Verdict("delivery", False, v.summary, witness=v.witness)
    result: Any = SimpleNamespace(verdicts={"delivery": verdict}, history=merged)
    shown = history_lines(result, ("delivery",))
    assert sum(f" ok     {MSG} apply " in line for line in shown) == 2, shown
