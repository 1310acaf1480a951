"""Every figure `d11 run` prints counts what its label names (a newcomer's trial,
F3, F4 and F7): hand-made summaries and histories, no run (fast).

- the capstone's pipeline line counts messages, not commit events;
- timeouts that no final phase asked about again are not "settled";
- payments refused at the door got an answer: they are counted on their own.
"""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import Any, cast

from rich.console import Console

from chapters.capstone.pipeline import PipelineQueue, pipeline_figures
from chapters.report import _errors_line, _night
from checks.history import Event


def _text(summary: dict[str, Any]) -> str:
    out = io.StringIO()
    Console(file=out, width=400, no_color=True).print(_night(summary))
    return " ".join(out.getvalue().split())


def _queue(*steps: tuple[str, str, dict[str, object]]) -> PipelineQueue:
    """(type, f, value) -> a queue part whose history is those events."""
    history = [
        Event(kind, "pay-hz-1#1/1", f, value, float(i), i, {"part": "mq"})
        for i, (kind, f, value) in enumerate(steps)
    ]
    return cast(PipelineQueue, SimpleNamespace(history=history))


def _commit(mid: str, by_check: bool = False, f: str = "commit") -> list[tuple[str, str, dict]]:
    value: dict[str, object] = {"id": mid} | ({"by": "check"} if by_check else {})
    return [("invoke", f, value), ("ok", f, value)]


def _settle(mid: str) -> tuple[str, str, dict[str, object]]:
    return ("ok", "settle", {"id": mid, "payment": mid, "result": "ok"})


def test_the_pipeline_counts_each_message_once() -> None:
    """Seed 1 at 1/400 printed '2,137 cells payments through the queue; 2,298
    committed (156 by check-back)': 171 messages were recorded committed by their
    producer (its local transaction) and again ~28 s later by its answer to the
    broker's check-back (the broker had no word from it), 5 twice by the producer.
    Each is one message; those the broker checked back were resolved there by
    the check-back, whichever was recorded first."""
    queue = _queue(
        *_commit("p1"), *_commit("p1", by_check=True),  # the producer's word lost
        *_commit("p2", by_check=True), *_commit("p2"),  # a race: the check first
        *_commit("p3"), *_commit("p3"),  # a producer's retry
        *_commit("p4", f="rollback"),
        *_commit("p5"),
        ("invoke", "send", {"id": "t1", "topic": "pt_payments"}),
        *_commit("t1"), *_commit("t1", by_check=True),
        _settle("p1"), _settle("p2"), _settle("p3"), _settle("p5"), _settle("t1"),
    )  # fmt: skip
    figures = pipeline_figures(queue)
    assert figures == {
        "payments": 5,
        "committed": 4,
        "committed_by_check": 2,
        "rolled_back": 1,
        "rolled_back_by_check": 0,
        "settled": 4,
        "load_test": {"payments": 1, "committed": 1, "settled": 1},
    }
    night = {"parts": {}, "pipeline": figures}
    text = _text(night)
    assert (
        "pipeline: 5 cells payments through the queue; 4 committed (2 of them resolved at the "
        "broker by its check-back), 1 rolled back, 4 settled" in text
    ), text
    assert "load test through it: 1 tagged payments, 1 committed and 1 settled" in text


def test_refusals_at_the_door_are_answers_counted_on_their_own() -> None:
    """Seed 1 at 1/400 printed '53.6% of 5,920 payments got no acknowledgement in
    time (flow:pay 1,414, try-timeout 1,200, timeout 519, handover 41)': a flow
    rule's refusal and a gateway's in a handover were answered at once, as the
    night table's footnote says ('refused or declined')."""
    errors = {"flow:pay": 1414, "try-timeout": 1200, "timeout": 519, "handover": 41}
    s = {"payments": 5920, "error_rate": round(3174 / 5920, 4), "errors": errors}
    line = _errors_line(s)
    assert line.startswith(
        "29.0% of 5,920 payments got no acknowledgement in time (try-timeout 1,200, timeout 519)"
    ), line
    assert "; 1,455 refused at the door (24.6%: flow:pay 1,414, handover 41): answered" in line
    only = {"payments": 100, "error_rate": 0.2, "errors": {"flow:pay": 15, "declined": 5}}
    line = _errors_line(only)
    assert line.startswith("none of 100 payments went unanswered; 15 refused at the door (15.0%")
    assert "; 5 declined (5.0%)" in line


def test_timeouts_nobody_asked_about_again_are_not_called_settled() -> None:
    """`d11 run ch5 --scenario crash --seed 1` printed 'the final phase settled the
    114 timeouts: 0 applied, 0 not, 114 still unknown': its final phase retries
    none of them (d11 check ledger on its folder: the final read resolves them, 3
    applied, 111 not)."""
    settled = {"applied": 0, "not_applied": 0, "unknown": 114, "asked": 0}
    s = {"payments": 364, "error_rate": 0.43, "errors": {"timeout": 114, "declined": 43},
         "timeouts": 114, "settled": settled}  # fmt: skip
    line = _errors_line(s)
    assert "settled" not in line, line
    assert "; 114 timeouts (no answer by the deadline): not asked again" in line
    # A final phase that did retry them still says what it settled (chapter 1).
    s["settled"] = {"applied": 100, "not_applied": 4, "unknown": 10, "asked": 114}
    line = _errors_line(s)
    assert (
        "; the final phase settled the 114 timeouts: 100 applied, 4 not, 10 still unknown" in line
    )


def test_timeouts_asked_again_without_an_answer_are_not_called_settled() -> None:
    """`d11 run ch6 --scenario overload-10x --variant none --seed 1` printed "the final
    phase settled the 3,338 timeouts: 0 applied, 0 not, 3,338 still unknown": it
    asked, and the overloaded store answered none (a newcomer's trial)."""
    settled = {"applied": 0, "not_applied": 0, "unknown": 3338, "asked": 3338}
    s = {"payments": 3424, "error_rate": 0.975, "errors": {"timeout": 3338},
         "timeouts": 3338, "settled": settled}  # fmt: skip
    line = _errors_line(s)
    assert "settled" not in line, line
    assert (
        "; 3,338 timeouts (no answer by the deadline): the final phase asked 3,338 of them "
        "again and got no answer, so 3,338 stay unknown" in line
    )


def test_timeouts_nobody_asked_about_give_the_final_read_s_resolution() -> None:
    """Chapter 5's clients do not ask again; the line gives the fate the final read
    shows (`d11 run ch5 --scenario crash --seed 1`: d11 check ledger on its folder
    resolves the 114 timeouts, 3 applied, 111 not)."""
    settled = {"applied": 0, "not_applied": 0, "unknown": 114, "asked": 0}
    s = {"payments": 364, "error_rate": 0.43, "errors": {"timeout": 114, "declined": 43},
         "timeouts": 114, "settled": settled,
         "final_read_resolution": {"applied": 3, "not_applied": 111}}  # fmt: skip
    line = _errors_line(s)
    assert line.endswith(
        "; 114 timeouts (no answer by the deadline), not asked again; the final read finds "
        "3 applied, 111 not"
    ), line


def test_ch5_reads_the_timeouts_fate_from_its_final_read() -> None:
    """The run computes that resolution itself, once, after the run."""
    from chapters.run import simulate

    run = simulate("ch5", "crash", seed=1, checks=())
    assert run.summary["timeouts"] == 114
    assert run.summary["final_read_resolution"] == {"applied": 3, "not_applied": 111}
