"""Chapter 5's report reads as words where a reader reads it (the newcomer's trial):
the consumer-lag table gave the groups that kept consuming figures "at the resume"
and "after resume" (loyalty: 11 at the resume, caught up 1,559 ms after it) when
only the stalled group paused and resumed. Hand-made summaries, no run (fast)."""

from __future__ import annotations

import io

from rich.console import Console

from chapters.report import _lag

# `d11 run ch5 --scenario consumer-lag --seed 1 --json`'s `lag`, its figures rounded.
LAG: dict[str, object] = {
    "stall": {"group": "settlement", "members": ["settlement-hz", "settlement-sh"],
              "paused_at_ms": 1000.0, "resumed_at_ms": 3000.0},
    "groups": {
        "settlement": {"backlog_peak": 171, "backlog_peak_at_ms": 3053.5,
                       "backlog_at_resume": 169, "caught_up_after_resume_ms": 4737.5,
                       "backlog_last": 0, "committed_lag_peak": 280,
                       "committed_lag_peak_at_ms": 4011.9,
                       "committed_lag_zero_after_resume_ms": 7530.7, "committed_lag_last": 0},
        "loyalty": {"backlog_peak": 28, "backlog_peak_at_ms": 1569.6, "backlog_at_resume": 11,
                    "caught_up_after_resume_ms": 1558.7, "backlog_last": 0,
                    "committed_lag_peak": 18, "committed_lag_peak_at_ms": 2737.6,
                    "committed_lag_zero_after_resume_ms": 1510.8, "committed_lag_last": 0},
    },
    "committed_lag_samples": 1047,
}  # fmt: skip


def _rows() -> dict[str, list[str]]:
    out = io.StringIO()
    Console(file=out, width=200, no_color=True).print(_lag({"lag": LAG}))
    rows: dict[str, list[str]] = {}
    for line in out.getvalue().splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) == 3:
            rows[cells[0]] = cells[1:]
    return rows


def test_a_group_that_never_paused_has_no_resume_figures() -> None:
    rows = _rows()
    for label in ("backlog at the resume", "caught up after resume", "committed 0 after resume"):
        settlement, loyalty = rows[label]
        assert loyalty == "never paused", (label, rows[label])
        assert settlement != "never paused" and settlement[0].isdigit(), (label, rows[label])
    # Its peaks are its own, paused or not.
    assert rows["backlog peak (at)"] == ["171 (3,054)", "28 (1,570)"]
    assert rows["committed peak (at)"] == ["280 (4,012)", "18 (2,738)"]


def test_a_message_s_life_says_yes_and_no() -> None:
    """`d11 run ch5 --seed 1`'s message trace printed `half=True` and `duplicate=False`
    (1 s of traffic here: the same message, the same fields)."""
    from chapters.run import simulate

    run = simulate("ch5", "steady", seed=1, checks=(), duration_s=1.0)
    steps = run.summary["message_trace"]["steps"]
    details = " ".join(detail for _, _, _, detail in steps)
    assert "half=yes" in details and "duplicate=no" in details, details
    assert "True" not in details and "False" not in details, details
