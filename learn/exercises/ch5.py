"""Chapter 5, the transactional message queue: an idempotent consumer, and two of
the broker's bugs from RocketMQ's own tracker.

The consumer's dedup is checked by chapter 5's crash run (consumers die between
handling a message and committing their offset, so messages come again) with
the delivery checker; the broker's bugs by scripted verdicts, the broker's own
audit, and the chapter's checkers on a run.
"""

from __future__ import annotations

from learn.catalog import Exercise

_MACHINE = "reference/mq/machine.py"
_NAME_HELP = (
    "Name it as the broker's bug zoo does (reference/mq/mutations.py, MUTATIONS): --answer NAME"
)

EXERCISES: list[Exercise] = [
    Exercise(
        id="ch5-dedup",
        chapter=5,
        kind="implement",
        title="An idempotent consumer",
        page="ch5-mq.md",
        file="reference/mq/consumer.py",
        region="dedup",
        task="""
The broker delivers at least once: a consumer that crashes after handling a
message and before committing its offset gets the message again. Make the
loyalty and notification consumers apply each message's effect at most once,
keyed by the message id (`m.msg_id`), across crashes too, when
`c.idempotent` is set (the `no-dedup` variant turns it off: keep that
working).

The effect itself: a loyalty consumer adds `m.body.amount_cents // 100`
points to the disk key `POINTS + data.buyer` (a notification has no state
of its own). `data`, set just above the region, is `data_view(m.body,
trace)`: the payload as the data layer sees it, naming the shadow buyer
(`pt_u7`) when the event is load-test traffic, so a load-test event earns
shadow points, never production ones. The consumer's disk is `ctx.disk`
(get, put, sync); the dedup table's keys are `DEDUP + msg id`.

Checked first on one load-test event, by the isolation checker on the span
of what your code wrote; then by chapter 5's crash scenario (transactional
variant, 30% load-test traffic) with the delivery and isolation checkers:
every effect applied once, whatever was redelivered, and every load-test
effect in shadow data.
""",
        hints=(
            "A redelivery is the same message, same msg_id, arriving again, maybe "
            "after a restart. Where can the consumer remember 'I applied this one' so "
            "that a restarted incarnation still knows?",
            "Before the effect: if the dedup table holds the message id, return. After "
            "it: write the dedup record, then ONE `ctx.disk.sync()` for both, so a crash "
            "keeps the effect and its record together or neither.",
            "if c.idempotent and ctx.disk.get(DEDUP + m.msg_id) is not None:\n"
            "    return\n"
            'if c.effect == "loyalty":\n'
            "    key = POINTS + data.buyer  # data_view: a tagged event earns shadow points\n"
            "    ctx.disk.put(key, int(ctx.disk.get(key, 0)) + m.body.amount_cents // 100)\n"
            "if c.idempotent:\n"
            "    ctx.disk.put(DEDUP + m.msg_id, ctx.now_ms())\n"
            "ctx.disk.sync()",
        ),
        check="idempotent_consumer",
        params={
            "chapter": "ch5",
            "scenario": "crash",
            "variant": "transactional",
            "checks": ("delivery", "isolation"),
            "seeds": (1,),
            # Loyalty without claims (the chapter's plain at-least-once path): a
            # restarted member gets again what it applied and had not committed.
            # A share of load-test payments: their events must earn shadow points.
            "extra": {"orderly": 0, "load_test_share": 0.3},
        },
        holds="Delivery is at least once, effects exactly once: a redelivered message "
        "finds its key in the dedup table, on the same disk as the effect; and a "
        "load-test event's points land in shadow data.",
    ),
    Exercise(
        id="ch5-find-recommit",
        chapter=5,
        kind="find-bug",
        title="Find the bug: a second COMMIT",
        page="ch5-mq.md",
        file=_MACHINE,
        region="half",
        patches=(
            (
                "        if half is None and commit and self._mutated_recommit(msg_id):\n",
                '        if half is None and commit and self.ops.get(msg_id) == "committed":\n'
                "            # committed already: answer the producer's retry as before\n",
            ),
            (  # the zoo's switch, which would give the place away
                "    def _mutated_recommit(self, msg_id: str) -> bool:\n"
                '        """The bug zoo\'s second verdicts (see mutations.py): None of this '
                'runs unplanted."""\n'
                "        done = self.ops.get(msg_id)\n"
                "        mutations = self.config.mutations\n"
                "        # mutation: recommit -- a committed message is committed again.\n"
                "        # mutation: commit-after-rollback -- a rolled-back message is "
                "committed.\n"
                '        return (done == "committed" and "recommit" in mutations) or (\n'
                '            done == "rolled-back" and "commit-after-rollback" in mutations\n'
                "        )\n\n",
                "",
            ),
        ),
        answer="recommit",
        answer_help=_NAME_HELP,
        task="""
A bug from RocketMQ's own tracker is planted in your workspace's
reference/mq/machine.py. Run the check: it sends one half
message its verdicts twice, in the orders a real broker sees them (a
check-back's answer racing the producer's own COMMIT, a COMMIT resent), and
reads the broker's audit. Find the line, fix it, and name the bug as the
broker's bug zoo does.
""",
        hints=(
            "Read the audit line: one message is in the payments topic twice. Which "
            "command put it there the second time?",
            "Look at `_end`: what does the broker do with an EndTransaction whose half "
            "message is already resolved (no longer in `self.halves`)? A verdict on a "
            "resolved transaction must change nothing.",
            "The branch for `half is None` with an op record 'committed' appends the "
            "message again. Restore the original: only `_mutated_recommit` (the zoo's "
            "switch) may take that branch; otherwise the answer is ('refused', "
            "'already committed'). The zoo calls it recommit.",
        ),
        check="broker_verdicts",
        params={
            "chapter": "ch5",
            "scenario": "crash",
            "variant": "transactional",
            "checks": ("broker-audit", "delivery"),
            "seeds": (1,),
        },
        holds="A transaction has one verdict: a second COMMIT, from a check-back or a "
        "resend, changes nothing, and each message is in its topic once.",
    ),
    Exercise(
        id="ch5-find-count-young",
        chapter=5,
        kind="find-bug",
        title="Find the bug: halves discarded unchecked",
        page="ch5-mq.md",
        file=_MACHINE,
        region="check-pass",
        patches=(
            (
                '                if "count-young" in cfg.mutations and half.checks < '
                "cfg.transaction_check_max:\n"
                "                    half.checks += 1  # mutation: count-young -- counted, "
                "never asked\n",
                "                if half.checks < cfg.transaction_check_max:\n"
                "                    half.checks += 1  # a pass that saw it counts\n",
            ),
        ),
        answer="count-young",
        answer_help=_NAME_HELP,
        task="""
Another bug from RocketMQ's tracker is planted in your workspace's
reference/mq/machine.py. The check runs chapter 5's crash with a
check pass every second and at most 3 checks per half message: settlement
and delivery break, committed payments are never delivered. Find the line,
fix it, and name the bug as the broker's bug zoo does.
""",
        hints=(
            "The delivery checker says messages were lost: committed by the producer, "
            "never in a queue. Where else can a half message go? (Look for "
            "CHECK_MAX_TOPIC.)",
            "A half message goes to the check-max topic once `half.checks` reaches "
            "`transaction_check_max`. Read `_check_pass`: is every increment of "
            "`half.checks` a check that was really sent to the producer?",
            "A half message younger than `transaction_timeout_ms` is skipped, but the "
            "planted lines count it as checked anyway: after a few passes it is "
            "discarded without its producer ever being asked. Restore the original "
            "(only the zoo's switch counts young halves). The zoo calls it count-young.",
        ),
        check="chapter_run",
        params={
            "chapter": "ch5",
            "scenario": "crash",
            "variant": "transactional",
            "duration_s": 2.0,
            "extra": {"check_interval_ms": 1_000, "check_max": 3},
            "checks": ("settlement", "delivery"),
            "seeds": (1,),
        },
        holds="A half message is counted as checked only when its producer was asked: "
        "none is discarded before the broker has really tried to resolve it.",
    ),
]
