"""Chapter 1, the monolith: a durable commit, and where the spike stops holding."""

from __future__ import annotations

from learn.catalog import Exercise

EXERCISES: list[Exercise] = [
    Exercise(
        id="ch1-durable-commit",
        chapter=1,
        kind="implement",
        title="A commit that survives a crash",
        page="ch1-monolith.md",
        file="reference/sqlstore/node.py",
        region="commit-durable",
        task="""
The store has run the payment's SQL in `txn` and is about to answer the
client "paid". Commit the transaction, append its writes (if there were any)
to the commit log `COMMIT_LOG` on `ctx.disk`, and make sure they are on disk
before this method returns: a crash right after the reply must lose nothing.

Checked by the harness: chapter 1 under the `kill` nemesis, the bank and
ledger checkers, seeds 1 to 3.
""",
        hints=(
            "The simulated disk keeps only what was synced when the node crashes "
            "(reference/disk/sim.py, `crash`). The client hears 'paid' as soon as "
            "`_commit` returns; `on_start` replays COMMIT_LOG after a restart.",
            "Three steps, in this order: `writes = txn.commit()`; if `writes` is not "
            "empty, `ctx.disk.append(COMMIT_LOG, tuple(writes))`; then force it down "
            "with the disk's sync. Which checker fails if you leave the sync out, and "
            "why does the bank checker still pass?",
            "writes = txn.commit()\nif writes:\n    ctx.disk.append(COMMIT_LOG, tuple(writes))\n"
            "    ctx.disk.sync()",
        ),
        check="harness",
        params={
            "chapter": "ch1",
            "nemeses": ("kill",),
            "time_s": 3.0,
            "checks": ("bank", "ledger"),
            "seeds": (1, 2, 3),
            "shrink": True,
        },
        holds="Every payment the monolith acknowledged survives a crash of its only "
        "store: the ledger checker finds each acknowledged transfer exactly once.",
    ),
    Exercise(
        id="ch1-single-point",
        chapter=1,
        kind="measure",
        title="One store, one point of failure",
        page="ch1-monolith.md",
        task="""
Crash the monolith's only store for a second, at seed 1:

    d11 run ch1 --scenario crash --seed 1 --no-store

How many payments time out? Answer with --answer N, then find in the
over-time table when goodput fell to zero and when it came back.
""",
        hints=(
            "The report has an 'errors by kind' table.",
            "Count the `timeout` row only: a `declined` payment was refused for lack "
            "of money, which no architecture fixes.",
            "About forty: the payments whose deadline ran out while the store was "
            "down, or while it worked through the queue after its restart.",
        ),
        check="run_figure",
        params={
            "chapter": "ch1",
            "scenario": "crash",
            "seed": 1,
            "figure": "errors:timeout",
            "example": "12",
            "where": "The 'errors by kind' table of d11 run's report: the timeout row.",
        },
        answer_help="a whole number of payments, e.g. --answer 12",
        solution_note="The timeout row of the report's errors by kind.",
        holds="With one store, every payment waits for that store: a crash of one "
        "machine is an outage of the whole system.",
    ),
    Exercise(
        id="ch1-cliff",
        chapter=1,
        kind="configure",
        title="Find the cliff",
        page="ch1-monolith.md",
        config_file="ch1-cliff.toml",
        config_template="""\
# Exercise ch1-cliff: the heaviest load at which the monolith still holds the
# midnight spike (chapter 1, scenario double11, seed 1).
#
# scale = simulated payments per real one, written "1/N": a bigger N is a
# lighter load. "Holds" means no payment failed (declines for lack of money
# do not count) and the p99 latency stays under the 1 s deadline. Set the
# heaviest scale that holds; the check also runs 25% more load, which must not.
# Try loads with: d11 run ch1 --scenario double11 --scale 1/1000 --no-store
scale = "1/500"
""",
        answer='scale = "1/1500"\n',
        task="""
Set `scale` in ch1-cliff.toml to the heaviest load (the smallest N in "1/N")
at which the monolith still holds the midnight spike: no payment fails and
the p99 stays under the deadline. 25% more load than yours must collapse, so
you have found the cliff and not just a safe place far from it.
""",
        hints=(
            "Run the spike at a few scales and watch the errors line and the p99: "
            "`d11 run ch1 --scenario double11 --scale 1/1000 --no-store`, then 1/2000. "
            "One collapses, the other is a bump.",
            "Bisect between a scale that collapses and one that holds. The cliff is "
            "where the queue at the peak first gets longer than the deadline: then "
            "the retries start feeding the queue and it never drains.",
            "The cliff lies between 1/1400 (50 payments time out, p99 just over the "
            "deadline) and 1/1500 (holds, p99 under 400 ms).",
        ),
        check="cliff",
        params={"margin": 1.25, "seeds": (1,)},
        holds="You found the monolith's cliff: a mean load under capacity is not "
        "enough, the queue at the peak must be shorter than the deadline.",
    ),
]
