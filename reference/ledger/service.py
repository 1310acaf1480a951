"""The ledger served by a Paxos group: replicas that stamp time, and a client.

Chapter 4's ledger shard is a Multi-Paxos group (`reference.paxos`) whose
state machine is the double-entry ledger (`machine.LedgerMachine`). Two
things join them:

- `LedgerReplica`, a Paxos `Replica` that stamps time. A ledger command
  carries the `timestamp_ms` of its batch, and the only clock every replica
  may agree on is the one value written into the log. So the *leader* reads
  its clock once, when a command reaches it, and writes it into the command
  before proposing it. Clients send `timestamp_ms=0`. The ledger's logical
  clock never runs backwards even when a new leader's clock is behind the old
  one's (`Ledger._tick`). The leader also proposes `ExpirePending` when a
  pending transfer's timeout comes due, so expiry does not wait for traffic.
- The client protocol is Paxos's own: `Propose(request_id, command)` to
  the leader, `ProposeResult(request_id, ok, result, leader_hint, error)`
  back. `ok` means the command was committed and applied; `result` is then
  the ledger's answer (a result code per event). A client that gets no
  answer retries *the same request id with the same transfers*: Paxos
  answers a retry of an applied request from its dedup table, and the ledger
  answers `exists` for a transfer id it already holds, so a payment is
  applied at most once however often it is sent. `LedgerClient` is such a
  client, one request at a time, with bounded retries.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from reference.codec import Message
from reference.ledger.commands import CreateAccounts, CreateTransfers, ExpirePending
from reference.ledger.machine import LedgerMachine
from reference.node import Context, Node, NodeId, UnhandledMessage
from reference.paxos.config import PaxosConfig
from reference.paxos.leader import LeaderFollower
from reference.paxos.messages import Propose, ProposeResult
from reference.paxos.replica import LEADER, Replica

__all__ = ["LedgerClient", "LedgerReplica", "Outcome", "stamp"]

PULSE_TIMER = "ledger.pulse"


# --8<-- [start:ledger-service]
def stamp(command: Any, now_ms: float) -> Any:
    """The command with the leader's clock as its batch time (others unchanged)."""
    # Whole milliseconds: the ledger keeps no floats. Built directly, not with
    # dataclasses.replace (a fifth of the cost): the leader stamps every request.
    timestamp_ms = max(0, int(now_ms))
    if isinstance(command, CreateTransfers):
        return CreateTransfers(command.transfers, timestamp_ms)
    if isinstance(command, CreateAccounts):
        return CreateAccounts(command.accounts, timestamp_ms)
    if isinstance(command, ExpirePending):
        return ExpirePending(timestamp_ms)
    return command


class LedgerReplica(Replica):
    """A Paxos replica of a ledger shard (see the module docstring)."""

    def __init__(
        self,
        node_id: NodeId,
        cfg: PaxosConfig,
        *,
        audit: bool = False,
        pulse_interval_ms: float = 50.0,
        machine_factory: Callable[[], LedgerMachine] | None = None,
    ) -> None:
        """`machine_factory`: the ledger the replica starts from, at boot and at every
        restart before its log is replayed (default: an empty one; chapter 4: its
        group's genesis, the accounts and their opening balances)."""
        assert pulse_interval_ms > 0
        empty = functools.partial(LedgerMachine, audit=audit)
        super().__init__(node_id, cfg, machine_factory or empty)
        self.pulse_interval_ms = pulse_interval_ms
        self.pulses_sent = 0
        self.pulse_busy_until_ms = -1.0  # one pulse in flight at a time

    @property
    def machine(self) -> LedgerMachine:
        machine = self.state.machine
        assert isinstance(machine, LedgerMachine)
        return machine

    def on_start(self, ctx: Context) -> None:
        super().on_start(ctx)
        ctx.set_timer(self.pulse_interval_ms, PULSE_TIMER)

    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        if isinstance(msg, ProposeResult) and src == self.node_id:
            self.pulse_busy_until_ms = -1.0  # the answer to our own pulse
            return
        if isinstance(msg, Propose) and self.role == LEADER:
            # Stamped once, here; a follower rejects it unstamped ("not-leader").
            msg = Propose(msg.request_id, stamp(msg.command, ctx.now_ms()))
        super().on_message(ctx, src, msg)

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        if tag != PULSE_TIMER:
            super().on_timer(ctx, tag)
            return
        ctx.set_timer(self.pulse_interval_ms, PULSE_TIMER)
        now_ms = ctx.now_ms()
        due_ms = self.machine.ledger.next_expiry_ms()
        if (
            self.role == LEADER
            and due_ms is not None
            and due_ms <= now_ms
            and now_ms >= self.pulse_busy_until_ms
        ):
            self.pulses_sent += 1
            self.pulse_busy_until_ms = now_ms + 10 * self.pulse_interval_ms
            request_id = f"pulse/{self.node_id}/{self.ballot[0]}/{self.pulses_sent}"
            # Through the front door, like any client: stamped and batched.
            self.on_message(ctx, self.node_id, Propose(request_id, ExpirePending(0)))


# --8<-- [end:ledger-service]


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a client learned about one request."""

    request_id: str
    command: Any
    answered: bool  # False: gave up after `attempts_max` (it may still apply)
    result: Any  # the ledger's result when answered, else None
    invoked_ms: float  # the client's clock
    completed_ms: float
    attempts: int


class LedgerClient(Node):
    """Sends its commands one at a time to the group's leader, retrying each
    with the same request id until it is answered or `attempts_max` runs out."""

    def __init__(
        self,
        node_id: NodeId,
        replicas: Sequence[NodeId],
        commands: Sequence[Any],
        on_outcome: Callable[[Outcome], None] | None = None,
        *,
        start_ms: float = 0.0,
        think_ms: float = 1.0,
        timeout_ms: float = 100.0,
        retry_backoff_ms: float = 20.0,
        attempts_max: int = 40,
    ) -> None:
        assert replicas and attempts_max >= 1 and timeout_ms > 0
        self.node_id = node_id
        self.replicas = tuple(replicas)
        self.commands = tuple(commands)
        self.on_outcome = on_outcome
        self.start_ms = start_ms
        self.think_ms = think_ms
        self.timeout_ms = timeout_ms
        self.retry_backoff_ms = retry_backoff_ms
        self.attempts_max = attempts_max
        self.outcomes: list[Outcome] = []
        self.index = -1  # the command in progress
        self.leaders = LeaderFollower(self.replicas)  # whom we believe leads
        self.attempts = 0
        self.invoked_ms = 0.0

    @property
    def request_id(self) -> str:
        return f"{self.node_id}/{self.index}"

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer(self.start_ms, "next")

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        if tag == "next":
            self.index += 1
            if self.index >= len(self.commands):
                return
            self.attempts = 0
            self.invoked_ms = ctx.now_ms()
            self._send(ctx)
        elif tag == "timeout":  # silence: maybe the leader is down; try another
            self.leaders.silent()
            self._retry(ctx, 0.0)
        elif tag == "retry":
            self._send(ctx)
        else:
            raise TypeError(f"LedgerClient armed no timer {tag!r}")

    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        if not isinstance(msg, ProposeResult):
            raise UnhandledMessage(self, msg)
        if msg.request_id != self.request_id:
            return  # a late answer to an earlier attempt: already settled
        if msg.ok:
            self.leaders.answered(src)
            self._finish(ctx, answered=True, result=msg.result)
            return
        self.leaders.refused(src, msg.leader_hint)
        self._retry(ctx, self.retry_backoff_ms)

    def _send(self, ctx: Context) -> None:
        self.attempts += 1
        ctx.send(self.leaders.leader, Propose(self.request_id, self.commands[self.index]))
        ctx.set_timer(self.timeout_ms, "timeout")

    def _retry(self, ctx: Context, delay_ms: float) -> None:
        ctx.cancel_timer("timeout")
        if self.attempts >= self.attempts_max:
            self._finish(ctx, answered=False, result=None)
        else:
            ctx.set_timer(delay_ms, "retry")

    def _finish(self, ctx: Context, *, answered: bool, result: Any) -> None:
        ctx.cancel_timer("timeout")
        ctx.cancel_timer("retry")
        outcome = Outcome(
            self.request_id,
            self.commands[self.index],
            answered,
            result,
            self.invoked_ms,
            ctx.now_ms(),
            self.attempts,
        )
        self.outcomes.append(outcome)
        if self.on_outcome is not None:
            self.on_outcome(outcome)
        ctx.set_timer(self.think_ms, "next")
