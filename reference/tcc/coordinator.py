"""The TCC coordinator: try every branch, decide once, then confirm or cancel.

It lives inside a gateway node (the host) and keeps one durable record per
global transaction on the host's disk:

    begin:    {"state": "trying",   "branches": [...]}   synced before any try
    decision: {"state": "commit" | "rollback", ...}      synced before phase 2
    end:      {"state": "committed" | "rolledback", ...} when every branch acked

A crash at any point is recovered from that record (`recover`): a
transaction still "trying" is rolled back (some try may have landed, its
outcome is unknown, and the fence makes the cancel safe either way); a
decided one resumes phase 2. Phase 2 is retried with backoff until every
branch answers; the participants' fence makes the repeats harmless. The
outcome reported to the client is the decision: once "commit" is on disk the
payment *will* complete, whatever crashes next.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from reference.node import Context, NodeId
from reference.tcc.messages import TccPhase2, TccPhase2Reply, TccTry, TccTryReply
from reference.tracing.context import TraceContext

__all__ = ["Branch", "TccCoordinator"]

_KEY = "tcc/"
ACTIVE_MAX = 5_000  # transactions in flight per coordinator; beyond it, refuse new ones


@dataclass(frozen=True)
class Branch:
    branch_id: str  # unique within the transaction
    action: str  # "debit" | "credit"
    node: NodeId  # the participant (shard store) that runs it
    account: str
    amount_cents: int
    trace: TraceContext | None = None  # chapter 7: carried by every try and phase 2


@dataclass
class _Active:
    xid: str
    branches: tuple[Branch, ...]
    state: str  # trying | commit | rollback
    tried: set[str]  # branch ids whose try succeeded
    acked: set[str]  # branch ids whose phase 2 is done
    reason: str  # why it rolled back (the first refusal or a timeout)
    retry_ms: float


class TccCoordinator:
    """See the module docstring. `host` methods return decisions to report."""

    def __init__(
        self,
        *,
        try_timeout_ms: float = 300.0,
        phase2_retry_ms: float = 50.0,
        phase2_retry_max_ms: float = 800.0,
    ) -> None:
        assert try_timeout_ms > 0 and 0 < phase2_retry_ms <= phase2_retry_max_ms
        self.try_timeout_ms = try_timeout_ms
        self.phase2_retry_ms = phase2_retry_ms
        self.phase2_retry_max_ms = phase2_retry_max_ms
        self.active: dict[str, _Active] = {}
        self._seq = 0

    # -- what the host asks ----------------------------------------------------------
    def outcome(self, ctx: Context, xid: str) -> str | None:
        """ "commit", "rollback", "trying", or None (never seen): for client retries."""
        if xid in self.active:
            return self.active[xid].state
        record = ctx.disk.get(_KEY + xid)
        if record is None:
            return None
        return "commit" if record["state"] in ("commit", "committed") else "rollback"

    def reason(self, ctx: Context, xid: str) -> str:
        if xid in self.active:
            return self.active[xid].reason
        record = ctx.disk.get(_KEY + xid) or {}
        return str(record.get("reason", ""))

    @property
    def full(self) -> bool:
        return len(self.active) >= ACTIVE_MAX

    # --8<-- [start:tcc-begin]
    def begin(self, ctx: Context, xid: str, branches: tuple[Branch, ...]) -> None:
        """Log the transaction, then send every try (phase 1)."""
        assert xid not in self.active and ctx.disk.get(_KEY + xid) is None, xid
        assert not self.full and len({b.branch_id for b in branches}) == len(branches)
        self._save(ctx, xid, "trying", branches, "")
        ctx.disk.sync()  # recovery must know the branches before any try can land
        self.active[xid] = _Active(xid, branches, "trying", set(), set(), "", self.phase2_retry_ms)
        deadline_ms = ctx.now_ms() + self.try_timeout_ms
        for b in branches:
            ctx.send(
                b.node,
                TccTry(
                    self._req_id(ctx), xid, b.branch_id, b.action, b.account, b.amount_cents,
                    deadline_ms, b.trace,
                ),
            )  # fmt: skip
        ctx.set_timer(self.try_timeout_ms, ("tcc-try", xid))

    # --8<-- [end:tcc-begin]

    def recover(self, ctx: Context) -> None:
        """After a restart: roll back the undecided, resume phase 2 of the decided."""
        for key in ctx.disk.keys(_KEY):
            record = ctx.disk.get(key)
            if record["state"] in ("committed", "rolledback"):
                continue
            xid = key[len(_KEY) :]
            branches = tuple(Branch(*b) for b in record["branches"])
            state = record["state"]
            reason = record.get("reason", "")
            if state == "trying":
                state, reason = "rollback", "coordinator-restarted"
                self._save(ctx, xid, state, branches, reason)
            self.active[xid] = _Active(xid, branches, state, set(), set(), reason, 0.0)
            ctx.trace("tcc-recover", xid=xid, decision=state)
        ctx.disk.sync()
        for act in self.active.values():
            act.retry_ms = self.phase2_retry_ms
            self._send_phase2(ctx, act)

    # -- events -----------------------------------------------------------------------
    def on_message(self, ctx: Context, msg: Any) -> tuple[str, str] | None:
        """Handle a participant's reply. Returns (xid, decision) when one is made now."""
        act = self.active.get(msg.xid)
        if act is None:
            return None  # a late reply for a finished transaction
        if isinstance(msg, TccTryReply):
            return self._on_try_reply(ctx, act, msg)
        if isinstance(msg, TccPhase2Reply):
            self._on_phase2_reply(ctx, act, msg)
            return None
        raise TypeError(f"not a TCC reply: {msg!r}")

    def on_timer(self, ctx: Context, tag: Hashable) -> tuple[str, str] | None:
        """Handle a TCC timer (tags are ("tcc-try" | "tcc-p2", xid))."""
        kind, xid = tag  # type: ignore[misc]
        act = self.active.get(xid)
        if act is None:
            return None
        if kind == "tcc-try" and act.state == "trying":
            return self._decide(ctx, act, "rollback", "try-timeout")
        if kind == "tcc-p2":
            act.retry_ms = min(act.retry_ms * 2, self.phase2_retry_max_ms)
            self._send_phase2(ctx, act)
        return None

    # --8<-- [start:tcc-decide]
    def _on_try_reply(self, ctx: Context, act: _Active, msg: TccTryReply) -> tuple[str, str] | None:
        if act.state != "trying":
            return None  # already decided (a try that answered after the timeout)
        if not msg.ok:
            return self._decide(ctx, act, "rollback", msg.reason)
        act.tried.add(msg.branch_id)
        if len(act.tried) == len(act.branches):
            return self._decide(ctx, act, "commit", "")
        return None

    def _decide(self, ctx: Context, act: _Active, decision: str, reason: str) -> tuple[str, str]:
        """The one moment the outcome is fixed: on disk, then phase 2 to everyone."""
        ctx.cancel_timer(("tcc-try", act.xid))
        act.state, act.reason = decision, reason
        self._save(ctx, act.xid, decision, act.branches, reason)
        ctx.disk.sync()  # after this line the outcome survives any crash
        self._send_phase2(ctx, act)
        return act.xid, decision

    def _send_phase2(self, ctx: Context, act: _Active) -> None:
        commit = act.state == "commit"
        for b in act.branches:
            if b.branch_id not in act.acked:
                ctx.send(
                    b.node,
                    TccPhase2(
                        self._req_id(ctx), act.xid, b.branch_id, b.action, b.account,
                        b.amount_cents, commit, b.trace,
                    ),
                )  # fmt: skip
        # Retried until every branch answers: a cancel that never lands would
        # leave the buyer's money frozen, a confirm that never lands loses it.
        ctx.set_timer(act.retry_ms, ("tcc-p2", act.xid))

    # --8<-- [end:tcc-decide]

    def _on_phase2_reply(self, ctx: Context, act: _Active, msg: TccPhase2Reply) -> None:
        if msg.commit != (act.state == "commit"):
            return  # a reply to a phase 2 we never sent in this state
        if not msg.ok:
            ctx.count("tcc_fence_refused")
            ctx.trace("tcc-fence-refused", xid=act.xid, branch=msg.branch_id, reason=msg.reason)
        act.acked.add(msg.branch_id)
        if len(act.acked) == len(act.branches):
            ctx.cancel_timer(("tcc-p2", act.xid))
            done = "committed" if act.state == "commit" else "rolledback"
            self._save(ctx, act.xid, done, act.branches, act.reason)  # synced with the next
            del self.active[act.xid]

    # -- internals --------------------------------------------------------------------
    def _save(
        self, ctx: Context, xid: str, state: str, branches: tuple[Branch, ...], reason: str
    ) -> None:
        rows = [[b.branch_id, b.action, b.node, b.account, b.amount_cents] for b in branches]
        for row, b in zip(rows, branches, strict=True):
            if b.trace is not None:  # a recovered phase 2 must keep its tag (and its shadow)
                row.append(b.trace)
        ctx.disk.put(_KEY + xid, {"state": state, "branches": rows, "reason": reason})

    def _req_id(self, ctx: Context) -> str:
        self._seq += 1
        return f"{ctx.node_id}:tcc:{self._seq}"
