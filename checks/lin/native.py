"""The compiled search (native/lincheck: Rust through PyO3), where it is installed.

`checks/lin/search.py` is the reference, the one the book quotes; the
compiled helper is the same search step for step (same reductions, same
order of moves, same step and cache counts), for the models whose `step` it
knows: the register family (register, cas-register, etcd), kv and ledger. On a
small history most of the Python search's time is per-call overhead (the
tables, the closures); the helper takes one history's parts in bulk as plain
tuples, converted once here, and gives back each part's verdict, longest
linearization and stuck call, so the report is built exactly as before.
A kv history it reads from the operations, splits and searches in one call,
which answers with the verdict's figures; the parts, their results and
their calls become Python objects only when something reads them
(`LazyList`): on a small history, building them was most of the check.

Which engine runs: `D11_LIN_ENGINE=python` forces the reference,
`D11_LIN_ENGINE=native` requires the helper (an error if it is not
installed); unset (or `auto`), the helper runs when it is importable and
knows the model. Any other model always runs the Python search.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Hashable, Iterator, Sequence
from typing import Protocol, TypeVar, cast, overload

from checks.history import Operation
from checks.lin.model import UNKNOWN, Call, Model
from checks.lin.models.accounts import LedgerModel
from checks.lin.models.kv import KvModel
from checks.lin.models.register import (
    CasRegisterModel,
    EtcdModel,
    RegisterModel,
)

ENGINE_VAR = "D11_LIN_ENGINE"
MODULE = "d11_lincheck"  # built from native/lincheck (pip install ./native/lincheck)

# Per part: None (not finished: the deadline, or another part failed first)
# or (linearizable, order, stuck, steps, cache entries, cache full).
PartOutcome = tuple[bool, list[int], int | None, int, int, bool] | None


class KvParts(Protocol):
    """A kv history as the helper split and searched it (lib.rs `KvParts`):
    each part's key, size and outcome, and its `Call`s, built when asked for."""

    def __len__(self) -> int: ...

    def parts(self) -> list[tuple[str, int, PartOutcome]]: ...

    def calls(self, part: int) -> list[Call]: ...


# What `KvPrepared.check` gives back at once: the calls left out; the failing
# part, if one failed, as (its position, key, number of calls, outcome);
# whether every part finished; steps, cache entries and whether a cache was
# full, over the finished parts; and the parts themselves, read on demand.
NativeCheck = tuple[
    int, tuple[int, str, int, PartOutcome] | None, bool, tuple[int, int, bool], KvParts
]

T = TypeVar("T")


class LazyList(Sequence[T]):
    """A list whose length is known at once and whose items are built on
    first use (`_build`), once: the helper's parts and their calls, which a
    verdict does not read and a report or a picture does."""

    __slots__ = ("_items", "_n")

    def __init__(self, n: int) -> None:
        self._n = n
        self._items: list[T] | None = None

    def _build(self) -> list[T]:
        raise NotImplementedError

    def built(self) -> list[T]:
        """The items, built once."""
        if self._items is None:
            self._items = self._build()
        return self._items

    def unbuilt(self) -> bool:
        """Whether no one has read them yet (none built)."""
        return self._items is None

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> T: ...
    @overload
    def __getitem__(self, i: slice) -> list[T]: ...
    def __getitem__(self, i: int | slice) -> T | list[T]:
        return self.built()[i]

    def __iter__(self) -> Iterator[T]:
        return iter(self.built())

    def __eq__(self, other: object) -> bool:  # as a list's (so, as one, unhashable)
        if isinstance(other, LazyList):
            other = other.built()
        return self.built() == other

    def __repr__(self) -> str:
        return repr(self.built())


class LazyCalls(LazyList[Call]):
    """A part's calls as the helper split them, built on first use.

    A verdict needs none of them (the helper searched its own rows); a report
    or a picture of a failure reads them, and then they are the same `Call`s
    checker.py's `split` builds. Their number is known without building them.
    """

    __slots__ = ("_part", "_split")

    def __init__(self, split: KvParts, part: int, n: int) -> None:
        # LazyList's fields set here, not through super(): on a small
        # history the check's few Python calls are a good part of its time
        self._n, self._items = n, None
        self._split, self._part = split, part

    def _build(self) -> list[Call]:
        return self._split.calls(self._part)


class _Helper(Protocol):
    """The compiled module's functions (native/lincheck/src/lib.rs).

    `check_register` and `check_kv` take the parts as (initial state, the
    part's calls), read the calls themselves, and raise TypeError for a value
    they cannot hold. `prepare_kv_ops` takes a kv history's operations and
    does checker.py's `prepare` (None: not the usual shape); its `check`
    splits and searches, and gives back the parts' calls to build on demand.
    """

    def check_register(
        self,
        parts: list[tuple[object, list[Call]]],
        values: dict[object, int],
        unknown: object,
        cache_each: int,
        slice_steps: int,
        timeout_s: float | None = None,
    ) -> list[PartOutcome]: ...

    def check_kv(
        self,
        parts: list[tuple[str, list[Call]]],
        unknown: object,
        cache_each: int,
        slice_steps: int,
        timeout_s: float | None = None,
    ) -> list[PartOutcome]: ...

    def check_ledger(
        self,
        parts: list[tuple[tuple[tuple[str, int], ...], list[Call]]],
        values: dict[object, int],
        unknown: object,
        overdraft: bool,
        cache_each: int,
        slice_steps: int,
        timeout_s: float | None = None,
    ) -> list[PartOutcome]: ...

    def prepare_kv_ops(
        self, ops: list[Operation], call_type: type[Call], unknown: object
    ) -> KvPrepared | None: ...


class KvPrepared(Protocol):
    """A kv history read by the helper (lib.rs `KvPrepared`), ready to search once."""

    def check(
        self, cache_max: int, slice_steps: int, timeout_s: float | None = None
    ) -> NativeCheck: ...


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
    return type(model) in (RegisterModel, CasRegisterModel, EtcdModel, KvModel, LedgerModel)


def _engine_for(model: Model) -> _Helper | None:
    """The helper, when it is to search this model (D11_LIN_ENGINE, installed, knows it)."""
    choice = wanted()
    if choice == "python" or not knows(model):
        return None
    mod = helper()
    if mod is None and choice == "native":
        raise EngineError(
            f"{ENGINE_VAR}=native but {MODULE} is not installed "
            "(.venv/bin/pip install ./native/lincheck)"
        )
    return mod


def prepare_ops(model: Model, ops: Sequence[Operation]) -> KvPrepared | None:
    """A kv history from its operations, read by the helper: checker.py's
    `prepare`, for its `check` (which splits, as `split`: the same
    calls, ids and parts). On a small history `prepare` and `split`, a few
    Python calls per operation, were most of the time; reading is kept apart
    from the search so that a benchmark can time them apart, as Porcupine's
    does (its parser builds the model's inputs, untimed). None when
    checker.py must do it: another model, no helper, or an operation not of
    the usual shape (a `key` field holding a string; the Python code gives
    the errors)."""
    if type(model) is not KvModel:
        return None
    mod = _engine_for(model)
    if mod is None:
        return None
    listed = ops if isinstance(ops, list) else list(ops)
    try:
        return mod.prepare_kv_ops(listed, Call, UNKNOWN)
    except TypeError:
        return None  # a field of a type it does not read: the Python code decides


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
    mod = _engine_for(model)
    if mod is None:
        return None
    try:
        if isinstance(model, KvModel):
            kv_parts = [(init, list(calls)) for _, calls, init in parts if isinstance(init, str)]
            if len(kv_parts) != len(parts):
                return None  # an initial state that is not a string
            return mod.check_kv(kv_parts, UNKNOWN, cache_each, slice_steps, timeout_s)
        if isinstance(model, LedgerModel):
            books = [(init, list(calls)) for _, calls, init in parts if isinstance(init, tuple)]
            if len(books) != len(parts):
                return None  # an initial state that is not the model's balances
            return mod.check_ledger(
                books, {}, UNKNOWN, model.overdraft, cache_each, slice_steps, timeout_s
            )
        reg_parts = [(init, list(calls)) for _, calls, init in parts]
        return mod.check_register(reg_parts, {}, UNKNOWN, cache_each, slice_steps, timeout_s)
    except TypeError:
        return None  # a value the helper cannot hold: the Python search decides
