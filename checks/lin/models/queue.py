"""A FIFO queue: enqueue x, dequeue -> x (or nil when empty)."""

from __future__ import annotations

from typing import Any

from checks.history import Operation
from checks.lin.model import UNKNOWN, Call, Model, outcome, value_key

ENQUEUE, DEQUEUE = "enqueue", "dequeue"


class QueueModel(Model):
    """Dequeue returns the oldest element still queued; nil means the queue was empty."""

    name = "queue"
    doc = "FIFO queue: enqueue x, dequeue -> x or nil (empty)"

    def init(self) -> tuple[Any, ...]:
        return ()

    def prepare(self, op: Operation) -> tuple[Any, Any] | None:
        if op.f not in (ENQUEUE, DEQUEUE):
            raise self.unknown_op(op)
        if op.type == "fail":
            return None
        if op.f == ENQUEUE:
            return (ENQUEUE, value_key(op.invoke.value)), outcome(op)
        return (DEQUEUE, None), value_key(outcome(op))

    def step(self, state: tuple[Any, ...], inp: tuple[str, Any], out: Any) -> tuple[bool, Any]:
        if inp[0] == ENQUEUE:
            return True, (*state, inp[1])
        if out is UNKNOWN:  # it took effect: it removed the head, if any
            return True, state[1:]
        if not state:
            return out is None, state
        return out == state[0], state[1:]

    def describe_call(self, call: Call) -> str:
        if call.input[0] == ENQUEUE:
            return f"enqueue {call.input[1]!r}"
        return f"dequeue -> {'?' if call.output is UNKNOWN else repr(call.output)}"

    def describe_state(self, state: tuple[Any, ...]) -> str:
        return "[" + " ".join(repr(x) for x in state) + "]"
