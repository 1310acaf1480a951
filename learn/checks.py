"""The checks behind `d11 learn check`, run in the learner's subprocess: which check judges
which kind of exercise (`CHECKS`, named by each exercise's `check`).

Everything imported from `reference`, `checks` and `chapters` by a check comes from
the learner's workspace (it is first on the subprocess's path), so each check
judges the learner's code with the project's own harness, checkers and
explorer. A check returns an `Outcome`: pass or fail, a headline, and the
lines a learner acts on (the minimal failing schedule, the violating part of
the history, the explorer's shortest trace).

The checks live by concept:
- `learn/outcome.py`: what a check is asked (`CheckRequest`) and answers (`Outcome`).
- `learn/runs.py`: the learner's chapter run under the harness, or as `d11 run`.
- `learn/explorer.py`: every schedule of small consensus scenarios.
- `learn/measure.py`: a figure read off a run, compared with the learner's answer.
- `learn/configure.py`: the learner's settings file must hold the spike, and be tight.
- `learn/scripted.py`: the learner's component played through hand-written scenarios.
- `learn/checker_cases.py`: the learner's checker on a known history, then on real runs.
- `learn/feedback.py`: verdicts, schedules and histories told in a few lines.
"""

from __future__ import annotations

from collections.abc import Callable

from learn.catalog import Exercise
from learn.checker_cases import isolation_rules, lost_checker
from learn.configure import cliff, controls_slo
from learn.explorer import explore
from learn.measure import lost_payments, run_figure, vanished_cents
from learn.outcome import CheckRequest, Outcome
from learn.runs import SCHEDULES, chapter_run, harness
from learn.runs import _shrink as _shrink  # re-exported: tests/learn/test_exercises.py
from learn.scripted import breaker_half_open, broker_verdicts, fence, idempotent_consumer

__all__ = ["CHECKS", "SCHEDULES", "CheckRequest", "Outcome"]

CHECKS: dict[str, Callable[[Exercise, CheckRequest], Outcome]] = {
    "harness": harness,
    "fence": fence,
    "explore": explore,
    "vanished_cents": vanished_cents,
    "lost_payments": lost_payments,
    "cliff": cliff,
    "lost_checker": lost_checker,
    "run_figure": run_figure,
    "chapter_run": chapter_run,
    "broker_verdicts": broker_verdicts,
    "idempotent_consumer": idempotent_consumer,
    "breaker_half_open": breaker_half_open,
    "controls_slo": controls_slo,
    "isolation_rules": isolation_rules,
}
