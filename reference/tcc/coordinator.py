"""The TCC coordinator: try every branch, decide once, then confirm or cancel.

It lives inside a gateway node (the host) and keeps one durable record per
global transaction on the host's disk:

    begin:    {"state": "trying",   "branches": [...]}   synced before any try
    decision: {"state": "commit" | "rollback", ...}      synced before phase 2
    end:      {"state": "committed" | "rolledback", ...} when every branch acked

A crash at any point is recovered from that record (`recover`): a
transaction still "trying" is rolled back (some try may have landed, its
outcome is unknown, and the fence makes the cancel safe either way); a
decided one resumes phase 2. Phase 2 is retried until every branch answers;
the participants' fence makes the repeats harmless. The outcome reported to
the client is the decision: once "commit" is on disk the payment *will*
complete, whatever crashes next.

Phase 2 cannot give up (a prepared branch holds the buyer's money), but its
retries are bounded, as Seata's are (`Phase2Limits`): a window of phase-2
messages in flight per coordinator, a token bucket for resends, a capped and
jittered backoff, and a report (metric and trace event) once a transaction
has taken too many attempts, after which it is retried at the slowest rate.
Without those bounds, an overloaded participant answers late, every late
answer is a resend, and the resends keep it overloaded: a retry storm.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from reference.node import Context, NodeId
from reference.tcc.messages import TccPhase2, TccPhase2Reply, TccTry, TccTryReply
from reference.tracing.context import TraceContext

__all__ = ["UNBOUNDED_PHASE2", "Branch", "Phase2Limits", "TccCoordinator"]

_KEY = "tcc/"
ACTIVE_MAX = 5_000  # transactions in flight per coordinator; beyond it, refuse new ones
_PUMP = ""  # the xid slot of the timer that resumes queued phase 2 (no xid is empty)


# --8<-- [start:tcc-phase2-limits]
@dataclass(frozen=True)
class Phase2Limits:
    """How hard phase 2 may push on participants. 0 turns a bound off.

    Seata's coordinator retries phase 2 from one recovery thread that sweeps
    the unfinished transactions once a second (`committingRetryPeriod`,
    `rollbackingRetryPeriod`, 1,000 ms), so however many are stuck, the
    retries it sends are paced by that one thread; a transaction retried past
    `maxCommitRetryTimeout` is reported for an operator. Here, per coordinator:
    """

    window: int = 256  # phase-2 messages in flight (sent, not yet answered or timed out)
    resends_per_s: float = 200.0  # token bucket of resent messages; first sends need the window
    resend_burst: int = 50
    backoff_ms: float = 50.0  # wait for the answer to a first send
    backoff_max_ms: float = 800.0  # the cap: doubling stops here (the slowest rate)
    jitter: float = 0.5  # each resend's wait is drawn from [(1 - jitter) * w, w]
    report_after: int = 8  # attempts, then: counted, traced, and retried at the slowest rate

    def __post_init__(self) -> None:
        assert 0 < self.backoff_ms <= self.backoff_max_ms, self
        assert self.window >= 0 and self.resends_per_s >= 0 and self.resend_burst >= 0, self
        assert (self.resends_per_s > 0) == (self.resend_burst > 0), "a bucket needs both"
        assert 0.0 <= self.jitter < 1.0 and self.report_after >= 0, self

    def wait_ms(self, attempt: int) -> float:
        """The backoff after `attempt` sends (before jitter): doubling, capped."""
        assert attempt >= 1
        if self.report_after and attempt >= self.report_after:
            return self.backoff_max_ms  # reported: keep trying, at the slowest rate
        return min(self.backoff_ms * 2.0 ** min(attempt - 1, 30), self.backoff_max_ms)


# --8<-- [end:tcc-phase2-limits]

# The coordinator before the bounds: every transaction resends on its own
# doubling timer, however many are stuck (the planted retry storm of the tests).
UNBOUNDED_PHASE2 = Phase2Limits(
    window=0, resends_per_s=0.0, resend_burst=0, jitter=0.0, report_after=0
)


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
    attempts: int = 0  # phase-2 sends (each to every branch not yet acked)
    outstanding: set[str] = field(default_factory=set)  # branches sent, in the window
    queued: bool = False  # waiting for room in the window (or for a resend token)
    decided_ms: float = 0.0


class TccCoordinator:
    """See the module docstring. `host` methods return decisions to report."""

    def __init__(
        self, *, try_timeout_ms: float = 300.0, limits: Phase2Limits | None = None
    ) -> None:
        assert try_timeout_ms > 0
        self.try_timeout_ms = try_timeout_ms
        self.limits = limits if limits is not None else Phase2Limits()
        self.active: dict[str, _Active] = {}
        self.inflight = 0  # phase-2 messages in the window, over every transaction
        self._fresh: deque[str] = deque()  # decided, first send waiting for the window
        self._resend: deque[str] = deque()  # timed out, waiting for the window and a token
        self._tokens = float(self.limits.resend_burst)
        self._tokens_ms = 0.0  # when the bucket was last refilled
        self._pump_at_ms: float | None = None  # the pump timer, when one is set
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
        assert xid and xid not in self.active and ctx.disk.get(_KEY + xid) is None, xid
        assert not self.full and len({b.branch_id for b in branches}) == len(branches)
        self._save(ctx, xid, "trying", branches, "")
        ctx.disk.sync()  # recovery must know the branches before any try can land
        self.active[xid] = _Active(xid, branches, "trying", set(), set(), "")
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
            self.active[xid] = _Active(xid, branches, state, set(), set(), reason)
            self.active[xid].decided_ms = ctx.now_ms()
            ctx.trace("tcc-recover", xid=xid, decision=state)
        ctx.disk.sync()
        for act in self.active.values():  # through the window: a restart is no storm either
            self._queue(act, self._fresh)
        self._pump(ctx)

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
        assert isinstance(tag, tuple) and len(tag) == 2, tag
        kind, xid = str(tag[0]), str(tag[1])
        if kind == "tcc-p2" and xid == _PUMP:
            self._pump_at_ms = None
            self._pump(ctx)
            return None
        act = self.active.get(xid)
        if act is None:
            return None
        if kind == "tcc-try" and act.state == "trying":
            return self._decide(ctx, act, "rollback", "try-timeout")
        if kind == "tcc-p2":
            # No answer in time: the messages leave the window (they may be lost,
            # or still queued at a slow participant) and the branches wait to resend.
            self.inflight -= len(act.outstanding)
            act.outstanding.clear()
            self._queue(act, self._resend)
            self._pump(ctx)
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
        act.state, act.reason, act.decided_ms = decision, reason, ctx.now_ms()
        self._save(ctx, act.xid, decision, act.branches, reason)
        ctx.disk.sync()  # after this line the outcome survives any crash
        self._queue(act, self._fresh)
        self._pump(ctx)
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
                act.outstanding.add(b.branch_id)
        self.inflight += len(act.outstanding)
        # The window holds, unless one transaction alone is wider than it (sent alone).
        window = self.limits.window
        assert not window or self.inflight <= max(window, len(act.outstanding)), self.inflight
        act.attempts += 1
        ctx.count("tcc_phase2_sent", len(act.outstanding))
        # Retried until every branch answers: a cancel that never lands would
        # leave the buyer's money frozen, a confirm that never lands loses it.
        ctx.set_timer(self._wait_ms(ctx, act), ("tcc-p2", act.xid))

    # --8<-- [end:tcc-decide]

    # --8<-- [start:tcc-phase2-pump]
    def _pump(self, ctx: Context) -> None:
        """Send queued phase 2 while the window has room: first sends, then resends."""
        limits = self.limits
        for queue in (self._fresh, self._resend):
            while queue:
                act = self.active.get(queue[0])
                if act is None or not act.queued:
                    queue.popleft()  # finished meanwhile (a late answer acked it all)
                    continue
                need = len(act.branches) - len(act.acked)
                if limits.window and self.inflight + need > limits.window and self.inflight:
                    return  # answers (or timeouts) free the window and pump again
                resend = queue is self._resend
                if resend and not self._take_tokens(ctx, need):
                    return
                queue.popleft()
                act.queued = False
                self._send_phase2(ctx, act)
                if resend:
                    ctx.count("tcc_phase2_resent", need)
                if limits.report_after and act.attempts == limits.report_after:
                    # Seata's maxCommitRetryTimeout: an operator should look. Unlike
                    # Seata, do not stop: a prepared branch still holds its money.
                    ctx.count("tcc_phase2_stuck")
                    ctx.trace(
                        "tcc-phase2-stuck", xid=act.xid, decision=act.state,
                        attempts=act.attempts, age_ms=ctx.now_ms() - act.decided_ms,
                    )  # fmt: skip

    def _take_tokens(self, ctx: Context, need: int) -> bool:
        """`need` resent messages from the bucket; when short, a timer for the rest."""
        limits = self.limits
        if not limits.resends_per_s:
            return True
        now_ms = ctx.now_ms()
        earned = (now_ms - self._tokens_ms) * limits.resends_per_s / 1000.0
        self._tokens = min(float(limits.resend_burst), self._tokens + earned)
        self._tokens_ms = now_ms
        need_tokens = float(min(need, limits.resend_burst))  # a wide one waits for a full bucket
        if self._tokens >= need_tokens - 1e-9:  # (the refill's rounding must not starve it)
            self._tokens = max(0.0, self._tokens - need_tokens)
            return True
        if self._pump_at_ms is None:
            # At least 1 ms: a wait that rounds to nothing would spin at one instant.
            wait_ms = max(1.0, (need_tokens - self._tokens) * 1000.0 / limits.resends_per_s)
            self._pump_at_ms = now_ms + wait_ms
            ctx.set_timer(wait_ms, ("tcc-p2", _PUMP))
        return False

    def _wait_ms(self, ctx: Context, act: _Active) -> float:
        wait_ms = self.limits.wait_ms(act.attempts)
        if act.attempts > 1 and self.limits.jitter:
            # Spread the resends of transactions that failed together (a healed
            # partition), so they do not come back together. The first wait is
            # not drawn: arrivals already spread the decisions.
            wait_ms *= 1.0 - self.limits.jitter * ctx.random.random()
        return wait_ms

    # --8<-- [end:tcc-phase2-pump]

    def _queue(self, act: _Active, queue: deque[str]) -> None:
        if not act.queued:
            act.queued = True
            queue.append(act.xid)

    def _on_phase2_reply(self, ctx: Context, act: _Active, msg: TccPhase2Reply) -> None:
        if msg.commit != (act.state == "commit"):
            return  # a reply to a phase 2 we never sent in this state
        if not msg.ok:
            ctx.count("tcc_fence_refused")
            ctx.trace("tcc-fence-refused", xid=act.xid, branch=msg.branch_id, reason=msg.reason)
        act.acked.add(msg.branch_id)
        if msg.branch_id in act.outstanding:  # (a late answer to a timed-out send is not)
            act.outstanding.discard(msg.branch_id)
            self.inflight -= 1
        if len(act.acked) == len(act.branches):
            ctx.cancel_timer(("tcc-p2", act.xid))
            done = "committed" if act.state == "commit" else "rolledback"
            self._save(ctx, act.xid, done, act.branches, act.reason)  # synced with the next
            self.inflight -= len(act.outstanding)
            act.queued = False  # its queue entry is dropped when reached
            del self.active[act.xid]
        assert self.inflight >= 0, self.inflight
        self._pump(ctx)

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
