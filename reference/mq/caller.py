"""Calling a Paxos group from a node: find the leader, retry, give up in bounds.

The producer and the consumers talk to two groups (the broker's and the
ledger's) with Paxos's own client protocol: `Propose` / `Read` to whoever
they believe leads, `ProposeResult` / `ReadResult` back. A `GroupCaller`
keeps, per group, a `paxos.leader.LeaderFollower` (the one way every client
of a group follows its leader: an answer, a refusal with or without a hint,
silence past `attempt_timeout_ms`), and per call its continuation. A call is retried
with the *same* request id, so the group's dedup table answers a retry of
an applied command from its first outcome.

A group may be several groups (`Routed`): the capstone's producers and
settlement consumers reach every cell's ledger group, each request going to
the group its `route` names (the ledger's own placement of the account it
debits: `ledger_groups`). Each of them keeps its own leader follower.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reference.ledger import CreateTransfers
from reference.ledger.directory import Directory
from reference.node import Context, NodeId
from reference.paxos.leader import LeaderFollower
from reference.paxos.messages import Propose, ProposeResult, Read, ReadResult

__all__ = ["CALL_TIMER", "Group", "GroupCaller", "Routed", "ledger_groups"]

CALL_TIMER = "call"  # timer tags: (CALL_TIMER, request_id, attempt)
CALLS_MAX = 10_000  # calls in flight per node; beyond it a call fails at once

Done = Callable[[bool, Any], None]  # (answered ok, result) -> None


@dataclass(frozen=True)
class Routed:
    """Several groups called by one name: each request goes to `route(request)`."""

    groups: Mapping[str, tuple[NodeId, ...]]  # group -> its replicas
    route: Callable[[Propose | Read], str]  # a request -> the group that holds its data

    def __post_init__(self) -> None:
        assert self.groups and all(self.groups.values()), self.groups


Group = tuple[NodeId, ...] | Routed


def ledger_groups(directory: Directory) -> Routed:
    """Every Paxos group of a cell ledger, each transfer sent to the group holding the
    account it debits: the directory's placement (a user by the uid bucket of the
    boot routing rules, `even_buckets`, as the gateways route; a merchant's escrow
    by the cell its name carries). Data never moves between groups (chapter 4), so
    a payment routed by a cell that took over a failed cell's range still reaches
    the payer's own group."""
    replicas = {g: tuple(r) for g, r in directory.groups.items()}

    def route(request: Propose | Read) -> str:
        command = request.command if isinstance(request, Propose) else None
        assert isinstance(command, CreateTransfers) and command.transfers, request
        groups = {directory.group_of_transfer(t) for t in command.transfers}
        assert len(groups) == 1, f"one request, one group: {sorted(groups)}"
        return groups.pop()

    return Routed(replicas, route)


@dataclass
class _Call:
    group: str
    msg: Propose | Read
    done: Done | None  # None: one-way (sent once, never retried)
    attempts_max: int
    attempt: int = 0


class GroupCaller:
    """See the module docstring. The owning node forwards results and timers to it."""

    def __init__(
        self,
        groups: Mapping[str, Group],
        *,
        attempt_timeout_ms: float = 150.0,
        backoff_ms: float = 20.0,
    ) -> None:
        assert all(groups.values()) and attempt_timeout_ms > 0
        # A routed group's members are named "<name>/<group>": each its own leader.
        self.routes = {g: r for g, r in groups.items() if isinstance(r, Routed)}
        self.groups: dict[str, tuple[NodeId, ...]] = {}
        for name, group in groups.items():
            if isinstance(group, Routed):
                self.groups |= {f"{name}/{g}": r for g, r in group.groups.items()}
            else:
                self.groups[name] = group
        self.followers = {g: LeaderFollower(r) for g, r in self.groups.items()}
        self.calls: dict[str, _Call] = {}
        self.attempt_timeout_ms = attempt_timeout_ms
        self.backoff_ms = backoff_ms

    def call(
        self,
        ctx: Context,
        group: str,
        msg: Propose | Read,
        done: Done | None,
        *,
        attempts_max: int = 20,
        to: NodeId | None = None,
    ) -> None:
        """Send `msg` to `group`'s leader; `done(ok, result)` once answered or given up.

        `done=None` sends once and forgets (a one-way request), to `to` if given
        (the replica that asked, for an answer to a broker's check-back).
        """
        assert attempts_max >= 1
        routed = self.routes.get(group)
        if routed is not None:
            group = f"{group}/{routed.route(msg)}"
        if done is None:
            ctx.send(to if to in self.groups[group] else self.leader(group), msg)
            return
        if len(self.calls) >= CALLS_MAX or msg.request_id in self.calls:
            done(False, "busy")
            return
        self.calls[msg.request_id] = _Call(group, msg, done, attempts_max)
        self._send(ctx, msg.request_id)

    def _send(self, ctx: Context, request_id: str) -> None:
        call = self.calls[request_id]
        if call.attempt >= call.attempts_max:
            del self.calls[request_id]
            assert call.done is not None
            call.done(False, "gave-up")
            return
        call.attempt += 1
        ctx.send(self.leader(call.group), call.msg)
        ctx.set_timer(self.attempt_timeout_ms, (CALL_TIMER, request_id, call.attempt))

    def on_timer(self, ctx: Context, tag: tuple[Any, ...]) -> None:
        _, request_id, attempt = tag
        call = self.calls.get(request_id)
        if call is None or (attempt != call.attempt and attempt != -1):
            return  # answered, or an older attempt's timer
        if attempt != -1:  # silence (not a backoff): try the next replica
            self.followers[call.group].silent()
        self._send(ctx, request_id)

    def on_result(self, ctx: Context, src: NodeId, msg: ProposeResult | ReadResult) -> bool:
        """Handle a group's answer; False if it answers no call of ours."""
        call = self.calls.get(msg.request_id)
        if call is None:
            return False
        ctx.cancel_timer((CALL_TIMER, msg.request_id, call.attempt))
        follower = self.followers[call.group]
        if msg.ok:
            follower.answered(src)
            del self.calls[msg.request_id]
            assert call.done is not None
            value = msg.result if isinstance(msg, ProposeResult) else msg.value
            call.done(True, value)
            return True
        follower.refused(src, msg.leader_hint)
        ctx.set_timer(self.backoff_ms, (CALL_TIMER, msg.request_id, -1))
        return True

    def leader(self, group: str) -> NodeId:
        """The replica of `group` believed to lead."""
        return self.followers[group].leader
