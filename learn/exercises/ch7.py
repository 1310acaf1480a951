"""Chapter 7, full-link stress testing: the isolation checker's rules for
untagged spans (failing closed), proved on the planted leak, and the size of
that leak read off a run."""

from __future__ import annotations

from learn.catalog import Exercise

EXERCISES: list[Exercise] = [
    Exercise(
        id="ch7-fail-closed",
        chapter=7,
        kind="implement",
        title="The isolation checker fails closed",
        page="ch7-rehearsal.md",
        file="checks/isolation.py",
        region="untagged-span-rules",
        task="""
`_span_violations` judges one span of the history. Spans marked `T` (tagged)
are handled above your region. Write the rules for an untagged span: append
to `found` the name of each rule it breaks, then return `found`.

1. It belongs to a load-test payment (`descends`: its trace id or its
payment id is one of `tagged`): "lost-tag", whether or not it wrote anything
(the checker fails closed: the next hop of an untagged request is
production's); and if it also wrote a production account,
"tagged-write-to-production".

2. It wrote a shadow account (`_is_shadow`): "production-write-to-shadow".

3. Its read returned shadow rows (`shadow_rows_read` > 0):
"production-read-of-shadow".

Checked on hand-made untagged spans, then by `d11 run ch7 --variant leak`
(the planted leak must be caught) and `d11 run ch7` (no false alarm).
""",
        hints=(
            "An untagged span is production's by its mark, but the trace can say "
            "otherwise: `descends` is already computed for you. Which rules need it, "
            "and which hold for any untagged span?",
            "Four independent checks, not an if/elif chain: a span of tagged traffic "
            "that lost its tag is a violation even with `writes` empty; if it wrote, "
            "look at each account in `writes` (not shadow: the tagged payment moved "
            "production money). Shadow writes and shadow reads are wrong for any "
            "untagged span.",
            "if descends:\n"
            '    found.append("lost-tag")\n'
            "    if any(not _is_shadow(a) for a in writes):\n"
            '        found.append("tagged-write-to-production")\n'
            "if any(_is_shadow(a) for a in writes):\n"
            '    found.append("production-write-to-shadow")\n'
            'if int(v.get("shadow_rows_read") or 0) > 0:\n'
            '    found.append("production-read-of-shadow")\n'
            "return found",
        ),
        check="isolation_rules",
        params={"scenario": "steady", "seeds": (1,)},
        holds="Load-test traffic that loses its tag is caught at the first hop that "
        "loses it, before it writes anything: a checker that fails closed.",
    ),
    Exercise(
        id="ch7-lost-tags",
        chapter=7,
        kind="measure",
        title="How far a lost tag goes",
        page="ch7-rehearsal.md",
        task="""
The leak variant's gateway copies the trace id to the next hop but not the
load-test tag (reference/tracing/leaky.py):

    d11 run ch7 --variant leak --seed 1 --no-store

How many spans did the isolation checker find that lost their tag (untagged
spans of load-test payments)? Answer with --answer N, then compare with the
number of load-test payments (`--json`: checks.isolation.details).
""",
        hints=(
            "The checkers table at the end of the report has an isolation row: it "
            "fails, and says what leaked, kind by kind.",
            "Look for 'lost-tag' in the isolation row: each one is a hop (a store's "
            "span) of a load-test payment that arrived untagged.",
            "The isolation row reads 'load-test traffic leaked: N lost-tag, ...': N is "
            "the answer. It is more than the load-test payments: each payment's TCC "
            "tries, confirms and cancels reach several stores, each a hop.",
        ),
        check="run_figure",
        params={
            "chapter": "ch7",
            "scenario": "steady",
            "options": {"variant": "leak"},
            "seed": 1,
            "figure": "isolation:lost-tag",
            "words": "{count} spans of load-test payments lost their tag",
            "example": "123",
            "where": "The isolation row of the report's checkers table: "
            "'load-test traffic leaked: N lost-tag, ...'.",
        },
        answer_help="a whole number of spans, e.g. --answer 123",
        solution_note="The isolation row of the report's checkers table (lost-tag).",
        holds="One dropped tag at the gateway turns every later hop of a load-test "
        "payment into production traffic: the checker counts each of them.",
    ),
]
