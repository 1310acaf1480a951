"""The checks behind `d11 learn check`, run in the learner's subprocess.

Everything imported from `reference`, `checks` and `chapters` here comes from
the learner's workspace (it is first on the subprocess's path), so each check
judges the learner's code with the project's own harness, checkers and
explorer. A check returns an `Outcome`: pass or fail, a headline, and the
lines a learner acts on (the minimal failing schedule, the violating part of
the history, the explorer's shortest trace).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from learn.catalog import Exercise

if TYPE_CHECKING:  # at run time these come from the learner's workspace, imported late
    from chapters.run import RunResult
    from checks.harness.spec import TestResult, TestSpec
    from checks.history import Event
    from checks.verdict import Verdict
    from reference.mq.machine import BrokerMachine

    Judged = TestResult | RunResult  # a run with verdicts: the harness's or `d11 run`'s

__all__ = ["CHECKS", "CheckRequest", "Outcome"]

WITNESS_ITEMS_MAX = 3  # violations shown per failing checker
HISTORY_LINES_MAX = 8  # history events shown per failing run
TEXT_MAX = 400  # characters of one shown value
SCHEDULES = "schedules"  # the workspace's folder of failing schedules, one file per exercise


@dataclass
class CheckRequest:
    """What the learner asked: how many seeds, and their answer if any."""

    seeds: int = 1
    answer: str | None = None
    truth_only: bool = False  # measure: return the reference figure (for `solution`)


@dataclass
class Outcome:
    passed: bool
    headline: str
    lines: list[str] = field(default_factory=list)
    truth: str = ""  # measure/configure: the figure measured, for `solution`

    def to_json(self) -> dict[str, object]:
        return {
            "passed": self.passed,
            "headline": self.headline,
            "lines": self.lines,
            "truth": self.truth,
        }


# -- chapter runs under the harness -------------------------------------------------------


def _seeds(ex: Exercise, req: CheckRequest) -> list[int]:
    first: list[int] = list(ex.params.get("seeds", (1,)))
    extra = [s for s in range(1, 10_000) if s not in first]
    return (first + extra)[: max(req.seeds, len(first))]


def harness(ex: Exercise, req: CheckRequest) -> Outcome:
    """Run the chapter under its nemeses at each seed; every named check must hold."""
    from checks.harness.runner import TestSpec, run_test

    p = ex.params
    wanted: tuple[str, ...] = tuple(p["checks"])
    seeds = _seeds(ex, req)
    for seed in seeds:
        spec = _spec(TestSpec, p, seed)
        result = run_test(spec)
        broken = [n for n in wanted if result.verdicts[n].valid is not True]
        if not broken:
            continue
        lines = [f"At seed {seed}, with {', '.join(spec.nemeses)}:"]
        lines += _verdict_lines(result, broken)
        minimal, note = _shrink(spec, wanted) if p.get("shrink") else (None, "")
        minimal = minimal or result
        lines.append("")
        lines.append(
            "The smallest fault schedule the hunter found that still breaks it"
            if minimal is not result
            else "The fault schedule of that run"
        )
        lines += _schedule_lines(minimal)
        if minimal is not result:
            lines += _verdict_lines(
                minimal, [n for n in wanted if minimal.verdicts[n].valid is not True]
            )
        if note:
            lines.append(note)
        lines.append(_replay_line(ex, minimal))
        lines += _history_lines(minimal, wanted)
        return Outcome(False, f"{' and '.join(broken)} broken at seed {seed}", lines)
    checks = ", ".join(wanted)
    return Outcome(
        True,
        f"{checks} held on {len(seeds)} seed(s) ({', '.join(map(str, seeds))}) "
        f"under {', '.join(p['nemeses'])}",
    )


def _spec(spec_type: type[TestSpec], p: dict[str, Any], seed: int) -> TestSpec:
    return spec_type(
        p["chapter"],
        nemeses=tuple(p["nemeses"]),
        time_s=float(p.get("time_s", 3.0)),
        seed=seed,
        variant=p.get("variant", ""),
        fault_ms=float(p.get("fault_ms", 800.0)),
    )


def _shrink(spec: TestSpec, wanted: tuple[str, ...]) -> tuple[TestResult | None, str]:
    """The hunter's minimal failing run for this spec's faults (None: none found), and a
    note when the hunter could not run."""
    try:
        from checks.harness.hunt import hunt

        found = hunt(spec, budget=8)
    except ModuleNotFoundError as exc:
        if exc.name != "hypothesis":
            raise
        return None, "(not shrunk: the hunter needs hypothesis; pip install hypothesis)"
    if found.minimal is None:
        return None, ""
    if all(found.minimal.verdicts[n].valid is True for n in wanted):
        return None, ""  # it broke something this exercise does not judge
    return found.minimal, ""


def _replay_line(ex: Exercise, result: TestResult) -> str:
    """Save the run's schedule in the workspace; the command that replays it on the
    learner's code (run from the workspace folder)."""
    from pathlib import Path

    path = Path(SCHEDULES) / f"{ex.id}.json"
    path.parent.mkdir(exist_ok=True)
    result.schedule.save(path)
    spec = result.spec
    variant = f" --variant {spec.variant}" if spec.variant else ""
    return (
        f"Replay it on your code, from the workspace: PYTHONPATH=. d11 test {spec.chapter}"
        f"{variant} --seed {spec.seed} --time {spec.time_s:g} --schedule {path}"
    )


def _schedule_lines(result: TestResult) -> list[str]:
    actions = result.schedule.actions
    if not actions:
        return ["  (no faults at all: the bug shows without any)"]
    out = []
    for a in actions:
        target = ", ".join(f"{k}={v}" for k, v in a.params.items())
        out.append(f"  t={a.at_ms:8.1f} ms  {a.op:10} {target}".rstrip())
    return out


def _verdict_lines(result: Judged, names: list[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        verdict = result.verdicts[name]
        out.append(f"  {name}: {_clip(verdict.summary)}")
        for item in _witness_items(verdict.witness):
            if " ".join(item.split()) not in " ".join(verdict.summary.split()):
                out.append(f"    - {_clip(item)}")  # what the summary does not say already
    return out


def _witness_items(witness: object) -> list[str]:
    items = witness if isinstance(witness, list) else [witness] if witness else []
    out: list[str] = []
    for item in items[:WITNESS_ITEMS_MAX]:
        if isinstance(item, dict):
            words = item.get("explanations") or [item.get("message") or item.get("id") or item]
            out.extend(str(w) for w in words[:WITNESS_ITEMS_MAX])
        else:
            out.append(str(item))
    return out[:WITNESS_ITEMS_MAX]


def _history_lines(result: Judged, wanted: tuple[str, ...]) -> list[str]:
    """The history of the operations the failing verdicts name first (invoke and completion),
    one operation after the other: the first named operation's whole story comes first."""
    names: list[str] = []
    for name in wanted:
        verdict = result.verdicts[name]
        if verdict.valid is not True:
            text = json.dumps(verdict.witness, default=repr)
            found = re.findall(r"client-[\w-]+?-\d+(?=[^\w-]|$)", text)
            names += [n for n in dict.fromkeys(found) if n not in names][:2]
    by_op: dict[str, list[str]] = {n: [] for n in names}
    for ev in result.history:
        op_id = ev.value.get("id") if isinstance(ev.value, dict) else None
        if isinstance(op_id, str) and op_id in by_op:
            value = {k: v for k, v in ev.value.items() if k != "id"}
            extra = {k: v for k, v in dict(ev.extra).items() if k in ("node", "error")}
            by_op[op_id].append(
                f"  t={ev.time_ms:8.1f} ms  {ev.type:6} {op_id} {ev.f} {_clip(str(value), 120)}"
                + (f" {extra}" if extra else "")
            )
    shown = [line for lines in by_op.values() for line in lines]
    if not shown:
        return []
    return ["", "The history of the operations it names:", *shown[:HISTORY_LINES_MAX]]


def _clip(text: str, limit: int = TEXT_MAX) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- the TCC fence, scenario by scenario ----------------------------------------------------


class _Raised:
    """A fence call that raised (shown as what it raised, in the scenario's words)."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def __repr__(self) -> str:
        return f"an exception ({type(self.exc).__name__}: {self.exc})"


def fence(ex: Exercise, req: CheckRequest) -> Outcome:
    """The fence's three pathologies played on a real SQLite table, then the chapter run."""
    failures = _fence_scenarios()
    if failures:
        return Outcome(False, "the fence gets a scenario wrong", failures)
    outcome = harness(ex, req)
    outcome.lines.insert(0, "The fence scenarios pass (idempotence, empty rollback, late try).")
    return outcome


def _fence_scenarios() -> list[str]:
    from reference.sqlstore import Txn
    from reference.tcc import fence as f

    conn = sqlite3.connect(":memory:", isolation_level=None)
    for statement in f.FENCE_SCHEMA:
        conn.execute(statement)
    ran: list[str] = []

    def action(name: str) -> Callable[[Txn], None]:
        return lambda _txn: ran.append(name)

    def step(what: str, fn: Callable[[Txn], object]) -> object:
        txn = Txn(conn)
        try:
            value = fn(txn)
        except f.FenceRefused as refused:
            txn.rollback()
            return refused
        except (AssertionError, sqlite3.Error) as exc:  # the store would abort the txn
            txn.rollback()
            return _Raised(exc)
        txn.commit()
        return value

    problems: list[str] = []
    # 1. Empty rollback: the cancel of branch b1 arrives, its try never did.
    got = step("cancel", lambda t: f.fence_rollback(t, "x1", "b1", "debit", action("cancel")))
    if got is not True:
        problems.append(
            f"1. cancel x1/b1 with no try before it: fence_rollback returned {got!r}; "
            "an empty rollback succeeds (True), or the coordinator retries it forever."
        )
    if "cancel" in ran:
        problems.append("1. the empty rollback ran the business cancel: there was nothing to undo.")
    # 2. Then the late try of the same branch arrives: it must be refused.
    ran.clear()
    got = step("try", lambda t: f.fence_prepare(t, "x1", "b1", "debit", action("try")))
    if not isinstance(got, f.FenceRefused) or ran:
        problems.append(
            "2. the late try of x1/b1 arrived after its cancel and was accepted: it froze the "
            "money of a transaction that is already over (suspension). The cancel must leave "
            "a row behind that makes this try fail."
        )
    # 3. The cancel delivered twice: the second acts like the first and runs nothing.
    ran.clear()
    got = step("cancel", lambda t: f.fence_rollback(t, "x1", "b1", "debit", action("cancel")))
    if got is not True or ran:
        problems.append(
            f"3. the same cancel delivered twice: the second returned {got!r} and ran "
            f"{ran or 'nothing'}; it must return True and run nothing."
        )
    # 4. The ordinary path still works: try, then cancel, each once.
    ran.clear()
    step("try", lambda t: f.fence_prepare(t, "x2", "b1", "debit", action("try")))
    got = step("cancel", lambda t: f.fence_rollback(t, "x2", "b1", "debit", action("cancel")))
    if ran != ["try", "cancel"] or got is not True:
        problems.append(f"4. try then cancel of x2/b1 ran {ran} and returned {got!r}.")
    # 5. Confirm delivered twice: confirmed once.
    ran.clear()
    step("try", lambda t: f.fence_prepare(t, "x3", "b1", "credit", action("try")))
    first = step("confirm", lambda t: f.fence_commit(t, "x3", "b1", action("confirm")))
    second = step("confirm", lambda t: f.fence_commit(t, "x3", "b1", action("confirm")))
    if ran != ["try", "confirm"] or first is not True or second is not True:
        problems.append(
            f"5. a confirm delivered twice: ran {ran}, answered {first!r} then {second!r}; "
            "the second must answer True and change nothing (idempotence)."
        )
    conn.close()
    return problems


# -- the explorer (consensus) -----------------------------------------------------------------


def explore(ex: Exercise, req: CheckRequest) -> Outcome:
    """Every schedule of each named small scenario, exhaustively (no mutation switched on)."""
    from checks.explore import SMALL_SCOPE, explore
    from checks.zoo import SCENARIOS

    names: list[str] = list(ex.params["scenarios"])
    done: list[str] = []
    for name in names:
        scenario = SMALL_SCOPE if name == "small-scope" else SCENARIOS[name]
        result = explore(scenario)
        if result.violation is not None:
            lines = [
                f"In the scenario {scenario.name!r}, breadth-first search reached a state "
                f"that breaks {result.violation.split(':', 1)[0]}:",
                f"  {result.violation}",
                "",
                f"The shortest schedule that gets there ({len(result.trace)} steps):",
                *(f"  {i:2}. {step}" for i, step in enumerate(result.trace, 1)),
            ]
            return Outcome(False, f"the explorer found a violation in {scenario.name!r}", lines)
        if not result.complete:
            return Outcome(
                False,
                f"{scenario.name!r}: the search hit its state cap ({result.states} states)",
                ["Your change makes the state space much bigger; a node keeps state it need not."],
            )
        done.append(f"{scenario.name} ({result.states} states)")
    lines = ["(--seeds does not apply: the search covers every schedule)"] if req.seeds > 1 else []
    return Outcome(True, "no violation in any schedule of: " + "; ".join(done), lines)


# -- measure ------------------------------------------------------------------------------------


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

        verdicts = run_test(_spec(TestSpec, p, int(p["seed"]))).verdicts
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


# -- writing a checker: lost payments ------------------------------------------------------------

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

    for seed in _seeds(ex, req):
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
                [f"  lost-payments: {_clip(lost.summary)}"],
            )
        if ledger.valid is False and not_applied and lost.valid is not False:
            return Outcome(
                False,
                f"a miss at seed {seed}: the ledger checker finds acknowledged payments "
                "not applied, your check finds none",
                [f"  ledger: {_clip(ledger.summary)}", *_verdict_lines(run, ["ledger"])[1:]],
            )
    return Outcome(
        True,
        "right on the hand-made history, and agrees with the ledger checker on chapter 3's "
        f"crash (seed(s) {', '.join(map(str, _seeds(ex, req)))})",
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


# -- configure ------------------------------------------------------------------------------------


def cliff(ex: Exercise, req: CheckRequest) -> Outcome:
    """The scale in the learner's file holds the spike, and 25% more load does not."""
    import tomllib
    from pathlib import Path

    from chapters.cli import parse_scale
    from chapters.run import simulate

    path = Path(ex.config_file)
    try:
        settings = tomllib.loads(path.read_text())
        text = str(settings["scale"])
        scale = parse_scale(text)
    except FileNotFoundError:
        return Outcome(
            False, f"{ex.config_file} is missing: d11 learn reset {ex.id} writes it again"
        )
    except (tomllib.TOMLDecodeError, KeyError, ValueError) as exc:
        return Outcome(False, f"{ex.config_file}: {exc}", ['It holds one line: scale = "1/N"'])
    heavier = min(1.0, scale * ex.params["margin"])
    seeds = _seeds(ex, req)
    for seed in seeds:
        held, why = _spike_holds(simulate, scale, seed)
        if not held:
            return Outcome(False, f"at scale {text} the spike does not hold (seed {seed})", [why])
    held, why = _spike_holds(simulate, heavier, seeds[0])
    if held:
        return Outcome(
            False,
            f"{text} holds, but so does {ex.params['margin']:g}x that load: the cliff is further",
            [f"At scale 1/{1 / heavier:.0f}: {why}", "Find a heavier load that still holds."],
        )
    return Outcome(
        True,
        f"scale {text} holds the spike on {len(seeds)} seed(s); "
        f"1/{1 / heavier:.0f} ({ex.params['margin']:g}x the load) collapses",
        [f"At 1/{1 / heavier:.0f}: {why}"],
        truth=text,
    )


def _spike_holds(simulate: Callable[..., RunResult], scale: float, seed: int) -> tuple[bool, str]:
    s = simulate("ch1", "double11", seed=seed, scale=scale, duration_s=4.0, checks=()).summary
    failed = sum(n for kind, n in s["errors"].items() if kind != "declined")
    words = (
        f"{s['payments']} payments, {failed} failed (not counting declines), "
        f"p99 {s['p99_ms']:.0f} ms against a deadline of {s['deadline_ms']:.0f} ms"
    )
    return failed == 0 and s["p99_ms"] < s["deadline_ms"], words


# -- a chapter's own run, judged by its checkers -----------------------------------------------


def chapter_run(ex: Exercise, req: CheckRequest) -> Outcome:
    """`d11 run CHAPTER --scenario S --variant V` at each seed; every named check must hold."""
    from chapters.run import simulate

    p = ex.params
    wanted: tuple[str, ...] = tuple(p["checks"])
    seeds = _seeds(ex, req)
    for seed in seeds:
        run = simulate(
            p["chapter"],
            p["scenario"],
            seed=seed,
            variant=p["variant"],
            duration_s=float(p.get("duration_s", 4.0)),
            checks=wanted,
            extra=dict(p.get("extra", {})),
        )
        broken = [n for n in wanted if run.verdicts[n].valid is not True]
        if broken:
            command = (
                f"d11 run {p['chapter']} --scenario {p['scenario']} --variant {p['variant']} "
                f"--seed {seed} --duration-s {float(p.get('duration_s', 4.0)):g}"
            )
            settings = p.get("extra")
            where = f"In `{command}`" + (f", with the check's {settings}:" if settings else ":")
            return Outcome(
                False,
                f"{' and '.join(broken)} broken at seed {seed}",
                [where, *_verdict_lines(run, broken), *_history_lines(run, wanted)],
            )
    return Outcome(
        True,
        f"{', '.join(wanted)} held on {p['chapter']}'s {p['scenario']} "
        f"at {len(seeds)} seed(s) ({', '.join(map(str, seeds))})",
    )


# -- the broker's verdicts on a transaction (chapter 5) ----------------------------------------

_GROUP, _TOPIC = "payment-service", "payments"


def broker_verdicts(ex: Exercise, req: CheckRequest) -> Outcome:
    """Scripted second verdicts on one half message, then the chapter's run with the audit."""
    from reference.mq.machine import BrokerMachine
    from reference.mq.messages import CheckPass, EndTransaction, Payload, SendHalf

    def broker() -> BrokerMachine:
        b = BrokerMachine()
        b.apply(SendHalf(_GROUP, _TOPIC, "p1", "u1", Payload("p1", "u1", "m1@pay", 500), 0))
        return b

    # (what happens, the verdicts in order: (commit?, from_check?))
    cases = (
        ("the check-back commits, then the producer's own COMMIT arrives late",
         ((True, True), (True, False))),
        ("the producer's COMMIT is delivered twice", ((True, False), (True, False))),
        ("the check-back rolls back, then the producer's own COMMIT arrives late",
         ((False, True), (True, False))),
    )  # fmt: skip
    problems: list[str] = []
    for i, (words, verdicts) in enumerate(cases, 1):
        b = broker()
        if any(from_check for _, from_check in verdicts):
            b.apply(CheckPass(b.config.transaction_timeout_ms + 1))  # the broker asks
        answers = [
            b.apply(EndTransaction(_GROUP, "p1", commit, from_check, 10 + n))
            for n, (commit, from_check) in enumerate(verdicts)
        ]
        audit = b.audit()
        if audit:
            problems.append(f"{i}. {words}: the broker answered {answers}; its audit says:")
            problems += [f"     {line}" for line in audit[:WITNESS_ITEMS_MAX]]
        elif answers[-1][0] != "refused" and not (verdicts[0][0] and answers[-1][0] == "committed"):
            # A repeated COMMIT may be answered "committed" (nothing appended: the
            # audit says so); a COMMIT after a ROLLBACK must be refused.
            problems.append(f"{i}. {words}: the second verdict was answered {answers[-1]!r}")
    if problems:
        return Outcome(False, "a second verdict on one transaction changed the broker", problems)
    ran = chapter_run(ex, req)
    if not ran.passed:
        return ran
    return Outcome(True, "a second verdict changes nothing, whoever sends it; " + ran.headline)


# -- the circuit breaker's half-open state (chapter 6) -----------------------------------------


def breaker_half_open(ex: Exercise, req: CheckRequest) -> Outcome:
    """Scripted probes through a tripped breaker, then the chapter's slow-dependency run."""
    from reference.degrade.breaker import Breaker, BreakerRule

    def tripped() -> Breaker:
        rule = BreakerRule("r", "error-ratio", 0.5, slow_rt_ms=100.0, open_ms=1_000.0, probes=3,
                           probe_timeout_ms=500.0)  # fmt: skip
        b = Breaker(rule)
        for t in range(5):
            assert b.try_pass(float(t))
            b.on_complete(float(t), 1.0, error=True)
        assert b.state == "open", "five errors in a row trip the breaker (not your code)"
        return b

    problems: list[str] = []
    # 1. Three probes, all fine: closed only after the third.
    b = tripped()
    assert all(b.try_pass(1_010.0) for _ in range(3)) and b.state == "half-open"
    states = []
    for n in range(3):
        b.on_complete(1_020.0 + n, 5.0, error=False)
        states.append(b.state)
    if states != ["half-open", "half-open", "closed"]:
        problems.append(
            f"1. three probes of three succeed: the states after each were {states}; "
            "it must stay half-open until all three ended well, then close"
        )
    elif not b.try_pass(1_030.0) or b.state != "closed":
        problems.append("1. once closed, the next call must go through")
    # 2. A probe fails: open again, for open_ms from now.
    b = tripped()
    b.try_pass(1_010.0)
    b.try_pass(1_010.0)
    b.on_complete(1_020.0, 5.0, error=False)
    b.on_complete(1_030.0, 5.0, error=True)
    if b.state != "open" or b.open_until_ms != 2_030.0:
        problems.append(
            f"2. one probe ok, the next fails: state {b.state!r}, open until "
            f"{b.open_until_ms:g} ms; it must be open again until 2030 ms (now + open_ms)"
        )
    elif b.try_pass(1_040.0):
        problems.append("2. right after a failed probe a call went through: it must be refused")
    # 3. A slow probe is a failed probe for a slow-ratio breaker.
    rule = BreakerRule("r", "slow-ratio", 0.5, slow_rt_ms=100.0, open_ms=1_000.0, probes=3)
    b = Breaker(rule)
    for t in range(5):
        b.try_pass(float(t))
        b.on_complete(float(t), 500.0, error=False)
    b.try_pass(1_010.0)
    b.on_complete(1_020.0, 500.0, error=False)
    if b.state != "open":
        problems.append(
            f"3. a slow-ratio breaker's probe took 500 ms (slow beyond 100 ms): state "
            f"{b.state!r}; a slow probe is a bad probe, the breaker opens again"
        )
    # 4. A probe that ended well frees its slot and counts as a success.
    b = tripped()
    b.try_pass(1_010.0)
    b.on_complete(1_011.0, 5.0, error=False)
    if b.probes_out != 0 or b.probes_ok != 1:
        problems.append(
            f"4. after one probe ended well: probes_out={b.probes_out}, probes_ok="
            f"{b.probes_ok}; it is no longer out (0) and counts as a success (1)"
        )
    if problems:
        lines = [
            "A breaker with probes=3, open_ms=1000, tripped by five errors at 0-4 ms; "
            "the first call after 1000 ms turns it half-open.",
            *problems,
        ]
        return Outcome(False, "the half-open breaker does the wrong thing", lines)
    ran = chapter_run(ex, req)
    if not ran.passed:
        return ran
    words = "probes close, reopen and free their slots as they should; "
    return Outcome(True, words + ran.headline)


# -- the isolation checker's rules for untagged spans (chapter 7) ------------------------------

# Hand-made spans: (what the span is, its value, the violations it must give).
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
                f"your rules returned {_clip(repr(got), 60)}, not a list of violation kinds",
                ["The region ends by returning `found`, the list of kinds it found ([] for none)."],
            )
        if sorted(got) != sorted(wanted):
            problems.append(f"{i}. {words}: your rules give {sorted(got)}, not {sorted(wanted)}")
    if problems:
        lines = [f"Load-test payment: {_TAGGED_PAYMENT}; every span below is untagged (F).",
                 *problems]  # fmt: skip
        return Outcome(False, "your rules judge an untagged span wrongly", lines)
    p = ex.params
    for seed in _seeds(ex, req):
        leak = simulate("ch7", p["scenario"], seed=seed, variant="leak", checks=("isolation",))
        verdict = leak.verdicts["isolation"]
        lost = int(verdict.details.get("violations", {}).get("lost-tag", 0))
        if verdict.valid is not False or lost == 0:
            return Outcome(
                False,
                f"the planted leak is not caught at seed {seed}: a checker that misses it "
                "is not trusted",
                [f"`d11 run ch7 --variant leak --seed {seed}`: the gateway drops the tag "
                 "(reference/tracing/leaky.py); the stores' spans are untagged but their "
                 "trace and payment are a load-test payment's.",
                 f"  isolation: {_clip(verdict.summary)}"],
            )  # fmt: skip
        clean = simulate("ch7", p["scenario"], seed=seed, variant="shadow", checks=("isolation",))
        if clean.verdicts["isolation"].valid is not True:
            return Outcome(
                False,
                f"a false alarm at seed {seed}: the shadow variant keeps its tag end to end",
                [f"  isolation: {_clip(clean.verdicts['isolation'].summary)}",
                 *_verdict_lines(clean, ["isolation"])[1:]],
            )  # fmt: skip
    return Outcome(
        True,
        f"right on the hand-made spans; the planted leak is caught ({lost} lost-tag) and the "
        f"shadow run holds at seed(s) {', '.join(map(str, _seeds(ex, req)))}",
    )


# -- configure: the controls that hold the spike (chapter 6) -----------------------------------


def controls_slo(ex: Exercise, req: CheckRequest) -> Outcome:
    """The learner's controls hold the SLO through the spike, and none of them is spare."""
    import tomllib
    from pathlib import Path

    from chapters.ch6_degrade.wiring import CONTROLS
    from chapters.run import simulate

    try:
        chosen = tomllib.loads(Path(ex.config_file).read_text())["controls"]
    except FileNotFoundError:
        return Outcome(False, f"{ex.config_file} is missing: d11 learn reset {ex.id} writes it")
    except (tomllib.TOMLDecodeError, KeyError) as exc:
        return Outcome(False, f"{ex.config_file}: {exc}", ['It holds one line: controls = ["..."]'])
    if not isinstance(chosen, list) or not all(isinstance(c, str) for c in chosen):
        return Outcome(False, f"{ex.config_file}: controls is a list of names, not {chosen!r}")
    unknown = sorted(set(chosen) - set(CONTROLS))
    if unknown:
        return Outcome(False, f"unknown control {unknown[0]!r} (known: {', '.join(CONTROLS)})")
    p = ex.params
    seeds = _seeds(ex, req)

    def slo(controls: list[str], seed: int) -> Verdict:
        run = simulate(
            "ch6", p["scenario"], seed=seed, variant="controls", checks=("slo",),
            extra={"controls": ",".join(controls)},
        )  # fmt: skip
        return run.verdicts["slo"]

    for seed in seeds:
        verdict = slo(chosen, seed)
        if verdict.valid is not True:
            return Outcome(
                False,
                f"with {chosen or 'no controls'} the spike breaks the SLO at seed {seed}",
                [f"  slo: {_clip(verdict.summary)}"],
            )
    held = _clip(verdict.summary)
    for control in chosen:
        fewer = [c for c in chosen if c != control]
        if all(slo(fewer, seed).valid is True for seed in seeds):
            return Outcome(
                False,
                f"{control!r} is spare: the SLO holds without it too",
                [f"With {fewer}, on seed(s) {', '.join(map(str, seeds))}: the SLO holds.",
                 "Keep only the controls the spike needs."],
            )  # fmt: skip
    return Outcome(
        True,
        f"{', '.join(chosen)} hold(s) the {p['scenario']} spike on seed(s) "
        f"{', '.join(map(str, seeds))}, and none of them is spare",
        [f"  slo: {held}"],
        truth=",".join(chosen),
    )


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
    "breaker_half_open": breaker_half_open,
    "controls_slo": controls_slo,
    "isolation_rules": isolation_rules,
}
