"""History values compared as Clojure compares them, and checked at the edge.

Knossos and Elle compare values with Clojure's `=`: `true` is not `1`,
`1` is not `1.0`, `1` is not `"1"`, a map is never a vector. Python's `==`
says `True == 1 == 1.0`, and a checker that trusted it would call a history
linearizable where it is not (a register written `true` and read `1`). So
every value a checker compares goes through `value_key` first: the result is
hashable, and `==` on it is Clojure's `=`:

- nil, integers and strings are themselves (a keyword `:a` equals the
  string "a": JSON has no keywords, and histories translated from EDN name
  their values by keyword);
- booleans become `TRUE` / `FALSE`, equal only to themselves;
- floats become `Float`, equal only to a `Float` of the same value;
- vectors and lists become tuples (Clojure: `(= [1 2] '(1 2))`);
- maps become `Map`, sets frozensets.

`check_value` is the edge: a value read from a file must be finite, nested
no deeper than `DEPTH_MAX`, with integers of at most `INT_DIGITS_MAX`
digits and strings of valid Unicode, or it is a `HistoryError`.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from typing import Any, TypeGuard

from checks.errors import HistoryError

# A value as JSON holds it (what `json.loads` returns, and `json.dumps` takes).
JSONValue = None | bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"]

DEPTH_MAX = 100  # as the EDN reader: Jepsen values nest a few levels
INT_DIGITS_MAX = 30  # a 64-bit id has 20 digits; anything longer is not a history value
INT_ABS_MAX = 10**INT_DIGITS_MAX


class Bool:
    """`true` or `false`: equal to itself alone (never to 1 or 0)."""

    __slots__ = ("value",)
    value: bool

    def __new__(cls, value: bool) -> Bool:
        return TRUE if value else FALSE

    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return self is not other

    def __hash__(self) -> int:
        return hash(("bool", self.value))

    def __repr__(self) -> str:
        return "true" if self.value else "false"

    def __bool__(self) -> bool:
        return self.value

    def __reduce__(self) -> tuple[type[Bool], tuple[bool]]:
        return (Bool, (self.value,))


def _make_bool(value: bool) -> Bool:
    b = object.__new__(Bool)
    b.value = value
    return b


TRUE: Bool = _make_bool(True)
FALSE: Bool = _make_bool(False)


class Float(float):
    """A float equal only to a Float of the same value (Clojure: `(= 1 1.0)` is false)."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return type(other) is Float and float(self) == float(other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash(("float", float(self)))

    def __repr__(self) -> str:
        return float.__repr__(self)


class Map:
    """An immutable map of canonical keys to canonical values; equal to a Map alone."""

    __slots__ = ("_hash", "items")

    def __init__(self, items: Mapping[Any, Any]) -> None:
        pairs = [(value_key(k), value_key(v)) for k, v in items.items()]
        self.items: tuple[tuple[Hashable, Hashable], ...] = tuple(
            sorted(pairs, key=lambda kv: (type(kv[0]).__name__, repr(kv[0])))
        )
        self._hash = hash(("map", frozenset(self.items)))

    def __eq__(self, other: object) -> bool:
        return type(other) is Map and frozenset(self.items) == frozenset(other.items)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r} {v!r}" for k, v in self.items) + "}"

    def get(self, key: Any, default: Any = None) -> Any:
        want = value_key(key)
        return next((v for k, v in self.items if k == want), default)


def value_key(x: Any) -> Hashable:
    """The canonical, hashable form of a history value (see the module doc)."""
    if x is None or x.__class__ is int or x.__class__ is str:
        return x
    if isinstance(x, bool):
        return TRUE if x else FALSE
    if isinstance(x, (Bool, Float, Map)):
        return x
    if isinstance(x, int):
        return int(x)
    if isinstance(x, float):
        return Float(x)
    if isinstance(x, str):
        return x  # a keyword or symbol: compared by name
    if isinstance(x, (list, tuple)):
        return tuple(value_key(v) for v in x)
    if isinstance(x, Mapping):
        return Map(x)
    if isinstance(x, (set, frozenset)):
        return frozenset(value_key(v) for v in x)
    try:
        hash(x)  # an object a recorder put there (a sentinel, an enum): itself
    except TypeError:
        raise HistoryError(f"value of type {type(x).__name__} is not a history value") from None
    return x


def is_scalar(x: object) -> bool:
    """nil, a boolean, a number or a string: not a collection."""
    return x is None or isinstance(x, (bool, int, float, str, Bool))


def is_integer(x: object) -> TypeGuard[int]:
    """An integer that is not a boolean."""
    return isinstance(x, int) and not isinstance(x, bool)


def check_value(x: Any, where: str) -> None:
    """Refuse a value no history holds: too deep, not finite, a huge integer, bad Unicode.

    Iterative, so no value can exhaust the stack while it is being checked.
    """
    cls = x.__class__
    if cls is str and x.isascii():  # the usual cases, at once
        return
    if cls is int and -INT_ABS_MAX < x < INT_ABS_MAX:
        return
    todo: list[tuple[Any, int]] = [(x, 0)]
    while todo:
        v, depth = todo.pop()
        if depth > DEPTH_MAX:
            raise HistoryError(f"{where}: a value nested deeper than {DEPTH_MAX} levels")
        if v is None or isinstance(v, bool):
            continue
        if isinstance(v, int):
            if not -INT_ABS_MAX < v < INT_ABS_MAX:
                raise HistoryError(
                    f"{where}: an integer of more than {INT_DIGITS_MAX} digits is not a "
                    "history value"
                )
        elif isinstance(v, float):
            if not math.isfinite(v):
                raise HistoryError(f"{where}: {v!r} is not a finite number")
        elif isinstance(v, str):
            check_text(v, where)
        elif isinstance(v, Mapping):
            todo.extend((k, depth + 1) for k in v)
            todo.extend((w, depth + 1) for w in v.values())
        elif isinstance(v, (list, tuple, set, frozenset)):
            todo.extend((w, depth + 1) for w in v)
        else:
            kind = type(v).__name__
            raise HistoryError(f"{where}: a value of type {kind} is not a history value")


def check_text(s: str, where: str) -> None:
    """A string must be valid Unicode (no lone surrogate, which no output can print)."""
    if s.isascii():
        return
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise HistoryError(
            f"{where}: a string holds a lone surrogate (\\ud800-\\udfff), not text"
        ) from None


def to_plain(x: Any) -> Any:
    """A canonical value back as plain Python data for JSON (iterative depth is
    bounded by `check_value` at the edge)."""
    if isinstance(x, Bool):
        return x.value
    if isinstance(x, Float):
        return float(x)
    if isinstance(x, Map):
        return {k if isinstance(k, str) else repr(k): to_plain(v) for k, v in x.items}
    if isinstance(x, (list, tuple)):
        return [to_plain(v) for v in x]
    if isinstance(x, (set, frozenset)):
        return [to_plain(v) for v in sorted(x, key=repr)]
    return x
