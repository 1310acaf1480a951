"""A set: add x, read -> every element (as Jepsen's and Knossos' set)."""

from __future__ import annotations

from typing import Any

from checks.history import HistoryError, Operation
from checks.lin.model import UNKNOWN, Call, Model, outcome, value_key

ADD, READ = "add", "read"


class SetModel(Model):
    """A read returns exactly the elements added before it."""

    name = "set"
    doc = "set: add x, read -> all elements"

    def init(self) -> frozenset[Any]:
        return frozenset()

    def prepare(self, op: Operation) -> tuple[Any, Any] | None:
        if op.f not in (ADD, READ):
            raise self.unknown_op(op)
        if op.type == "fail":
            return None
        if op.f == ADD:
            return (ADD, value_key(op.invoke.value)), outcome(op)
        out = outcome(op)
        if out is not UNKNOWN:
            if not isinstance(out, (list, tuple, set, frozenset)):
                raise HistoryError(f"event {op.invoke.index}: a set read returns a collection")
            out = frozenset(value_key(x) for x in out)
        return (READ, None), out

    def step(self, state: frozenset[Any], inp: tuple[str, Any], out: Any) -> tuple[bool, Any]:
        if inp[0] == ADD:
            return True, state | {inp[1]}
        return (out is UNKNOWN or out == state), state

    def read_only(self, inp: tuple[str, Any], out: Any) -> bool:
        return inp[0] == READ

    def describe_call(self, call: Call) -> str:
        if call.input[0] == ADD:
            return f"add {call.input[1]!r}"
        got = "?" if call.output is UNKNOWN else self.describe_state(call.output)
        return f"read -> {got}"

    def describe_state(self, state: frozenset[Any]) -> str:
        return "{" + " ".join(repr(x) for x in sorted(state, key=repr)) + "}"
