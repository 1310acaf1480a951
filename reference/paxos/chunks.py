"""Snapshots on disk: sealed parts stored once, by content, and referenced.

A state machine whose history only grows (the ledger's transfers, the dedup
table's results) seals it in immutable chunks, each encoded once to `bytes`
(see `Ledger` and `ReplicatedState`). A snapshot holds those bytes. Writing
the whole snapshot at every compaction would write, and checksum and copy,
the whole history every few dozen slots; so the replica stores each large
`bytes` value of a snapshot once, under a key named by its content
(`paxos/chunk/<digest>`), and the snapshot record holds a `ChunkRef` in its
place. A compaction then writes the chunks sealed since the last one, the
small rest of the state, and drops the chunks no snapshot names any more.

This is how a checkpoint of an LSM tree works (TigerBeetle's, for one): the
immutable tables are already on disk, and a checkpoint names them.
"""

from __future__ import annotations

import hashlib
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping
from itertools import islice
from operator import is_
from typing import Any

from reference.codec import Message, message, registered_types
from reference.disk.base import Disk

KEY_CHUNK = "paxos/chunk/"  # + content digest: one sealed part of a snapshot
CHUNK_MIN_BYTES = 4096  # smaller bytes values stay inline: a key costs more than they do


@message(name="paxos.ChunkRef")
class ChunkRef(Message):
    """In a stored snapshot, in place of a large bytes value: the key holding it."""

    key: str


@message(name="paxos.Chunked")
class Chunked(Message):
    """In a stored snapshot, in place of a message one of whose fields now holds a
    `ChunkRef`: the message's wire name and its fields, rebuilt by `load`.

    A field's type says what it holds (`LedgerSnapshot.segments` is a tuple of
    bytes), and the codec checks every field against its type as it decodes:
    the message itself, a ref in its bytes' place, was written to a file disk
    and could not be read back, so a replica restarted after its ledger had
    sealed a segment of 4 KiB failed (`d11 test ch4 … --backend process`). The
    simulator's disk keeps objects, never decoding them, and never showed it.
    """

    tag: str
    fields: tuple[object, ...]


class ChunkStore:
    """The chunks one replica has on disk, and the key of each chunk it holds in memory.

    Keys are found by identity first: a sealed chunk is the same `bytes`
    object from one snapshot to the next, so naming it again costs a dict
    lookup, not a hash of the whole history. So are the parts found to hold
    no chunk: the unsealed tail of a dedup table is mostly the same entries
    from one snapshot to the next, and looking inside each again cost more
    than the rest of a compaction.
    """

    def __init__(self) -> None:
        self.keys_by_id: dict[int, tuple[bytes, str]] = {}  # id(chunk) -> (chunk, its key)
        self.stored: set[str] = set()  # chunk keys on disk
        self._referenced: set[str] = set()  # by the snapshot last stored or loaded
        self._chunk_free: dict[int, tuple[object, ...]] = {}  # id -> tuple, in the last snapshot
        # Long tuples in the last snapshot found to hold no chunk, by their first item's id.
        self._chunk_free_runs: dict[int, tuple[object, ...]] = {}

    def clone(self) -> ChunkStore:
        other = ChunkStore()
        other.keys_by_id, other.stored = dict(self.keys_by_id), set(self.stored)
        other._referenced = set(self._referenced)
        other._chunk_free = dict(self._chunk_free)
        other._chunk_free_runs = dict(self._chunk_free_runs)
        return other

    # --8<-- [start:chunk-store]
    def store(self, disk: Disk, value: Any) -> Any:
        """`value` with every large bytes value put on disk (if new) and referenced.

        Returns the value to write as the snapshot record. The caller syncs,
        then calls `forget_unreferenced`.
        """
        referenced: set[str] = set()

        def ref(chunk: bytes) -> ChunkRef:
            known = self.keys_by_id.get(id(chunk))
            if known is not None and known[0] is chunk:
                key = known[1]
            else:
                key = KEY_CHUNK + hashlib.sha256(chunk).hexdigest()[:32]
                self.keys_by_id[id(chunk)] = (chunk, key)
            if key not in self.stored:
                disk.put(key, chunk)
                self.stored.add(key)
            referenced.add(key)
            return ChunkRef(key)

        chunk_free: dict[int, tuple[object, ...]] = {}
        runs: dict[int, tuple[object, ...]] = {}
        memo = (self._chunk_free, chunk_free, self._chunk_free_runs, runs)
        stored = _map_chunks(value, ref, memo=memo)
        self._referenced, self._chunk_free, self._chunk_free_runs = referenced, chunk_free, runs
        return stored

    # --8<-- [end:chunk-store]

    def forget_unreferenced(self, disk: Disk) -> None:
        """After the snapshot from `store` is durable: delete the chunks it no longer names."""
        for key in sorted(self.stored - self._referenced):
            disk.delete(key)
        self.stored = set(self._referenced)
        self.keys_by_id = {i: (c, k) for i, (c, k) in self.keys_by_id.items() if k in self.stored}

    def load(self, disk: Disk, stored: Any, *, recovering: bool = False) -> Any:
        """A snapshot record read back: every `ChunkRef` replaced by its bytes.

        `recovering`: the replica restores its state from this very value, so
        its chunks are the objects the next compaction will name again.
        """

        def resolve(found: ChunkRef) -> bytes:
            chunk = disk.get(found.key)
            if not isinstance(chunk, bytes):
                raise ValueError(f"snapshot names chunk {found.key}, which is not on disk")
            if recovering:
                self.keys_by_id[id(chunk)] = (chunk, found.key)
                self._referenced.add(found.key)
            return chunk

        if recovering:
            self.stored = set(disk.keys(KEY_CHUNK))  # older ones too, if a crash left them
            self._referenced = set()
        return _map_chunks(stored, resolve, refs=True)


def _map_chunks(
    value: Any, fn: Callable[[Any], Any], refs: bool = False, memo: _Memo | None = None
) -> Any:
    """`value` rebuilt with `fn` applied to each large bytes (or, with `refs`,
    each ChunkRef); untouched parts are returned as the same objects.

    `memo` (last, now, runs last, runs now): tuples known to hold no large
    bytes, by id, from the last walk (skipped, with no look inside) and found
    in this one; then the long ones among them, by their first item's id. A
    tuple cannot change; were a list inside one to gain a large bytes value
    later, that value would merely be stored inline (a load reads either form).
    """
    kind = type(value)
    if refs and kind is ChunkRef:
        return fn(value)
    if not refs and kind is bytes and len(value) >= CHUNK_MIN_BYTES:
        return fn(value)
    if kind is tuple or kind is list:
        inert = _INERT
        if inert.issuperset(map(type, value)):
            return value  # the bulk of a snapshot (accounts, transfers): looked at in C
        items: list[Any] | None = None  # a copy, made at the first item that changes
        last, now, runs_last, runs_now = _NO_MEMO if memo is None else memo
        start = 0
        if kind is tuple and len(value) >= _RUN_MIN:
            # A long tuple that begins with one found chunk-free last time (a
            # dedup table's tail: the same entries, and some new ones after
            # them) is walked from where that one ended: a thousand entries
            # looked up one by one in every snapshot were most of the walk.
            run = runs_last.get(id(value[0]))  # (it holds its first item: ids unique)
            if run is not None and len(run) <= len(value) and all(map(is_, run, value)):
                start = len(run)
        for index, item in enumerate(islice(value, start, None), start):
            item_kind = type(item)
            if item_kind in inert:
                continue  # a leaf: no call
            if item_kind is tuple:
                # The memo first: most tuples of a long one (a dedup table's
                # entries) were here last time, and a lookup is cheaper than
                # looking at their items' types.
                if id(item) in last:  # (it holds them: ids unique)
                    now[id(item)] = item  # chunk-free last time, and immutable
                    continue
                if inert.issuperset(map(type, item)) or _leaves_two_deep(item):
                    continue  # a small tuple of leaves (or of tuples of them): no call either
            new = _map_chunks(item, fn, refs, memo)
            if new is item and item_kind is tuple and memo is not None:
                now[id(item)] = item
            elif new is not item:
                items = list(value) if items is None else items
                items[index] = new
        if items is None and kind is tuple and memo is not None and len(value) >= _RUN_MIN:
            runs_now[id(value[0])] = value
        return value if items is None else kind(items)
    if refs and kind is Chunked:
        resolved = [_map_chunks(field, fn, refs, memo) for field in value.fields]
        return registered_types()[value.tag](*resolved)
    if isinstance(value, Message):
        if _is_flat(kind):
            if kind is not ChunkRef:  # (flat, but what a load looks for)
                _INERT.add(kind)
            return value
        names = value.__dataclass_fields__  # type: ignore[attr-defined]
        fields = [getattr(value, name) for name in names]
        mapped = [_map_chunks(field, fn, refs, memo) for field in fields]
        if all(new is old for new, old in zip(mapped, fields, strict=True)):
            return value
        if refs:
            return kind(*mapped)  # (a message stored whole: a ref in a field typed for it)
        tag = getattr(kind, "_wire_name", None)
        assert isinstance(tag, str), kind  # every Message class is registered by @message
        return Chunked(tag, tuple(mapped))
    if kind is not bytes and kind is not ChunkRef:
        _INERT.add(kind)  # (an enum, a dict: never looked inside)
    return value


def _leaves_two_deep(item: tuple[object, ...]) -> bool:
    """Is each part of `item` a leaf (in `_INERT`) or a tuple of leaves?

    A dedup entry, (request id, (result, ...)), is: a snapshot meets a
    hundred new ones, and this look costs less than a call of `_map_chunks`.
    """
    inert = _INERT
    for part in item:
        kind = type(part)
        if kind in inert:
            continue
        if kind is not tuple:  # (exactly: a tuple's subclass, a message, is no leaf here)
            return False
        if not inert.issuperset(map(type, typing.cast(tuple[object, ...], part))):
            return False
    return True


_Found = dict[int, tuple[object, ...]]
_Memo = tuple[_Found, _Found, _Found, _Found]
_NO_MEMO: _Memo = ({}, {}, {}, {})  # a walk without one (its `last` stays empty)
_RUN_MIN = 64  # a tuple this long is remembered as a run too
# Types whose values hold no chunk, nor anything the walk looks inside: the
# scalars, then each flat message class and other leaf type (an enum result)
# as the walk first meets it. Checked per item, so that a snapshot's
# thousands of accounts, transfers and dedup entries cost no call each.
_INERT: set[type] = {str, int, float, bool, type(None)}
_SCALARS = frozenset({"int", "str", "float", "bool", "None", "NodeId"})
_FLAT: dict[type, bool] = {}


def _is_flat(kind: type) -> bool:
    """Does every field of this message class hold only scalars, tuples of them or
    messages of flat classes (by its annotation)?

    A snapshot holds thousands of accounts and transfers: looking inside each
    one for bytes it cannot hold would cost more than the rest of the walk. So
    does a broker's state: its commit log's messages each hold a flat payload
    and a flat trace context, and its trace topic's entries a tuple of
    (name, scalar) pairs; walking their fields at every compaction was a tenth
    of a rehearsal level's CPU, growing with the run.
    """
    flat = _FLAT.get(kind)
    if flat is None:
        _FLAT[kind] = False  # (while its fields are looked at: a class naming itself)
        names = vars(sys.modules[kind.__module__])
        fields = kind.__dataclass_fields__.values()  # type: ignore[attr-defined]
        flat = _FLAT[kind] = all(
            _flat_name(name, names) for f in fields for name in _NAME.findall(str(f.type))
        )
    return flat


_NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9.]*")  # the names in an annotation
_SCALAR_TYPES = (str, int, float, bool, type(None))


def _flat_name(name: str, names: Mapping[str, object]) -> bool:
    """A name in a field's annotation, looked up in the module that defines the
    message: a scalar, `tuple` (its items are named too), an alias of a union of
    scalars, or a flat message class. Anything else (bytes, a list, a dict, a
    class it does not know) is not flat."""
    if name in _SCALARS or name == "tuple":
        return True
    named = names.get(name)
    if isinstance(named, types.UnionType):
        return all(arg in _SCALAR_TYPES for arg in typing.get_args(named))
    return (
        isinstance(named, type)
        and issubclass(named, Message)
        and named is not ChunkRef  # (what a load looks for)
        and _is_flat(named)
    )
