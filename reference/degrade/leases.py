"""Cluster flow control that survives its server: each node owns a share, a Paxos group
keeps the loans.

A token server (`cluster.TokenServer`, Sentinel's design) holds the global
count in one process: when it goes, its count goes with it, and a standby
that starts empty, or a node that falls back, admits on top of whatever the
old server already handed out. Here the count is split in advance and no
single process holds anything the limit depends on:

- Time is cut into epochs (`epoch_ms`, 1 s). In every epoch each of the N
  nodes *owns* count x epoch / N tokens. It spends them without asking
  anyone, spread over the epoch (see `LeaseBook.admit`).
- A node that expects to need less than its share *gives* the rest of the
  next epoch to the group; a node that runs out *takes* from what was given.
  Gives and takes are commands of a `TokenLedger` replicated by a chapter 4
  Paxos group (`reference.paxos.Replica`), so a leader that fails takes
  nothing with it: the next leader has every give and take of the epoch.
- Uncertainty always falls on the safe side. A give counts as given from
  the moment it is proposed (it may have been applied even if its answer is
  lost); a take counts only once its answer is in (a lost answer is tokens
  nobody spends).

So the epoch's allowances add up to at most the global count, whatever
fails: for each epoch, sum(used) <= sum(share - given + taken) <= count,
because the group never lends more than was given (`take` <= pool). A node
cut off from the group, or a group without a leader, leaves every node its
own share, count / N: the fallback the issue asks for, and here it is not a
fallback at all but the default. What a failure costs is goodput, never the
limit: tokens given and not taken back, and loans a node cannot get while
the group elects a leader (a few hundred ms).

Beyond Sentinel, whose client falls back to the whole count on every node
(N times the limit while its server is away), and beyond this chapter's own
stateless standby (which can double the limit under a partition).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from reference.node import NodeId

__all__ = ["LeaseBook", "LeaseRule", "TokenLedger"]

EPOCH_MS = 1_000.0
KEEP_EPOCHS = 8  # the ledger forgets epochs older than this behind the newest it saw
GIVE_AT = 0.75  # a node decides what to give of the next epoch this far into the current
HEADROOM = 1.25  # ... keeping this much more than the demand it saw
TAKE_SHARE = 0.25  # a take asks for this share of a node's own share
CATCH_UP = 2.0  # a node behind its line (it was idle) spends at most twice its share's pace

Command = tuple[str, str, int, float]  # ("give" | "take", flow, epoch, tokens)
Counts = tuple[tuple[tuple[str, int], float], ...]  # ((flow, epoch), tokens), sorted
LedgerSnapshot = tuple[int, Counts, Counts]  # (newest epoch, given, taken)


@dataclass(frozen=True)
class LeaseRule:
    resource: str
    count: float  # calls per second across every node together
    group: tuple[NodeId, ...]  # the token group's replicas (a chapter 4 Paxos group)
    nodes: int  # how many nodes share the count: each owns count / nodes
    epoch_ms: float = EPOCH_MS
    max_queueing_time_ms: float = 100.0
    call_timeout_ms: float = 60.0  # per try of a give or take (the group's leader may be gone)

    def __post_init__(self) -> None:
        assert self.count >= 0 and self.nodes >= 1 and self.group and self.epoch_ms > 0, self

    @property
    def budget(self) -> float:
        """Tokens of one epoch, every node together."""
        return self.count * self.epoch_ms / 1000.0

    @property
    def share(self) -> float:
        """Tokens of one epoch a node owns: count / nodes, what it keeps when cut off."""
        return self.budget / self.nodes


# --8<-- [start:token-ledger]
class TokenLedger:
    """The replicated state: per (flow, epoch), tokens given back and tokens taken.

    Commands: ("give", flow, epoch, n) -> n; ("take", flow, epoch, n) -> what
    was granted, never more than given minus taken. Deterministic, no clock.
    """

    def __init__(self) -> None:
        self.given: dict[tuple[str, int], float] = {}
        self.taken: dict[tuple[str, int], float] = {}
        self.newest = 0

    def apply(self, command: Command) -> float | tuple[str, str]:
        op, flow, epoch, amount = command
        if epoch < self.newest - KEEP_EPOCHS or amount < 0:
            return 0.0  # forgotten: nothing to take, a give too late to matter
        if epoch > self.newest:
            self.newest = epoch
            floor = epoch - KEEP_EPOCHS
            for book in (self.given, self.taken):
                for key in [k for k in book if k[1] < floor]:
                    del book[key]
        key = (flow, epoch)
        if op == "give":
            self.given[key] = self.given.get(key, 0.0) + amount
            return amount
        if op == "take":
            got = min(float(amount), self.pool(key))
            self.taken[key] = self.taken.get(key, 0.0) + got
            return got
        return ("error", f"unknown command {op!r}")

    def pool(self, key: tuple[str, int]) -> float:
        return max(0.0, self.given.get(key, 0.0) - self.taken.get(key, 0.0))

    def read(self, query: tuple[str, int]) -> float:
        flow, epoch = query
        return self.pool((flow, epoch))

    def snapshot(self) -> LedgerSnapshot:
        return (self.newest, tuple(sorted(self.given.items())), tuple(sorted(self.taken.items())))

    def restore(self, value: LedgerSnapshot) -> None:
        newest, given, taken = value
        self.newest = newest
        self.given = {(f, e): n for (f, e), n in given}
        self.taken = {(f, e): n for (f, e), n in taken}


# --8<-- [end:token-ledger]


@dataclass
class LeaseBook:
    """One node's side of the loans: what it owns, gave, took and used per epoch."""

    rule: LeaseRule
    epoch: int = -1
    used: int = 0  # calls admitted in `epoch`
    offered: int = 0  # calls asked for in `epoch`, admitted or not
    gave: dict[int, float] = field(default_factory=dict)  # counted when proposed
    took: dict[int, float] = field(default_factory=dict)  # counted when answered
    dry: set[int] = field(default_factory=set)  # epochs the group had nothing left to lend
    start_epoch: int = 0  # after a restart: nothing before the next epoch (its use is unknown)
    last_start_ms: float = -math.inf  # when the latest admitted call may start

    def epoch_of(self, now_ms: float) -> int:
        return int(now_ms // self.rule.epoch_ms)

    def allowance(self, epoch: int) -> float:
        return self.rule.share - self.gave.get(epoch, 0.0) + self.took.get(epoch, 0.0)

    def roll(self, now_ms: float) -> dict[str, float] | None:
        """Enter the epoch of `now_ms`; returns the summary of the one left (None: same)."""
        epoch = self.epoch_of(now_ms)
        if epoch == self.epoch:
            return None
        done = {"epoch": self.epoch, "used": self.used, "offered": self.offered,
                "allowance": round(self.allowance(self.epoch), 3)}  # fmt: skip
        self.epoch, self.used, self.offered = epoch, 0, 0
        for book in (self.gave, self.took):
            for old in [e for e in book if e < epoch - 1]:
                del book[old]
        self.dry = {e for e in self.dry if e >= epoch}
        return done if done["epoch"] >= 0 else None

    def admit(self, now_ms: float) -> float | None:
        """Wait before the call may go, or None: no token of this epoch is left for it.

        The epoch's allowance is spread over the epoch on a line: the k-th call
        of the epoch starts no earlier than k / allowance of the way through it.
        A node ahead of its line waits for it (at most the rule's queueing
        time); one behind it (it was idle) catches up, its calls spaced no
        closer than CATCH_UP times its share's pace. Under overload calls go
        evenly at the allowance. Under light load a burst is served: pacing
        at the allowance itself (a plain rate limiter, as this book first
        did) refused a burst of two or three for a pace the node was nowhere
        near, and most of all after a give, when the allowance is just above
        the demand; that kept goodput under 90% in 1 s windows for tens of
        seconds after a spike, when the token server's one limiter did not."""
        self.roll(now_ms)
        self.offered += 1
        allowance = self.allowance(self.epoch)
        if self.epoch < self.start_epoch or self.used + 1 > allowance + 1e-9:
            return None
        epoch_ms = self.rule.epoch_ms
        line_ms = (self.epoch + self.used / allowance) * epoch_ms
        spacing_ms = epoch_ms / (self.rule.share * CATCH_UP)
        start_ms = max(now_ms, line_ms, self.last_start_ms + spacing_ms)
        if start_ms - now_ms > self.rule.max_queueing_time_ms:
            return None
        self.last_start_ms = start_ms
        self.used += 1
        return start_ms - now_ms

    def wants_loan(self) -> bool:
        """A call was refused in this epoch, and the group may still have tokens to lend.

        Asked on any refusal, one for being ahead of the line too: a loan moves the line."""
        return self.epoch not in self.dry and self.epoch >= self.start_epoch

    def loan_size(self) -> float:
        return max(1.0, math.floor(self.rule.share * TAKE_SHARE))

    def lent(self, epoch: int, got: float) -> None:
        """A take's answer: `got` more tokens in `epoch` (0: the group is dry for it)."""
        if got <= 0:
            self.dry.add(epoch)
            return
        if epoch >= self.epoch:
            self.took[epoch] = self.took.get(epoch, 0.0) + got

    def to_give(self, now_ms: float) -> tuple[int, float] | None:
        """What of the next epoch to give back, judged by this one's demand so far.

        Counted as given at once: the give may be applied even if its answer is lost."""
        self.roll(now_ms)
        elapsed_ms = now_ms - self.epoch * self.rule.epoch_ms
        if elapsed_ms <= 0:
            return None
        expected = self.offered * self.rule.epoch_ms / elapsed_ms * HEADROOM
        nxt = self.epoch + 1
        spare = math.floor(self.rule.share - self.gave.get(nxt, 0.0) - expected)
        if spare < 1:
            return None
        self.gave[nxt] = self.gave.get(nxt, 0.0) + spare
        return nxt, float(spare)
