"""Chapter 3, LDC cells: what asynchronous replication loses, and split brain."""

from __future__ import annotations

from learn.catalog import Exercise

EXERCISES: list[Exercise] = [
    Exercise(
        id="ch3-lost-checker",
        chapter=3,
        kind="implement",
        title="Write the lost-payments check",
        page="ch3-cells.md",
        file="chapters/ch3_cells/lost.py",
        region="lost-classify",
        task="""
A checker reads a history, never the system. `acked` maps each acknowledged
payment's id to its details; `held` is what the final read found in the
stores: a payment's own id (a payment inside one cell) or its legs
`ID:debit` and `ID:credit` (a payment across cells). Sort every acknowledged
payment: wholly there (skip it), half there (one leg only: append it to
`half`) or gone (append it to `lost`). Append dicts: {"id": pid, **value,
"legs_held": sorted(the legs found)}.

Checked on a hand-made five-payment history, then against the ledger
checker on chapter 3's crash: where the ledger finds an acknowledged payment
not applied, your check must find it gone too.
""",
        hints=(
            "Nothing here looks at the stores or the network: only `acked` (what "
            "clients were told) and `held` (what survived). A payment is lost if "
            "the system said 'paid' and the final state does not have it.",
            "For each pid: the legs found are {f'{pid}:debit', f'{pid}:credit'} & held. "
            "If pid itself is held, or both legs are, the payment is whole. One leg "
            "found: half there. None: gone.",
            "for pid, value in acked.items():\n"
            "    legs = {f'{pid}:debit', f'{pid}:credit'} & held\n"
            "    if pid in held or len(legs) == 2:\n"
            "        continue\n"
            "    (half if legs else lost).append({'id': pid, **value, "
            "'legs_held': sorted(legs)})",
        ),
        check="lost_checker",
        params={"seeds": (2,)},
        holds="You wrote a checker that works on histories alone: it finds the "
        "payments async replication loses, and agrees with the ledger checker.",
    ),
    Exercise(
        id="ch3-lost-at-seed-2",
        chapter=3,
        kind="measure",
        title="How many payments does the failover lose?",
        page="ch3-cells.md",
        task="""
Chapter 3 replicates each cell's store to a standby in the other city,
asynchronously. Crash a city's cells and fail over, at seed 2:

    d11 run ch3 --scenario crash --seed 2 --no-store

How many acknowledged payments are gone from the final state? Answer with
--answer N.
""",
        hints=(
            "Look at the checkers table at the end of the report: one check is about exactly this.",
            "The lost-payments check lists the ids of the acknowledged payments "
            "whose legs are not in the final state. Count them.",
            "Fewer than ten: they are the payments acknowledged in the last "
            "shipping interval before the crash.",
        ),
        check="lost_payments",
        params={"run": "simulate", "scenario": "crash", "seed": 2},
        answer_help="a whole number of payments, e.g. --answer 12",
        solution_note="The length of the lost-payments check's list.",
        holds="RPO > 0, counted: the standby had not received what the primary "
        "acknowledged in the last moments before the crash.",
    ),
    Exercise(
        id="ch3-split-brain",
        chapter=3,
        kind="measure",
        title="Split brain",
        page="ch3-cells.md",
        task="""
Cut Shanghai off for about 3 s (longer than the controller's 1.5 s of
patience) with the harness's isolate-city nemesis, at seed 1:

    d11 test ch3 --nemesis isolate-city --fault-ms 3000 --seed 1

How many acknowledged payments are lost? Answer with --answer N, and explain
to yourself why the cut-off cells kept taking payments.
""",
        hints=(
            "The harness prints each checker's verdict; one of them lists lost payments.",
            "The controller cannot tell a dead city from a cut-off one: it promotes "
            "the standbys while the old primaries keep serving their local users. "
            "Everything those primaries acknowledge during the cut is lost at the heal.",
            "Several hundred.",
        ),
        check="lost_payments",
        params={
            "run": "test",
            "chapter": "ch3",
            "nemeses": ("isolate-city",),
            "fault_ms": 3000.0,
            "time_s": 4.0,
            "seed": 1,
        },
        answer_help="a whole number of payments, e.g. --answer 12",
        solution_note="The length of the lost-payments check's list in the harness run.",
        holds="A failure detector alone cannot prevent split brain; only a majority "
        "rule (chapter 4) makes the cut-off side stop.",
    ),
]
