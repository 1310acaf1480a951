"""Chapter 6, degrade controls: the work a naive spike wastes, the breaker's
half-open state, and the controls that carry the midnight spike, judged by the
SLO checker."""

from __future__ import annotations

from learn.catalog import Exercise

_CONTROLS_TEMPLATE = """\
# The controls chapter 6's payment path runs with through a 3x spike
# (`d11 run ch6 --scenario overload-3x --variant controls` turns all of them on).
# Any of: "deadline", "flow", "budget", "decouple". Keep only those the spike needs.
controls = ["deadline"]
"""

EXERCISES: list[Exercise] = [
    Exercise(
        id="ch6-served-late",
        chapter=6,
        kind="measure",
        title="Work for nobody",
        page="ch6-degrade.md",
        task="""
Offer 3x the payment database's capacity for 4 s, with every layer retrying
on a fixed timeout and no other control (the naive way):

    d11 run ch6 --scenario overload-3x --variant naive-retries --seed 1 --no-store

How many requests did the servers serve after the client had already given
up on them (after the request's deadline)? Answer with --answer N, then run
the same with --variant controls and compare.
""",
        hints=(
            "The checkers table at the end of the report has an slo row: it lists "
            "what failed, each with its figure.",
            "Look for 'requests served after their deadline' in the slo row: every "
            "one is database time spent on an answer nobody waits for.",
            "The slo row says 'N requests served after their deadline': N is the "
            "answer. With --variant controls the same run serves none late (the slo "
            "row holds), though the offered load is the same.",
        ),
        check="run_figure",
        params={
            "chapter": "ch6",
            "scenario": "overload-3x",
            "options": {"variant": "naive-retries"},
            "seed": 1,
            "figure": "slo:served_late",
            "words": "{count} requests were served after their deadline",
            "example": "1234",
            "where": "The slo row of the report's checkers table: "
            "'... requests served after their deadline'.",
        },
        answer_help="a whole number of requests, e.g. --answer 1234",
        solution_note="The slo row of the report's checkers table (served_late).",
        holds="Without deadlines and a flow rule, a spike turns the database's time into "
        "answers nobody waits for: goodput collapses while the servers are busy.",
    ),
    Exercise(
        id="ch6-half-open",
        chapter=6,
        kind="implement",
        title="The breaker's half-open state",
        page="ch6-degrade.md",
        file="reference/degrade/breaker.py",
        region="breaker-half-open",
        task="""
A call the breaker let through has ended (`bad` says whether it failed, or
was slow for a slow-ratio breaker). Handle it when the breaker is
HALF-OPEN, where each call let through is a probe: decide whether the
breaker opens again, stays half-open, or closes; then return (a probe is
not counted in the window). Move between states only with
`self._move(now_ms, EVENT)`, EVENT one of the table's (TRANSITIONS, at the
top of the file). When the breaker is not half-open, do nothing here.

Checked by scripted probes through a tripped breaker, then by chapter 6's
dependency-slow run with the SLO checker.
""",
        hints=(
            "Read the TRANSITIONS table: from half-open there are exactly three ways "
            "out, and two of them are about how the probes ended. `try_pass` already "
            "counts a probe out (`probes_out`); you count it back in.",
            "One bad probe is enough to open again (probe-failed). A good one: it is no "
            "longer out (`probes_out` down by one) and one more succeeded (`probes_ok` "
            "up by one); once `probes_ok` reaches `self.rule.probes`, probes-succeeded.",
            'if self.state == "half-open":\n'
            "    if bad:\n"
            '        self._move(now_ms, "probe-failed")\n'
            "        return\n"
            "    self.probes_out = max(0, self.probes_out - 1)\n"
            "    self.probes_ok += 1\n"
            "    if self.probes_ok >= self.rule.probes:\n"
            '        self._move(now_ms, "probes-succeeded")\n'
            "    return",
        ),
        check="breaker_half_open",
        params={
            "chapter": "ch6",
            "scenario": "dependency-slow",
            "variant": "controls",
            "checks": ("slo",),
            "seeds": (1,),
        },
        holds="A tripped breaker tries the dependency again with a few probes: it "
        "closes only when all of them end well, and one bad probe opens it again.",
    ),
    Exercise(
        id="ch6-spike-controls",
        chapter=6,
        kind="configure",
        title="The controls that hold the spike",
        page="ch6-degrade.md",
        config_file="ch6-controls.toml",
        config_template=_CONTROLS_TEMPLATE,
        answer='controls = ["flow", "budget", "decouple"]\n',
        task="""
At midnight the offered load jumps to 3x what the payment database can
serve. Chapter 6's `controls` variant has four controls: deadlines
propagated through the layers, a flow rule at the payment gateway, a retry
budget, and best-effort calls decoupled behind a breaker. Which of them does
the spike need? Write them in ch6-controls.toml (in your workspace): the SLO
must hold (goodput, p99, best-effort shed first, no work past a deadline,
recovery), and dropping any one you listed must break it.

`d11 bench degrade` adds them one at a time at 10x; `d11 run ch6 --scenario
overload-3x --variant controls` shows the SLO line with all four.
""",
        hints=(
            "Start from all four and take one away at a time: the check tells you "
            "which one is spare. Read the SLO line that fails when you take too much.",
            "Without the flow rule the database is flooded: goodput collapses and work "
            "runs past its deadline. Without decoupling, best-effort calls still run "
            "when payments start to fail (the order of shedding). The budget is the "
            "subtle one: without it the SLO holds at seed 1 but not at seed 2, which is "
            "why the check runs two seeds.",
            "The deadline is spare at 3x: the flow rule keeps queues short, so no work "
            'outlives its deadline anyway. controls = ["flow", "budget", "decouple"]',
        ),
        check="controls_slo",
        params={"scenario": "overload-3x", "seeds": (1, 2)},
        holds="The spike holds its SLO with the controls it needs and no more: each one "
        "you kept is what breaks the SLO when it goes.",
    ),
]
