"""The compiled search (native/lincheck: Rust through PyO3), where it is installed.

`checks/lin/search.py` is the reference, the one the book quotes; the
compiled helper is the same search step for step (same reductions, same
order of moves, same step and cache counts), for the models whose `step` it
knows: the register family (register, cas-register, etcd) and kv. On a
small history most of the Python search's time is per-call overhead (the
tables, the closures); the helper takes one history's parts in bulk as plain
tuples, converted once here, and gives back each part's verdict, longest
linearization and stuck call, so the report is built exactly as before.

Which engine runs: `D11_LIN_ENGINE=python` forces the reference,
`D11_LIN_ENGINE=native` requires the helper (an error if it is not
installed); unset (or `auto`), the helper runs when it is importable and
knows the model. Any other model always runs the Python search.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Hashable, Sequence
from typing import Protocol, cast

from checks.lin.model import UNKNOWN, Call, Model
from checks.lin.models.kv import GET, PUT, KvModel
from checks.lin.models.register import (
    CAS,
    READ,
    WRITE,
    CasRegisterModel,
    EtcdModel,
    RegisterModel,
)

ENGINE_VAR = "D11_LIN_ENGINE"
MODULE = "d11_lincheck"  # built from native/lincheck (pip install ./native/lincheck)

# Per part: None (not finished: the deadline, or another part failed first)
# or (linearizable, order, stuck, steps, cache entries, cache full).
PartOutcome = tuple[bool, list[int], int | None, int, int, bool] | None
RegisterCall = tuple[int, int, int, int, int, int, int]  # f, a, b, out, group, call, ret
KvCall = tuple[int, str, str | None, int, int, int]  # f, arg, out of a get, group, call, ret


class _Helper(Protocol):
    def check_register(
        self,
        parts: list[tuple[int, list[RegisterCall]]],
        cache_each: int,
        slice_steps: int,
        timeout_s: float | None = None,
    ) -> list[PartOutcome]: ...

    def check_kv(
        self,
        parts: list[tuple[str, list[KvCall]]],
        cache_each: int,
        slice_steps: int,
        timeout_s: float | None = None,
    ) -> list[PartOutcome]: ...


class EngineError(Exception):
    """D11_LIN_ENGINE names an engine that cannot run here."""


def helper() -> _Helper | None:
    """The compiled module, or None if it is not installed."""
    try:
        return cast(_Helper, importlib.import_module(MODULE))
    except ImportError:
        return None


def wanted() -> str:
    """The engine D11_LIN_ENGINE asks for: "python", "native" or "auto"."""
    value = os.environ.get(ENGINE_VAR, "").strip().lower() or "auto"
    if value not in ("python", "native", "auto"):
        raise EngineError(f"{ENGINE_VAR}={value!r}: use python, native or auto")
    return value


def knows(model: Model) -> bool:
    """Whether the helper has this model's semantics (its exact class: a
    subclass may change them)."""
    return type(model) in (RegisterModel, CasRegisterModel, EtcdModel, KvModel)


def search_parts(
    model: Model,
    parts: Sequence[tuple[Hashable, Sequence[Call], object]],
    cache_each: int,
    slice_steps: int,
    timeout_s: float | None,
) -> list[PartOutcome] | None:
    """Search the parts (key, calls, initial state) with the helper, round
    robin as `check_calls` does; None when the Python search must run (the
    helper is not installed, or does not know the model or a value)."""
    choice = wanted()
    if choice == "python" or not knows(model):
        return None
    mod = helper()
    if mod is None:
        if choice == "native":
            raise EngineError(
                f"{ENGINE_VAR}=native but {MODULE} is not installed "
                "(.venv/bin/pip install ./native/lincheck)"
            )
        return None
    try:
        if isinstance(model, KvModel):
            return mod.check_kv(
                [(_str(init), _kv_calls(calls)) for _, calls, init in parts],
                cache_each,
                slice_steps,
                timeout_s,
            )
        values: dict[object, int] = {}
        groups: dict[tuple[object, object], int] = {}
        encoded = [
            (_intern(values, init), _register_calls(calls, values, groups))
            for _, calls, init in parts
        ]
        return mod.check_register(encoded, cache_each, slice_steps, timeout_s)
    except _Foreign:
        return None  # a value the helper cannot hold: the Python search decides


class _Foreign(Exception):
    """A value outside what the helper encodes (unhashable, not a string)."""


def _intern(values: dict[object, int], v: object) -> int:
    """A value's number: equal values (by Python's ==, as the model compares)
    get equal numbers."""
    try:
        return values.setdefault(v, len(values))
    except TypeError:
        raise _Foreign from None


def _register_calls(
    calls: Sequence[Call], values: dict[object, int], groups: dict[tuple[object, object], int]
) -> list[RegisterCall]:
    out: list[RegisterCall] = []
    for c in calls:
        f, arg = c.input
        try:
            g = groups.setdefault((c.input, c.output), len(groups))
        except TypeError:
            raise _Foreign from None
        ret = -1 if c.ret is None else c.ret
        if f == READ:
            got = -1 if c.output is UNKNOWN else _intern(values, c.output)
            out.append((0, 0, 0, got, g, c.call, ret))
        elif f == WRITE:
            out.append((1, _intern(values, arg), 0, 0, g, c.call, ret))
        elif f == CAS:
            old, new = arg
            if c.output is UNKNOWN:
                res = -1
            elif c.output is True or c.output is False:
                res = int(c.output)
            else:
                raise _Foreign
            out.append((2, _intern(values, old), _intern(values, new), res, g, c.call, ret))
        else:
            raise _Foreign
    return out


def _kv_calls(calls: Sequence[Call]) -> list[KvCall]:
    out: list[KvCall] = []
    groups: dict[tuple[object, object], int] = {}
    for c in calls:
        f, _, arg = c.input
        try:
            g = groups.setdefault((c.input, c.output), len(groups))
        except TypeError:
            raise _Foreign from None
        ret = -1 if c.ret is None else c.ret
        if f == GET:
            got = None if c.output is UNKNOWN else _str(c.output)
            out.append((0, "", got, g, c.call, ret))
        else:
            out.append((1 if f == PUT else 2, _str(arg), None, g, c.call, ret))
    return out


def _str(v: object) -> str:
    if v.__class__ is not str:
        raise _Foreign
    return cast(str, v)
