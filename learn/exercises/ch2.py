"""Chapter 2, sharding: the TCC fence, and what the naive transfer loses."""

from __future__ import annotations

from learn.catalog import Exercise

EXERCISES: list[Exercise] = [
    Exercise(
        id="ch2-empty-rollback",
        chapter=2,
        kind="implement",
        title="The fence's empty rollback",
        page="ch2-sharding.md",
        file="reference/tcc/fence.py",
        region="empty-rollback",
        task="""
A cancel has arrived for a branch that has no fence row: its try never ran
here (it was lost, or it is still on its way). There is nothing to undo, so
the cancel succeeds; but it must leave a trace, so that if the late try does
arrive it is refused instead of freezing money for a transaction that is
already over. Write that trace and answer.

Checked by five fence scenarios on a real SQLite table (empty rollback, the
late try, a duplicate cancel, the ordinary path, a duplicate confirm), then by
chapter 2 (TCC) under partitions and crashes with the bank and ledger checkers.
""",
        hints=(
            "Three pathologies, one table: read the module docstring of fence.py. "
            "What does `fence_prepare` look at before it lets a try run?",
            "`fence_prepare` refuses a try when any row for (xid, branch_id) exists. "
            "So the empty rollback inserts the row itself, with the status that says "
            "'cancelled before its try' (Seata calls it SUSPENDED), and returns True.",
            'txn.execute("INSERT INTO tcc_fence_log (xid, branch_id, action_name, '
            'status) VALUES (?, ?, ?, ?)", (xid, branch_id, action_name, '
            "STATUS_SUSPENDED))\nreturn True",
        ),
        check="fence",
        params={
            "chapter": "ch2",
            "variant": "tcc",
            "nemeses": ("partition-halves", "kill"),
            "time_s": 3.0,
            "checks": ("bank", "ledger"),
            "seeds": (1, 2),
            "shrink": True,
        },
        holds="A cancel that overtakes its try succeeds and fences the late try off: "
        "no money is frozen forever, and the bank adds up under partitions and crashes.",
    ),
    Exercise(
        id="ch2-find-fence-bug",
        chapter=2,
        kind="find-bug",
        title="Find the bug in the fence",
        page="ch2-sharding.md",
        file="reference/tcc/fence.py",
        region="fence",
        patches=(
            (
                "    if status == STATUS_COMMITTED:\n"
                "        return True  # idempotent: confirmed already\n",
                "",
            ),
        ),
        answer="idempotence",
        answer_help="Name the pathology the fence no longer handles: "
        "--answer idempotence | empty-rollback | suspension",
        task="""
One of the fence's three defences is gone from reference/tcc/fence.py in your
workspace. Run the check: which scenario fails, and what happens to a phase-2
message the network delivers twice? Name the pathology (--answer) and put the
missing lines back.
""",
        hints=(
            "Run `d11 learn check ch2-find-fence-bug` and read which of the five "
            "fence scenarios fails: it names the message and how often it came.",
            "A confirm delivered twice must find the row already COMMITTED and say "
            "'done'. Look at `fence_commit`: what does it do with each status?",
            "fence_commit lost its `if status == STATUS_COMMITTED: return True` line: "
            "the pathology is idempotence (--answer idempotence).",
        ),
        check="fence",
        params={
            "chapter": "ch2",
            "variant": "tcc",
            "nemeses": ("duplicate", "partition-halves"),
            "time_s": 3.0,
            "checks": ("bank", "ledger"),
            "seeds": (1,),
            "shrink": False,
        },
        holds="Confirm and cancel are idempotent again: a message delivered twice acts once.",
    ),
    Exercise(
        id="ch2-hot-shard",
        chapter=2,
        kind="measure",
        title="The hot shard",
        page="ch2-sharding.md",
        task="""
Saturate the TCC stage with 16 shards:

    d11 run ch2 --scenario saturate --shards 16 --seed 1 --no-store

Which shard is the hottest? Answer with --answer shard-N, then ask yourself
why adding shards hardly moves goodput (compare with --shards 8).
""",
        hints=(
            "The report has a 'load per store' table, with the hottest over the mean.",
            "Users are spread by a hash of their id; merchants are not spread at all: "
            "each merchant's account lives on one shard. Merchant 0 takes 28% of all orders.",
            "It is the shard that holds merchant m0.",
        ),
        check="run_figure",
        params={
            "chapter": "ch2",
            "scenario": "saturate",
            "seed": 1,
            "options": {"shards": 16},
            "figure": "hottest-store",
            "example": "shard-7",
            "where": "The 'load per store' table of d11 run's report: the longest bar.",
        },
        answer_help="a store's name, e.g. --answer shard-7",
        solution_note="The store with the most transactions in the load table.",
        holds="Sharding spreads the users, never a hot merchant: every payment to m0 "
        "needs a try and a confirm on its one shard, which bounds the whole stage.",
    ),
    Exercise(
        id="ch2-vanished",
        chapter=2,
        kind="measure",
        title="Where did the money go?",
        page="ch2-sharding.md",
        task="""
Run the naive cross-shard transfer under a partition, at seed 2:

    d11 run ch2 --scenario partition --variant naive --seed 2 --no-store

How many yuan vanish? Answer with --answer YUAN (e.g. --answer 123.45). Then
say to yourself which error kind in the report accounts for them.
""",
        hints=(
            "The bank checker's line in the report says what the balances add up "
            "to, and what they should add up to. Both are in cents.",
            "Vanished = expected total - the total the final read saw; divide by 100 "
            "for yuan. The `credit-timeout` errors are the payments whose debit "
            "committed while their credit never did.",
            "It is a little over 14,000 yuan.",
        ),
        check="vanished_cents",
        params={"scenario": "partition", "seed": 2},
        answer_help="the yuan that vanished, e.g. --answer 123.45",
        solution_note="The bank checker's total of the final read, subtracted from "
        "the expected total (200,000,000 cents), in yuan.",
        holds="You read the bank checker's witness: a partition alone, with no crash, "
        "makes the naive transfer lose money (credits time out, debits stay).",
    ),
]
