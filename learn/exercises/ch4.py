"""Chapter 4, the Paxos ledger: durable votes, safe leases, and two planted bugs.

Each is checked by the exhaustive explorer (checks/explore.py) on the zoo's
small scenario for that property, with no mutation switched on: the learner's
own code must be safe in every schedule.
"""

from __future__ import annotations

from learn.catalog import Exercise

_REPLICA = "reference/paxos/replica.py"

EXERCISES: list[Exercise] = [
    Exercise(
        id="ch4-accept-sync",
        chapter=4,
        kind="implement",
        title="Acknowledge an accept only once it is on disk",
        page="ch4-paxos.md",
        file=_REPLICA,
        region="accept-sync",
        explorer=True,
        task="""
The acceptor has stored the accepted value (in memory and in the disk's live
state). Acknowledge it to the leader with
`Accepted(msg.ballot, msg.slot, True, self.promised)`, but only in a way that
a crash right after cannot take the vote back: the leader counts this
acknowledgement towards a quorum.

Checked by the explorer: every schedule of 3 replicas with a crash.
""",
        hints=(
            "A crash keeps only what was synced. If the acknowledgement leaves "
            "before the vote is durable, a restarted acceptor has forgotten a vote "
            "the leader already counted.",
            "`self.sync(ctx)` forces the node's writes down. It must run here, in "
            "this handler, before the Accepted to `src` leaves: a later sync (at the "
            "next heartbeat, say) is too late if the node crashes in between.",
            "self.sync(ctx)  # fsync, THEN acknowledge\n"
            "ctx.send(src, Accepted(msg.ballot, msg.slot, True, self.promised))",
        ),
        check="explore",
        params={"scenarios": ("ack-before-sync",)},
        holds="A vote counted by the leader survives the acceptor's crash: no slot "
        "is ever chosen twice with different values.",
    ),
    Exercise(
        id="ch4-lease-skew",
        chapter=4,
        kind="implement",
        title="The lease check under clock skew",
        page="ch4-paxos.md",
        file=_REPLICA,
        region="lease-skew",
        explorer=True,
        task="""
A quorum has acknowledged the heartbeat round sent at `sent_ms`: the leader
may serve reads locally until its lease runs out. Set `lease_ms`, how long
after `sent_ms` the read lease lasts. The voters promised not to elect
anyone else for `self.cfg.lease_ms` by THEIR clocks, and clocks may differ by
up to `self.cfg.max_clock_skew_ms`.

Checked by the explorer: the old leader's clock runs slow, another's fast.
""",
        hints=(
            "The line after the blank uses `lease_ms`: the lease runs until "
            "sent_ms + lease_ms on the leader's clock.",
            "A voter whose clock runs ahead of the leader's sees the promise expire "
            "early, and may vote for a new leader while the old one still serves "
            "reads. Shorten the lease by the most the clocks can disagree.",
            "lease_ms = self.cfg.lease_ms - self.cfg.max_clock_skew_ms",
        ),
        check="explore",
        params={"scenarios": ("lease-no-skew",)},
        holds="A leader serves a lease read only while no other leader can exist, "
        "even with clocks apart by the skew bound: no stale read.",
    ),
    Exercise(
        id="ch4-durable-promise",
        chapter=4,
        kind="implement",
        title="An acceptor's durable promise",
        page="ch4-paxos.md",
        file=_REPLICA,
        region="durable-promise",
        explorer=True,
        task="""
The acceptor is about to promise ballot `msg.ballot` (it will then report
what it accepted). Record the promise with `self.set_promised(ctx, ballot,
durable=...)` so that it survives a crash, and make sure it is on disk before
anyone hears of it.

Checked by the explorer: 3 replicas, 2 proposers, one crash (about 60,000
states: give it up to a minute).
""",
        hints=(
            "After a restart, an acceptor knows only what it synced. What could it "
            "do if it forgot a promise it made?",
            "A forgotten promise lets the acceptor accept a value at a LOWER ballot "
            "after promising a higher one: the new leader's phase 1 missed it. Keep "
            "the promise durable and sync before the Promise message leaves.",
            "self.set_promised(ctx, msg.ballot, durable=True)\nself.sync(ctx)",
        ),
        check="explore",
        params={"scenarios": ("forget-promise",)},
        holds="A promise survives a crash: no restarted acceptor accepts a value a "
        "newer leader's phase 1 did not see.",
    ),
    Exercise(
        id="ch4-find-no-adopt",
        chapter=4,
        kind="find-bug",
        title="Find the bug: a new leader's phase 1",
        page="ch4-paxos.md",
        file=_REPLICA,
        region="phase1-adopt",
        explorer=True,
        patches=(
            (
                '        if "no-adopt" in self.mutations:\n'
                "            adopted = {}  # mutation: no-adopt -- the reports are ignored.\n",
                "",
            ),
            (
                "            (slot, self.chosen.get(slot, adopted.get(slot, "
                "(self.ballot, NOOP))[1]))\n",
                "            (slot, self.chosen.get(slot, NOOP))\n",
            ),
        ),
        answer="no-adopt",
        answer_help="Name it as the bug zoo does (d11 zoo --list): --answer NAME",
        task="""
One of the bug zoo's planted bugs is switched on in your workspace's
reference/paxos/replica.py, with its switch taken out. Run the check: the
explorer hands back the shortest schedule that breaks agreement. Find the
line, fix it, and name the bug as the zoo does (`d11 zoo --list`).
""",
        hints=(
            "Read the explorer's trace: which node becomes leader, and what did the "
            "Promise messages it received say they had accepted?",
            "Look at `_become_leader`: it gathers, for each slot, the value accepted "
            "at the highest ballot (`adopted`). Is that value what it proposes?",
            "The recovered slots are filled with NOOP instead of the adopted value: "
            "`self.chosen.get(slot, adopted.get(slot, (self.ballot, NOOP))[1])`. "
            "The zoo calls it no-adopt.",
        ),
        check="explore",
        params={"scenarios": ("no-adopt",)},
        holds="A new leader proposes, for every slot, the value accepted at the "
        "highest ballot: a value that may have been chosen is never replaced.",
    ),
    Exercise(
        id="ch4-find-minority",
        chapter=4,
        kind="find-bug",
        title="Find the bug: counting a quorum",
        page="ch4-paxos.md",
        file=_REPLICA,
        region="commit",
        explorer=True,
        patches=(
            (
                "        needed = self.membership.q2_size()\n"
                '        if "minority-commit" in self.mutations:\n'
                "            needed = max(1, needed - 1)  # mutation: minority-commit\n"
                "        if len(acks & counted) < needed:\n",
                "        needed = self.membership.q2_size()\n"
                "        if len(acks & counted) < needed - 1:  # our own vote is in acks already\n",
            ),
        ),
        answer="minority-commit",
        answer_help="Name it as the bug zoo does (d11 zoo --list): --answer NAME",
        task="""
Another of the zoo's bugs is switched on in your workspace's
reference/paxos/replica.py. The explorer's trace ends with two replicas that
learned different values for one slot. Find the line, fix it, and name the
bug as the zoo does (`d11 zoo --list`).
""",
        hints=(
            "In the trace, count how many Accepted messages the leader had received "
            "when it learned the slot.",
            "Look at `_check_chosen`: a slot is chosen once a phase-2 quorum of data "
            "replicas accepted it. How many acknowledgements does the code wait for?",
            "The comment is wrong: `acks` does hold the leader's own vote, and that "
            "vote counts towards q2_size(). The test must be `< needed`. The zoo "
            "calls it minority-commit.",
        ),
        check="explore",
        params={"scenarios": ("minority-commit",)},
        holds="A slot counts as chosen only with a full phase-2 quorum, so any two "
        "quorums meet and no two values are ever chosen for one slot.",
    ),
    Exercise(
        id="ch4-find-degrade",
        chapter=4,
        kind="find-bug",
        title="Find the bug: two replicas and an arbiter",
        page="ch4-paxos.md",
        file=_REPLICA,
        region="degrade",
        explorer=True,
        patches=(
            (
                '        if silent and "degrade-without-arbiter" in self.mutations:\n'
                "            # mutation: degrade-without-arbiter -- no vote asked, none awaited.\n",
                "        if silent:  # the arbiter would only say yes: shrink the group at once\n",
            ),
        ),
        answer="degrade-without-arbiter",
        answer_help="Name it as the bug zoo does (d11 zoo --list): --answer NAME",
        task="""
A group of two replicas and an arbiter shrinks to one replica when the other
goes silent, so it keeps committing. One of the zoo's bugs is switched on in
your workspace's reference/paxos/replica.py: in the explorer's trace both
replicas end up committing alone. Find the line, fix it, and name the bug as
the zoo does (`d11 zoo --list`).
""",
        hints=(
            "In the trace, n1 and n2 cannot hear each other. Who told each of them "
            "that it may go on alone?",
            "Look at `_check_membership`: a smaller group needs the arbiter's vote, "
            "and the arbiter grants it to only one side. Does the code wait for it?",
            "The `if silent:` shortcut adopts the smaller membership without asking "
            "the arbiter; delete it, so the ChangeMembership goes to the arbiter and "
            "the answer is awaited. The zoo calls it degrade-without-arbiter.",
        ),
        check="explore",
        params={"scenarios": ("degrade-without-arbiter",)},
        holds="Only one side of a cut can shrink the group: the arbiter's single vote "
        "breaks the tie, so two replicas never commit alone at once.",
    ),
]
