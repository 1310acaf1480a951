"""Message trace: each message's life as trace events (RocketMQ's message trace).

RocketMQ records a message's trace from hooks in its clients and broker (Pub,
SubBefore / SubAfter, EndTransaction, ...) into a trace topic. Here each step
is one telemetry trace event of kind `TRACE`, `{"id": msg_id, "step": ...}`
plus what the step knows, emitted by the node that saw it:

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

from typing import Any

from reference.node import Context

__all__ = ["STEPS", "TRACE", "trace_step"]

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


def trace_step(ctx: Context, msg_id: str, step: str, **fields: Any) -> None:
    """One step of message `msg_id`'s life, as a trace event of the node at hand."""
    assert step in STEPS, step
    ctx.trace(TRACE, id=msg_id, step=step, **fields)


# --8<-- [end:trace-step]
