"""What a model is: a sequential specification the checker can step through.

A model is a small object a learner can write in a few lines:

- `init()`: the initial state (hashable: the search caches states);
- `prepare(op)`: turn one history operation into the model's (input, output),
  or None to leave it out (a failed operation did not happen);
- `step(state, input, output) -> (ok, new_state)`: could this operation,
  applied to `state`, have returned `output`? and the state after it;
- optionally `partition(calls)`: split the history into independent parts
  (P-compositionality: a history is linearizable iff each part is), with
  `init_part(key)` the initial state of each part, and
  `read_only(input, output)`: the operation never changes any state (a
  read, a failed compare), which lets the search take it greedily;
- optionally `only_extends(input)` and `reachable(state, input, output)`:
  calls that only grow the state (kv appends), and whether a read can still
  fit once the state has grown, which lets the search drop configurations
  no order of the remaining calls can save;
- `describe_state(state)` / `describe_call(call)` for people.

An operation whose outcome is unknown (`info`) gets the output `UNKNOWN`; its
`step` must accept any output then. The checker treats its return as
+infinity and may leave it out, so the model never needs to.

A whole model, for a counter with `add n` and `read -> n`:

    class CounterModel(Model):
        name = "counter"

        def init(self) -> int:
            return 0

        def prepare(self, op: Operation) -> tuple[Any, Any] | None:
            if op.type == "fail":
                return None  # it did not happen
            return (op.f, op.invoke.value), outcome(op)

        def step(self, state: int, inp: tuple[str, Any], out: Any) -> tuple[bool, int]:
            f, n = inp
            if f == "add":
                return True, state + n
            return (out is UNKNOWN or out == state), state  # a read

        def read_only(self, inp: tuple[str, Any], out: Any) -> bool:
            return inp[0] == "read"  # optional: lets the search take reads greedily
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, NamedTuple

from checks.history import HistoryError, Operation
from checks.values import value_key as value_key  # models import it from here


class _Unknown:
    """The output of an operation that may or may not have taken effect."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "?"

    def __reduce__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()


class Call(NamedTuple):
    """One operation as the checker sees it: the model's input/output and its interval.

    `call` and `ret` are positions in the history (event indexes); `ret` is
    None for an operation whose outcome is unknown: it may take effect any time
    after `call`, or never.

    A named tuple, not a frozen dataclass: as immutable, and about eight
    times cheaper to build (the checker builds two per operation, which
    was most of the time spent on a small history).
    """

    id: int  # position in the list handed to the checker
    process: int | str
    f: str
    input: Any
    output: Any  # UNKNOWN when ret is None
    call: int
    ret: int | None
    op: Operation | None = None  # the operation it came from (None for made-up calls)

    @property
    def definite(self) -> bool:
        return self.ret is not None


class Model:
    """Base class: override `init`, `prepare` and `step`; the rest has defaults."""

    name: str = "model"
    doc: str = ""  # one line for `d11 check lin --help` and the report

    def init(self) -> Hashable:
        raise TypeError(f"{type(self).__name__} must define init()")

    def prepare(self, op: Operation) -> tuple[Any, Any] | None:
        raise TypeError(f"{type(self).__name__} must define prepare()")

    def step(self, state: Any, inp: Any, out: Any) -> tuple[bool, Any]:
        raise TypeError(f"{type(self).__name__} must define step()")

    def partition(self, calls: Sequence[Call]) -> list[tuple[Hashable, list[Call]]]:
        """Independent parts of the history, each with a key naming it (default: one)."""
        return [(None, list(calls))]

    def init_part(self, key: Hashable) -> Hashable:
        """The initial state of one part (default: the model's initial state)."""
        return self.init()

    def read_only(self, inp: Any, out: Any) -> bool:
        """True if an operation with this input and output never changes any state."""
        return False

    def only_extends(self, inp: Any) -> bool:
        """Whether the call can only extend the state (a kv append), never set
        it anew: `reachable` then stays a sound bound across it. The default,
        False, makes the search's reduction 5 never apply."""
        return False

    def reachable(self, state: Any, inp: Any, out: Any) -> bool:
        """Whether calls that only extend `state` can take it to one where the
        read-only call (inp, out) fits. Answer True when unsure (the default):
        the search prunes on False alone, so a wrong False loses linearizations."""
        return True

    def describe_state(self, state: Any) -> str:
        return repr(state)

    def describe_call(self, call: Call) -> str:
        out = "?" if call.output is UNKNOWN else repr(call.output)
        return f"{call.f}({call.input!r}) -> {out}"

    # Helpers for subclasses ------------------------------------------------
    def unknown_op(self, op: Operation) -> HistoryError:
        """The error for an operation this model has no meaning for."""
        return HistoryError(
            f"event {op.invoke.index}: the {self.name} model has no operation {op.f!r}"
        )


def outcome(op: Operation) -> Any:
    """The completion's value, or UNKNOWN for an operation that did not complete ok."""
    if op.completion is None or op.type == "info":
        return UNKNOWN
    return op.completion.value
