"""Registers: read/write, and read/write/compare-and-set.

Three flavours, differing only in what a failed compare-and-set means:

- `register`: read and write.
- `cas-register`: adds cas [old new]. As in Jepsen and Knossos, a `fail`
  completion means the operation did not happen, so a failed cas is left out.
- `etcd`: the model Porcupine checks its etcd histories with. Jepsen's etcd
  client reports a cas whose compare did not match as `fail`: that is an
  observation (the register did not hold `old` at that instant), so it is
  checked, not dropped. A read that failed (timed out) is left out.

A read of nil (None) means the register was never written.
"""

from __future__ import annotations

from typing import Any

from checks.history import HistoryError, Operation
from checks.lin.model import UNKNOWN, Call, Model, outcome, value_key

READ, WRITE, CAS = "read", "write", "cas"


# --8<-- [start:model-register]
class RegisterModel(Model):
    """A single register holding one value; reads must see the latest write."""

    name = "register"
    doc = "one register: read, write"

    def __init__(self, initial: Any = None) -> None:
        self.initial = value_key(initial)

    def init(self) -> Any:
        return self.initial

    def prepare(self, op: Operation) -> tuple[Any, Any] | None:
        if op.type == "fail":
            return None  # a failed operation did not happen
        if op.f == READ:
            return (READ, None), value_key(outcome(op))
        if op.f == WRITE:
            return (WRITE, value_key(op.invoke.value)), outcome(op)
        raise self.unknown_op(op)

    def step(self, state: Any, inp: tuple[str, Any], out: Any) -> tuple[bool, Any]:
        f, arg = inp
        if f == READ:
            return (out is UNKNOWN or out == state), state
        return True, arg  # a write always succeeds and sets the value

    def read_only(self, inp: tuple[str, Any], out: Any) -> bool:
        return inp[0] == READ

    def describe_call(self, call: Call) -> str:
        f, arg = call.input
        if f == READ:
            return f"read -> {'?' if call.output is UNKNOWN else _show(call.output)}"
        return f"write {_show(arg)}"

    def describe_state(self, state: Any) -> str:
        return _show(state)


# --8<-- [end:model-register]


class CasRegisterModel(RegisterModel):
    """A register with compare-and-set; a failed cas did not happen (Knossos)."""

    name = "cas-register"
    doc = "one register: read, write, cas [old new] (a failed cas did not happen)"
    fail_is_observed = False  # see EtcdModel

    def prepare(self, op: Operation) -> tuple[Any, Any] | None:
        if op.f != CAS:
            return super().prepare(op)
        arg = value_key(op.invoke.value)
        if not (isinstance(arg, tuple) and len(arg) == 2):
            raise HistoryError(
                f"event {op.invoke.index}: cas needs a value [old new], got {op.invoke.value!r}"
            )
        if op.type == "fail":
            return ((CAS, arg), False) if self.fail_is_observed else None
        return (CAS, arg), (UNKNOWN if op.type == "info" else True)

    def step(self, state: Any, inp: tuple[str, Any], out: Any) -> tuple[bool, Any]:
        f, arg = inp
        if f != CAS:
            return super().step(state, inp, out)
        old, new = arg
        if out is UNKNOWN:  # if it took effect, it did what a cas does
            return True, (new if state == old else state)
        if out:
            return state == old, new
        return state != old, state  # an observed failed compare

    def read_only(self, inp: tuple[str, Any], out: Any) -> bool:
        return inp[0] == READ or (inp[0] == CAS and out is False)

    def describe_call(self, call: Call) -> str:
        f, arg = call.input
        if f != CAS:
            return super().describe_call(call)
        res = {True: "ok", False: "failed"}.get(call.output, "?")
        return f"cas {_show(arg[0])}->{_show(arg[1])} {res}"


class EtcdModel(CasRegisterModel):
    """Porcupine's etcd model: a failed cas observed that the compare did not match."""

    name = "etcd"
    doc = "one register as Porcupine checks etcd: a failed cas saw a different value"
    fail_is_observed = True


def _show(x: Any) -> str:
    return "nil" if x is None else repr(x)
