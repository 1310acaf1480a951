"""Measure exercises: the learner reads a figure off a run (money vanished, payments lost, a
figure of a `d11 run` report) and answers it; the check measures the same run and compares."""

from __future__ import annotations

from learn.catalog import Exercise
from learn.outcome import CheckRequest, Outcome
from learn.runs import spec_for

__all__ = ["lost_payments", "run_figure", "vanished_cents"]


def _no_answer(req: CheckRequest, example: str) -> Outcome | None:
    """A measure with no answer fails at once: the run is only worth it with one."""
    if req.truth_only or req.answer is not None:
        return None
    return Outcome(False, f"run the command in the task, then answer: {example}")


def vanished_cents(ex: Exercise, req: CheckRequest) -> Outcome:
    """How much money the naive transfer loses: expected total minus the final read's total."""
    from chapters.run import simulate

    missing = _no_answer(req, "--answer 123.45 (yuan)")
    if missing is not None:
        return missing

    p = ex.params
    result = simulate(
        "ch2", p["scenario"], seed=p["seed"], variant="naive", duration_s=4.0, checks=("bank",)
    )
    verdict = result.verdicts["bank"]
    expected = int(verdict.details["expected_total"])
    totals = [
        int(w["total"]) for w in (verdict.witness or []) if isinstance(w, dict) and "total" in w
    ]
    if not totals:
        return Outcome(False, "the bank held in this run: nothing vanished to measure")
    cents = expected - totals[-1]
    return _compare_money(cents, req)


def _compare_money(cents: int, req: CheckRequest) -> Outcome:
    truth = f"{cents / 100:.2f}"
    if req.truth_only:
        return Outcome(True, f"{truth} yuan ({cents} cents)", truth=truth)
    given = _parse_number(req.answer)
    if given is None:
        return Outcome(False, "answer with the number of yuan, e.g. --answer 123.45")
    if round(given * 100) == cents or given == cents:
        return Outcome(True, f"right: {truth} yuan vanished ({cents} cents)", truth=truth)
    return Outcome(
        False,
        f"not {req.answer}: read it again",
        ["The bank checker's line says what the balances add up to, and what they should."],
    )


def lost_payments(ex: Exercise, req: CheckRequest) -> Outcome:
    """How many acknowledged payments the run's lost-payments check lists."""
    missing = _no_answer(req, "--answer 12")
    if missing is not None:
        return missing
    p = ex.params
    if p["run"] == "test":
        from checks.harness.runner import TestSpec, run_test

        verdicts = run_test(spec_for(TestSpec, p, int(p["seed"]))).verdicts
    else:
        from chapters.run import simulate

        verdicts = simulate(
            "ch3", p["scenario"], seed=p["seed"], duration_s=4.0, checks=("lost-payments",)
        ).verdicts
    lost = verdicts["lost-payments"].details["lost"]
    count = len(lost) if isinstance(lost, list) else int(lost)
    truth = str(count)
    if req.truth_only:
        return Outcome(True, f"{count} acknowledged payments lost", truth=truth)
    given = _parse_number(req.answer)
    if given is None:
        return Outcome(False, "answer with a whole number, e.g. --answer 12")
    if given == count:
        return Outcome(True, f"right: {count} acknowledged payments are gone", truth=truth)
    return Outcome(
        False,
        f"not {req.answer}: count again",
        ["Only the lost-payments check's list counts: acknowledged, then gone at the end."],
    )


def run_figure(ex: Exercise, req: CheckRequest) -> Outcome:
    """A figure of a `d11 run` report: an error count, the hottest store, a
    whole-number figure of the SLO checker's verdict ("slo:KEY" of its details),
    or how many violations of one kind the isolation checker found
    ("isolation:KIND", 0 if none)."""
    from chapters.run import simulate

    missing = _no_answer(req, f"--answer {ex.params['example']}")
    if missing is not None:
        return missing
    p = ex.params
    checker, _, key = p["figure"].partition(":")
    judged = checker in ("slo", "isolation")
    run = simulate(
        p["chapter"],
        p["scenario"],
        seed=p["seed"],
        duration_s=4.0,
        checks=(checker,) if judged else (),
        **p.get("options", {}),
    )
    summary = run.summary
    if judged:
        details = run.verdicts[checker].details
        found = details[key] if checker == "slo" else details["violations"].get(key, 0)
        count = int(found)
        truth, words = str(count), p["words"].format(count=count)
        right = _parse_number(req.answer) == count
    elif p["figure"] == "hottest-store":
        load: dict[str, int] = summary["load"]["txns_by_store"]
        truth = max(load, key=lambda store: load[store])
        words = f"{truth} served {load[truth]:,} transactions, the mean store {_mean(load):,.0f}"
        right = (req.answer or "").strip().lower() == truth
    else:
        kind = p["figure"].removeprefix("errors:")
        count = int(summary["errors"].get(kind, 0))
        truth, words = str(count), f"{count} payments ended in {kind}"
        right = _parse_number(req.answer) == count
    if req.truth_only:
        return Outcome(True, words, truth=truth)
    if right:
        return Outcome(True, f"right: {words}", truth=truth)
    return Outcome(False, f"not {req.answer}: look at the report again", [p["where"]])


def _mean(values: dict[str, int]) -> float:
    return sum(values.values()) / max(1, len(values))


def _parse_number(answer: str | None) -> float | None:
    if answer is None:
        return None
    text = answer.lower().replace(",", "").replace("yuan", "").replace("¥", "").strip()
    try:
        return float(text)
    except ValueError:
        return None
