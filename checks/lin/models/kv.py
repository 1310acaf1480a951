"""A key-value map with get, put and append, checked one key at a time.

Operations name their key in the event's `key` field (as Porcupine's kv
histories and Jepsen's `:key` do) or carry `[key value]` as their value (as
Jepsen's independent workloads do). Keys are independent, so the history is
split by key (P-compositionality) and each part's state is one string. A key
never written reads as the empty string; a read of nil means the same.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from checks.history import HistoryError, Operation
from checks.lin.model import UNKNOWN, Call, Model
from checks.values import is_integer, value_key

GET, PUT, APPEND = "get", "put", "append"
_FS = {GET: GET, PUT: PUT, APPEND: APPEND}


class KvModel(Model):
    """get/put/append on string values, one independent register per key."""

    name = "kv"
    doc = "key-value map: get, put, append (string values), split by key"

    def init(self) -> str:
        return ""

    def prepare(self, op: Operation) -> tuple[Any, Any] | None:
        f = _FS.get(op.f)
        if f is None:
            raise self.unknown_op(op)
        done = op.completion
        if done is not None and done.type == "fail":
            return None
        key, arg = _key_and_value(op, op.invoke.value)
        out = UNKNOWN if done is None or done.type == "info" else done.value  # outcome(op)
        if f == GET and out is not UNKNOWN:
            if "key" not in op.invoke.extra and out is not None:
                out = _key_and_value(op, out)[1]
            out = "" if out is None else out
            if not isinstance(out, str):
                raise HistoryError(f"event {op.invoke.index}: get returned {out!r}, not a string")
        elif f != GET and not isinstance(arg, str):
            raise HistoryError(f"event {op.invoke.index}: {f} needs a string, got {arg!r}")
        return (f, key, arg), out

    def step(self, state: str, inp: tuple[str, Hashable, Any], out: Any) -> tuple[bool, str]:
        f = inp[0]
        if f == GET:
            return (out is UNKNOWN or out == state), state
        if f == PUT:
            return True, inp[2]
        return True, state + inp[2]  # append

    def partition(self, calls: Sequence[Call]) -> list[tuple[Hashable, list[Call]]]:
        parts: dict[Hashable, list[Call]] = {}
        for c in calls:
            parts.setdefault(c.input[1], []).append(c)
        return list(parts.items())

    def read_only(self, inp: tuple[str, Hashable, Any], out: Any) -> bool:
        return inp[0] == GET

    def only_extends(self, inp: tuple[str, Hashable, Any]) -> bool:
        return inp[0] == APPEND

    def reachable(self, state: str, inp: tuple[str, Hashable, Any], out: Any) -> bool:
        # Appends only lengthen the string: a get can still fit if it read a
        # value that starts with the state.
        return out is UNKNOWN or (isinstance(out, str) and out.startswith(state))

    def describe_state(self, state: str) -> str:
        return repr(state)

    def describe_call(self, call: Call) -> str:
        f, key, arg = call.input
        if f == GET:
            got = "?" if call.output is UNKNOWN else repr(call.output)
            return f"get {key!r} -> {got}"
        return f"{f} {key!r} {arg!r}"


def _key_and_value(op: Operation, value: Any) -> tuple[Hashable, Any]:
    if "key" in op.invoke.extra:
        return _key(op, op.invoke.extra["key"]), value
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return _key(op, value[0]), value[1]
    raise HistoryError(
        f"event {op.invoke.index}: a kv operation needs a `key` field or a [key value] value"
    )


def _key(op: Operation, key: Any) -> Hashable:
    """A key is a string or an integer (Clojure-equal: 1 and "1" are two keys)."""
    if key.__class__ is str:
        return key  # the usual case, first
    if not (isinstance(key, str) or is_integer(key)):
        raise HistoryError(
            f"event {op.invoke.index}: a kv key is a string or an integer, got {key!r}"
        )
    return value_key(key)
