"""The learner's own checker judged: on a hand-made history whose answer is known, then
against the project's checkers on real runs (no false alarm, no miss)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING

from learn.catalog import Exercise
from learn.feedback import clip, verdict_lines
from learn.outcome import CheckRequest, Outcome, seeds_to_run

if TYPE_CHECKING:  # at run time these come from the learner's workspace, imported late
    from checks.history import Event

__all__ = ["isolation_rules", "lost_checker"]

# A small history, by hand: (payment id, acknowledged?) and what the final read holds.
_LOST_CASES: tuple[tuple[str, bool], ...] = (
    ("p-whole", True),  # the payment's own row survived
    ("p-legs", True),  # both of its legs survived (a cross-cell payment)
    ("p-half", True),  # only the debit leg survived
    ("p-gone", True),  # nothing of it survived
    ("p-failed", False),  # failed: no promise was made, nothing to find
)
_LOST_HELD: tuple[str, ...] = ("p-whole", "p-legs:debit", "p-legs:credit", "p-half:debit")


def lost_checker(ex: Exercise, req: CheckRequest) -> Outcome:
    """The learner's lost-payments check on a hand-made history, then against the ledger."""
    from chapters.ch3_cells.lost import check_lost_payments

    verdict = check_lost_payments(_lost_history())
    details = verdict.details
    problems = []
    if verdict.valid is not False:
        problems.append(f"your check says valid={verdict.valid!r}; one payment is gone")
    if details.get("lost") != ["p-gone"]:
        problems.append(f"lost should be ['p-gone'] (nothing survived), not {details.get('lost')}")
    if details.get("half_applied") != ["p-half"]:
        problems.append(
            f"half_applied should be ['p-half'] (its debit leg alone survived), "
            f"not {details.get('half_applied')}"
        )
    if problems:
        lines = [
            "A small history: five payments, four acknowledged (p-whole, p-legs, p-half, "
            "p-gone), one failed (p-failed).",
            f"The final read holds: {', '.join(_LOST_HELD)}",
            "",
            *problems,
        ]
        return Outcome(False, "your check gets a five-payment history wrong", lines)
    from chapters.run import simulate

    for seed in seeds_to_run(ex, req):
        run = simulate(
            "ch3", "crash", seed=seed, duration_s=4.0, checks=("ledger", "lost-payments")
        )
        ledger, lost = run.verdicts["ledger"], run.verdicts["lost-payments"]
        not_applied = "was not applied" in json.dumps(ledger.witness, default=repr)
        if ledger.valid is True and lost.valid is not True:
            return Outcome(
                False,
                f"a false alarm at seed {seed}: the ledger checker finds every acknowledged "
                "payment applied, your check does not",
                [f"  lost-payments: {clip(lost.summary)}"],
            )
        if ledger.valid is False and not_applied and lost.valid is not False:
            return Outcome(
                False,
                f"a miss at seed {seed}: the ledger checker finds acknowledged payments "
                "not applied, your check finds none",
                [f"  ledger: {clip(ledger.summary)}", *verdict_lines(run, ["ledger"])[1:]],
            )
    return Outcome(
        True,
        "right on the hand-made history, and agrees with the ledger checker on chapter 3's "
        f"crash (seed(s) {', '.join(map(str, seeds_to_run(ex, req)))})",
    )


def _lost_history() -> list[Event]:
    from checks.history import Event

    events: list[Event] = []
    for process, (pid, acked) in enumerate(_LOST_CASES, 1):
        value = {"id": pid, "from": f"u{process}", "to": "m0@rz0", "amount_cents": 100}
        events.append(Event("invoke", process, "transfer", value, 10.0 * process))
        events.append(
            Event("ok" if acked else "fail", process, "transfer", value, 10.0 * process + 5)
        )
    reader = len(_LOST_CASES) + 1
    events.append(Event("invoke", reader, "read-payments", None, 100.0))
    events.append(
        Event("ok", reader, "read-payments", list(_LOST_HELD), 110.0, extra={"final": True})
    )
    return [replace(ev, index=i) for i, ev in enumerate(events)]


_TAGGED_PAYMENT = "client-1-7"
_SPAN_CASES: tuple[tuple[str, dict[str, object], tuple[str, ...]], ...] = (
    ("a production span that wrote a production account",
     {"trace_id": "client-2-3", "payment": "client-2-3", "mark": "F", "writes": ["u12"]}, ()),
    ("an untagged span of a load-test payment that wrote nothing",
     {"trace_id": _TAGGED_PAYMENT, "payment": _TAGGED_PAYMENT, "mark": "F", "writes": []},
     ("lost-tag",)),
    ("an untagged span, new trace id, of a load-test payment that wrote u7",
     {"trace_id": "gw-0:9", "payment": _TAGGED_PAYMENT, "mark": "F", "writes": ["u7"]},
     ("lost-tag", "tagged-write-to-production")),
    ("a production span that wrote the shadow account pt_u7",
     {"trace_id": "client-2-4", "payment": "client-2-4", "mark": "F", "writes": ["pt_u7"]},
     ("production-write-to-shadow",)),
    ("a production span whose read returned 2 shadow rows",
     {"trace_id": "client-2-5", "payment": "client-2-5", "mark": "F", "writes": [],
      "shadow_rows_read": 2},
     ("production-read-of-shadow",)),
)  # fmt: skip


def isolation_rules(ex: Exercise, req: CheckRequest) -> Outcome:
    """The learner's rules on hand-made untagged spans, then the planted leak and a clean run."""
    from chapters.run import simulate
    from checks.isolation import _span_violations

    problems: list[str] = []
    for i, (words, span, wanted) in enumerate(_SPAN_CASES, 1):
        got = _span_violations({"op": "TccTry", "outcome": "", **span}, {_TAGGED_PAYMENT})
        if not isinstance(got, list):
            return Outcome(
                False,
                f"your rules returned {clip(repr(got), 60)}, not a list of violation kinds",
                ["The region ends by returning `found`, the list of kinds it found ([] for none)."],
            )
        if sorted(got) != sorted(wanted):
            problems.append(f"{i}. {words}: your rules give {sorted(got)}, not {sorted(wanted)}")
    if problems:
        lines = [f"Load-test payment: {_TAGGED_PAYMENT}; every span below is untagged (F).",
                 *problems]  # fmt: skip
        return Outcome(False, "your rules judge an untagged span wrongly", lines)
    p = ex.params
    for seed in seeds_to_run(ex, req):
        leak = simulate("ch7", p["scenario"], seed=seed, variant="leak", checks=("isolation",))
        verdict = leak.verdicts["isolation"]
        lost = int(verdict.details.get("violations", {}).get("lost-tag", 0))
        if verdict.valid is not False or lost == 0:
            command = f"d11 run ch7 --scenario {p['scenario']} --variant leak --seed {seed}"
            return Outcome(
                False,
                f"the planted leak is not caught at seed {seed}: a checker that misses it "
                "is not trusted",
                [f"`{req.on_your_code(command)}`: the gateway drops the tag "
                 "(reference/tracing/leaky.py); the stores' spans are untagged but their "
                 "trace and payment are a load-test payment's.",
                 f"  isolation: {clip(verdict.summary)}"],
            )  # fmt: skip
        clean = simulate("ch7", p["scenario"], seed=seed, variant="shadow", checks=("isolation",))
        if clean.verdicts["isolation"].valid is not True:
            return Outcome(
                False,
                f"a false alarm at seed {seed}: the shadow variant keeps its tag end to end",
                [f"  isolation: {clip(clean.verdicts['isolation'].summary)}",
                 *verdict_lines(clean, ["isolation"])[1:]],
            )  # fmt: skip
    return Outcome(
        True,
        f"right on the hand-made spans; the planted leak is caught ({lost} lost-tag) and the "
        f"shadow run holds at seed(s) {', '.join(map(str, seeds_to_run(ex, req)))}",
    )
