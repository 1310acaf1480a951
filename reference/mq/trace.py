"""Message trace: each message's life, in the broker's trace topic (RocketMQ's message trace).

RocketMQ records a message's trace from hooks in its clients and broker (Pub,
SubBefore / SubAfter, EndTransaction, ...) and its clients' trace dispatcher
sends them, batched and asynchronously, as messages of a system topic,
`RMQ_SYS_TRACE_TOPIC`, which any tool can read back. Here each step is a
`TraceEntry` that the node that saw it buffers (`TraceBuffer`) and sends to
the broker in batches (`SendTraces`, every `FLUSH_MS`), where the broker's
state keeps them in its trace topic (`BrokerMachine.trace_topic`); the
report reads a message's life back from there. Each step is also one
telemetry trace event of kind `TRACE`, `{"id": msg_id, "step": ...}` plus
what the step knows (what the TUI shows live). The steps, by node:

- the producer: sent, stored (the half, or a plain message, acknowledged),
  committed / rolled-back (its own verdict, or its answer to a check, `by`),
- the broker's leader: checked (a CheckTransaction sent), set-aside (after
  its last check, to the check-max topic),
- a consumer: delivered, consumed (its effect applied, or skipped as a
  duplicate), acknowledged (its group's committed offset passed it),
  retried / dead-lettered (sent back after a failure).

A report picks one message and prints its steps in time order
(`message_life`); the TUI and a store's node logs show the events as they are.
"""

from __future__ import annotations

from collections.abc import Callable

from reference.mq.caller import GroupCaller
from reference.mq.messages import SendTraces, TraceEntry, TraceValue
from reference.node import Context
from reference.paxos.messages import Propose

__all__ = [
    "FLUSH_MS",
    "STEPS",
    "TRACE",
    "TRACE_TIMER",
    "TRACE_TOPIC",
    "TraceBuffer",
    "flush_to_broker",
    "trace_step",
]

TRACE_TOPIC = "RMQ_SYS_TRACE_TOPIC"
FLUSH_MS = 500.0  # a node sends its buffered trace entries this often
BATCH_MAX = 512  # entries in one SendTraces
TRACE_TIMER = "mq.trace-flush"
BUFFER_MAX = 20_000  # entries a node keeps while the broker is away (older ones dropped)

# --8<-- [start:trace-step]
TRACE = "mq.msg"
STEPS = (
    "sent",
    "stored",
    "committed",
    "rolled-back",
    "checked",
    "set-aside",
    "delivered",
    "consumed",
    "acknowledged",
    "retried",
    "dead-lettered",
)


def trace_step(ctx: Context, msg_id: str, step: str, **fields: TraceValue) -> None:
    """One step of message `msg_id`'s life, as a trace event of the node at hand."""
    assert step in STEPS, step
    ctx.trace(TRACE, id=msg_id, step=step, **fields)


# --8<-- [end:trace-step]


# --8<-- [start:trace-buffer]
class TraceBuffer:
    """A node's trace dispatcher: every step is a telemetry event at once and, if
    `to_topic`, a `TraceEntry` buffered for the broker's trace topic, sent in
    batches (RocketMQ's AsyncTraceDispatcher does the same, best effort)."""

    def __init__(self, to_topic: bool, events: bool = True) -> None:
        self.to_topic = to_topic
        # Each step also a telemetry event (the TUI's live view, a store's node logs).
        # Off where no one reads them: a rehearsal level's million cost ~10% of its CPU.
        self.events = events
        self.entries: list[TraceEntry] = []
        self.dropped = 0  # entries lost while the broker could not take them
        self.flushes = 0

    def step(self, ctx: Context, msg_id: str, step: str, **fields: TraceValue) -> None:
        # `trace_step`'s event, one call less: a 60 s rehearsal level traces a million steps.
        assert step in STEPS, step
        if self.events:
            ctx.trace(TRACE, id=msg_id, step=step, **fields)
        if self.to_topic:
            pairs = tuple(sorted(fields.items()))
            self.entries.append(TraceEntry(msg_id, step, ctx.now_ms(), ctx.node_id, pairs))

    def flush(self, send: Callable[[SendTraces, Callable[[bool], None]], None]) -> None:
        """Hand the buffered entries to `send` (one batch); put them back if it fails."""
        if not self.entries:
            return
        batch = self.entries[:BATCH_MAX]
        del self.entries[:BATCH_MAX]  # (in place: the rest of a long buffer is not copied)

        def sent(ok: bool) -> None:
            if not ok:
                self.entries[:0] = batch
                over = len(self.entries) - BUFFER_MAX
                if over > 0:
                    del self.entries[:over]
                    self.dropped += over

        send(SendTraces(tuple(batch)), sent)


# --8<-- [end:trace-buffer]


def flush_to_broker(ctx: Context, caller: GroupCaller, broker: str, buffer: TraceBuffer) -> None:
    """A producer's or consumer's flush: one `SendTraces` to the broker's leader (its
    request id names the time, so a restarted node's ids are not answered from the
    group's dedup table as its last incarnation's were)."""

    def send(batch: SendTraces, sent: Callable[[bool], None]) -> None:
        buffer.flushes += 1
        request_id = f"trace:{ctx.node_id}:{ctx.now_ms():.3f}:{buffer.flushes}"
        request = Propose(request_id, batch)
        caller.call(ctx, broker, request, lambda ok, _r: sent(ok), attempts_max=3)

    buffer.flush(send)
