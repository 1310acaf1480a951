"""Messages: frozen dataclasses with a registered, lossless codec.

The simulator passes message objects by reference (they are frozen), but the
process runtime sends them as bytes, and disks store values as bytes. One
codec serves both, so a message that round-trips here runs anywhere.

The wire form is JSON with a few tags for what JSON cannot say:
`{"$m": name, "f": [...]}` a registered message (its fields in order), `{"$t": [...]}` a tuple,
`{"$s": [...]}` a frozenset, `{"$b": base64}` bytes, `{"$d": [[k, v], ...]}`
a dict whose keys are not all plain strings.

Decoding believes nothing: bytes from a socket or a disk become a message
only if every field has the type its dataclass declares, exactly as Python
spells it (`bool` is no `int`, an `int` is no `float` unless the field says
`float`, nested tuples, dicts and messages checked through). The check is
compiled once per class, on the first decode of that class (see
`_compile_builder`), so a node pays a few attribute tests per field.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import json
import sys
import types
import typing
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar, dataclass_transform, overload

__all__ = [
    "CodecError",
    "Message",
    "check_field_types",
    "decode",
    "decode_value",
    "encode",
    "encode_value",
    "message",
    "registered_types",
]


class CodecError(ValueError):
    """A value cannot be encoded, or bytes are not a valid encoding."""


class Message:
    """Marker base of every registered message (see `@message`)."""

    __slots__ = ()


_REGISTRY: dict[str, type[Message]] = {}
# A message class's slot setters, in field order, when its __init__ does
# nothing else (see _use_fast_init): the decoder builds it without a call.
_SLOT_SETTERS: dict[type, tuple[Callable[[Any, Any], None], ...]] = {}
_FIELDS: dict[str, tuple[str, ...]] = {}

M = TypeVar("M", bound=type)


@overload
def message(cls: M, /) -> M: ...
@overload
def message(*, name: str | None = None) -> Callable[[M], M]: ...


# --8<-- [start:message]
@dataclass_transform(frozen_default=True)  # tells a type checker what wrap() makes of a class
def message(cls: Any = None, /, *, name: str | None = None) -> Any:
    """Make `cls` a frozen, slotted dataclass and register it under `name`.

    Usage: `@message` above a class with annotated fields, written
    `class Ping(Message)` so that a type checker knows it is a message (one
    written without the base gets it here, at run time only). The name
    defaults to the class name and must be unique across the whole program,
    since it is what travels on the wire.
    """

    def wrap(klass: type) -> type:
        if not issubclass(klass, Message):
            # Rebuild the class with Message among its bases, so isinstance works.
            ns = {k: v for k, v in klass.__dict__.items() if k not in ("__dict__", "__weakref__")}
            bases = (*(b for b in klass.__bases__ if b is not object), Message)
            klass = type(klass.__name__, bases, ns)
        data = dataclasses.dataclass(frozen=True, slots=True)(klass)
        _use_fast_init(data)
        tag = name or data.__name__
        if tag in _REGISTRY and _REGISTRY[tag].__qualname__ != data.__qualname__:
            raise CodecError(f"message name {tag!r} is registered twice")
        _REGISTRY[tag] = data
        _BUILDERS.pop(tag, None)  # compiled again, for this class, on its first decode
        _FIELDS[tag] = tuple(f.name for f in dataclasses.fields(data))
        data._wire_name = tag
        _ENCODERS[data] = _message_encoder(tag, _FIELDS[tag])
        return data

    return wrap(cls) if cls is not None else wrap


# --8<-- [end:message]


def _use_fast_init(data: type) -> None:
    """Give a plain message class a faster `__init__` (same signature).

    A frozen dataclass sets each field with `object.__setattr__`, looked up
    on every call; messages are built on every send, so this one calls each
    slot's setter directly instead (about 30% cheaper). Classes with
    anything unusual (`__post_init__`, `InitVar`, `default_factory`,
    `init=False`, keyword-only fields) keep the dataclass `__init__`.
    """
    fields = dataclasses.fields(data)
    unusual = hasattr(data, "__post_init__") or len(fields) != len(data.__dataclass_fields__)
    if unusual or any(
        not f.init or f.kw_only or f.default_factory is not dataclasses.MISSING for f in fields
    ):
        return
    namespace: dict[str, Any] = {}
    params, body = ["self"], []
    for f in fields:
        slot = next((k.__dict__[f.name] for k in data.__mro__ if f.name in k.__dict__), None)
        if slot is None or type(slot).__name__ != "member_descriptor":
            return
        namespace[f"_set_{f.name}"] = slot.__set__
        if f.default is dataclasses.MISSING:
            params.append(f.name)
        else:
            namespace[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        body.append(f"    _set_{f.name}(self, {f.name})")
    source = f"def __init__({', '.join(params)}):\n" + ("\n".join(body) or "    pass") + "\n"
    exec(source, namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{data.__qualname__}.__init__"
    init.__doc__ = data.__init__.__doc__
    data.__init__ = init  # type: ignore[misc]
    # The decoder sets the same slots itself (one call fewer per message decoded).
    _SLOT_SETTERS[data] = tuple(namespace[f"_set_{f.name}"] for f in fields)


def registered_types() -> dict[str, type[Message]]:
    """A copy of the registry: wire name -> message class."""
    return dict(_REGISTRY)


# What the encoder passes through as it is. Not float: a float is checked to be
# finite (`_encode_float`), since the JSON writer (orjson) would write NaN as null.
# Subclasses of str and int (StrEnum and IntEnum result codes) are added on
# their first value (`_to_json`): a ledger's results, every one remembered in
# a replica's dedup chunks, are tuples of them.
_PLAIN: set[type] = {str, int, bool, type(None)}
_SCALARS = (bool, int, float, str)


def _to_json(value: Any) -> Any:
    """Turn a codec value into plain JSON data, tagging what JSON cannot say.

    Dispatch is on the exact type first (the hot path: one dict lookup per
    value); subclasses such as StrEnum fall back to the isinstance chain.
    """
    kind = type(value)
    if kind in _PLAIN:
        return value
    encoder = _ENCODERS.get(kind)
    if encoder is not None:
        return encoder(value)
    if isinstance(value, Message):
        raise CodecError(f"{kind.__name__} is not a registered message")
    if isinstance(value, _SCALARS):
        if not isinstance(value, float):
            _PLAIN.add(kind)  # its next values pass without a call
        return value  # an enum of int or str travels as its plain value
    for base, encoder in _ENCODERS.items():
        if isinstance(value, base):
            return encoder(value)
    raise CodecError(f"cannot encode a value of type {kind.__name__}: {value!r:.80}")


def _message_encoder(tag: str, names: tuple[str, ...]) -> Callable[[Any], dict[str, Any]]:
    """The encoder of one message class: `{"$m": tag, "f": [each field, encoded]}`.

    Messages are encoded on every send and every disk write, and most of
    their fields are plain ints and strings: reading each field by name in a
    generated function, and passing plain values through without a call,
    makes encoding about twice as fast as a loop over the field names.
    """
    reads = "".join(f"    f{i} = value.{name}\n" for i, name in enumerate(names))
    items = ", ".join(
        f"f{i} if f{i}.__class__ in _PLAIN else _to_json(f{i})" for i in range(len(names))
    )
    source = f"def encode(value):\n{reads}    return {{'$m': _TAG, 'f': [{items}]}}\n"
    namespace: dict[str, Any] = {"_TAG": tag, "_PLAIN": _PLAIN, "_to_json": _to_json}
    exec(source, namespace)  # the source is built from field names only
    encoder: Callable[[Any], dict[str, Any]] = namespace["encode"]
    encoder.__qualname__ = f"_message_encoder.<{tag}>"
    return encoder


def _encode_set(value: frozenset[Any] | set[Any]) -> dict[str, Any]:
    items = [_to_json(v) for v in value]
    items.sort(key=lambda item: json.dumps(item, sort_keys=True))  # one set, one encoding
    return {"$s": items}


def _encode_dict(value: dict[Any, Any]) -> dict[str, Any]:
    if all(type(k) is str and not k.startswith("$") for k in value):
        return {k: _to_json(v) for k, v in value.items()}
    return {"$d": [[_to_json(k), _to_json(v)] for k, v in value.items()]}


def _encode_float(value: float) -> float:
    if value - value != 0.0:  # inf - inf and nan - nan are nan: not finite
        raise CodecError(f"Out of range float values are not JSON compliant: {value!r}")
    return value


_ENCODERS: dict[type, Any] = {
    float: _encode_float,
    # Plain items (most of them: ids, amounts, names) pass without a call.
    list: lambda v: [x if x.__class__ in _PLAIN else _to_json(x) for x in v],
    tuple: lambda v: {"$t": [x if x.__class__ in _PLAIN else _to_json(x) for x in v]},
    frozenset: _encode_set,
    set: _encode_set,
    bytes: lambda v: {"$b": base64.b64encode(v).decode("ascii")},
    bytearray: lambda v: {"$b": base64.b64encode(bytes(v)).decode("ascii")},
    dict: _encode_dict,
}


def _from_tagged(data: dict[str, Any]) -> Any:
    """json.loads' object_hook: called for every JSON object, innermost first.

    Decoding inside the C parser's callback means lists and plain values are
    never walked again in Python: only objects (tags) come through here.
    """
    if len(data) == 1:
        ((tag, inner),) = data.items()
        if tag == "$t":
            return tuple(_expect_list(inner, "$t"))
        if tag == "$s":
            return frozenset(_expect_list(inner, "$s"))
        if tag == "$b":
            try:
                return base64.b64decode(inner, validate=True)
            except (TypeError, ValueError) as exc:
                raise CodecError(f"bad base64 in $b: {exc}") from None
        if tag == "$d":
            pairs = _expect_list(inner, "$d")
            if not all(type(p) is list and len(p) == 2 for p in pairs):
                raise CodecError("$d must hold [key, value] pairs")
            return dict(pairs)
    if "$m" in data:
        tag = data["$m"]
        build = _BUILDERS.get(tag) if type(tag) is str else None
        if build is None:
            build = _builder_of(tag)
        values = data.get("f")
        if len(data) != 2 or type(values) is not list:
            raise CodecError(
                f"message {tag!r} needs exactly the fields ({', '.join(_FIELDS[tag])})"
            )
        return build(values)  # checks every field's type, then builds the message
    if any(k.startswith("$") for k in data):
        raise CodecError(f"unknown tag in {sorted(data)!r:.80}")
    return data


# --8<-- [end:codec-decode]# --8<-- [end:codec-decode]


_BUILDERS: dict[str, Callable[[list[Any]], Message]] = {}
# Per message tag, its fast decoder's (`_from_json`) builder: the fields
# converted from orjson's parse by their types, then built; set with `_BUILDERS`.
_JSON_BUILDERS: dict[str, Callable[[list[object]], Message]] = {}
_FLOAT_MAX = sys.float_info.max
# Exact classes: a subclass (bool of int, an IntEnum) does not pass for these.
_EXACT: dict[type, str] = {
    int: "int",
    str: "str",
    bool: "bool",
    bytes: "bytes",
    tuple: "tuple",
    list: "list",
    dict: "dict",
    frozenset: "frozenset",
    set: "frozenset",  # a set travels as $s and comes back frozen
}


def _builder_of(tag: Any) -> Callable[[list[Any]], Message]:
    cls = _REGISTRY.get(tag) if type(tag) is str else None
    if cls is None:
        raise CodecError(f"unknown message type {tag!r:.80}")
    build = _BUILDERS[tag] = _compile_builder(tag, cls)
    return build


def _compile_builder(tag: str, cls: type) -> Callable[[list[Any]], Message]:
    """The decoder of one message class: check each field's type, then build.

    For `class Incr: req_id: int; amount: int` it is, in effect:

        def build(values):
            if len(values) != 2: wrong_fields(values)
            f0, f1 = values
            if not (f0.__class__ is int and f1.__class__ is int): wrong_types(values)
            return Incr(f0, f1)

    Generated from the resolved annotations (`_check`), so decoding stays one
    call per message and a few attribute tests per field.
    """
    names = _FIELDS[tag]
    namespace: dict[str, Any] = {"_cls": cls, "_FLOAT_MAX": _FLOAT_MAX, "_new": object.__new__}
    types_ = _field_types(cls, names)
    checks = [_check(t, f"f{i}", namespace, 1) for i, t in enumerate(types_)]
    namespace["_wrong_fields"] = lambda values: _wrong_fields(tag, names, values)
    namespace["_wrong_types"] = lambda values: _wrong_types(tag, names, checks, namespace, values)
    unpack = ", ".join(f"f{i}" for i in range(len(names)))
    test = " and ".join(f"({c})" for c in checks if c is not None)
    source = f"def build(values):\n    if len(values) != {len(names)}:\n"
    source += "        _wrong_fields(values)\n"
    if names:
        source += f"    {unpack}, = values\n"
    if test:
        source += f"    if not ({test}):\n        _wrong_types(values)\n"
    setters = _SLOT_SETTERS.get(cls)
    if setters is None:  # an __init__ of its own (__post_init__, ...): call it
        source += f"    return _cls({unpack})\n"
    else:  # what its __init__ would do, without the call
        source += "    obj = _new(_cls)\n"
        for i, setter in enumerate(setters):
            namespace[f"_s{i}"] = setter
            source += f"    _s{i}(obj, f{i})\n"
        source += "    return obj\n"
    exec(source, namespace)  # built from resolved annotations and field positions only
    build: Callable[[list[Any]], Message] = namespace["build"]
    build.__qualname__ = f"_compile_builder.<{tag}>"
    _JSON_BUILDERS[tag] = _compile_json_builder(tag, types_, build)
    return build


def _field_types(cls: type, names: tuple[str, ...]) -> list[Any]:
    try:
        hints = typing.get_type_hints(cls)
    except Exception as exc:  # a name the annotation uses is not importable from its module
        raise CodecError(f"cannot resolve the field types of {cls.__qualname__}: {exc}") from None
    return [hints[name] for name in names]


def _check(tp: Any, var: str, ns: dict[str, Any], depth: int) -> str | None:
    """A Python expression true when the value named `var` has type `tp`; None: any value.

    `ns` collects the constants the expression names; `depth` names the
    loop variables of nested collections apart.
    """
    if tp is Any or tp is object:
        return None
    if tp is None or tp is type(None):
        return f"{var} is None"
    if tp is float:
        # An int is a float where the annotation says float (PEP 484), and both
        # must be finite: 1e999 parses as inf, which no encoder ever writes.
        return (
            f"({var}.__class__ is float or {var}.__class__ is int)"
            f" and -_FLOAT_MAX <= {var} <= _FLOAT_MAX"
        )
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        key = f"_C{len(ns)}"
        ns[key] = frozenset((type(m.value), m.value) for m in tp)
        return f"({var}.__class__, {var}) in {key}"  # an enum travels as its plain value
    if tp in _EXACT:
        return f"{var}.__class__ is {_EXACT[tp]}"
    supertype = getattr(tp, "__supertype__", None)
    if supertype is not None:  # typing.NewType
        return _check(supertype, var, ns, depth)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        options = [_check(a, var, ns, depth) for a in args]
        return None if None in options else "(" + " or ".join(f"({o})" for o in options) + ")"
    if origin is typing.Literal:
        key = f"_C{len(ns)}"
        ns[key] = frozenset((type(a), a) for a in args)
        return f"({var}.__class__, {var}) in {key}"
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _each("tuple", args[0], var, ns, depth)
        if args == ((),):  # tuple[()]
            return f"{var}.__class__ is tuple and len({var}) == 0"
        parts = [f"{var}.__class__ is tuple", f"len({var}) == {len(args)}"]
        for i, arg in enumerate(args):
            part = _check(arg, f"{var}[{i}]", ns, depth)
            if part is not None:
                parts.append(f"({part})")
        return " and ".join(parts)
    if origin in (list, frozenset, set):
        return _each(_EXACT[origin], args[0] if args else Any, var, ns, depth)
    if origin is dict:
        key_tp, value_tp = args if args else (Any, Any)
        k, v = f"_k{depth}", f"_v{depth}"
        key_check = _check(key_tp, k, ns, depth + 1)
        value_check = _check(value_tp, v, ns, depth + 1)
        parts = [f"({c})" for c in (key_check, value_check) if c is not None]
        if not parts:
            return f"{var}.__class__ is dict"
        inner = " and ".join(parts)
        return f"{var}.__class__ is dict and all({inner} for {k}, {v} in {var}.items())"
    if isinstance(tp, type) and origin is None:
        key = f"_C{len(ns)}"
        ns[key] = tp
        return f"isinstance({var}, {key})"  # a message (already checked when it was built)
    raise CodecError(f"the codec cannot check a field of type {tp!r}")


def _each(kind: str, item_tp: Any, var: str, ns: dict[str, Any], depth: int) -> str:
    """`var` is a `kind` (tuple, list, frozenset) whose every item has type `item_tp`."""
    item = f"_x{depth}"
    inner = _check(item_tp, item, ns, depth + 1)
    if inner is None:
        return f"{var}.__class__ is {kind}"
    return f"{var}.__class__ is {kind} and all(({inner}) for {item} in {var})"


def _wrong_fields(tag: str, names: tuple[str, ...], values: list[Any]) -> None:
    raise CodecError(f"message {tag!r} needs exactly the fields ({', '.join(names)})")


def _wrong_types(
    tag: str,
    names: tuple[str, ...],
    checks: list[str | None],
    namespace: dict[str, Any],
    values: list[Any],
) -> None:
    """The slow path, for the error message only: which field is wrong."""
    for i, (name, check) in enumerate(zip(names, checks, strict=True)):
        if check is not None and not eval(check, namespace, {f"f{i}": values[i]}):
            raise CodecError(
                f"message {tag!r}: field {name} has the wrong type "
                f"({type(values[i]).__name__}: {values[i]!r:.60})"
            )
    raise CodecError(f"message {tag!r}: fields of the wrong type")  # pragma: no cover


def check_field_types(cls: type) -> None:
    """Compile the decoder of a registered message class now; CodecError if it cannot be.

    Decoders are compiled on first use; this finds, at test time, a field
    type the codec cannot check (the contract tests call it for every class).
    """
    tag = getattr(cls, "_wire_name", None)
    if tag is None or _REGISTRY.get(tag) is not cls:
        raise CodecError(f"{cls.__qualname__} is not a registered message")
    _BUILDERS[tag] = _compile_builder(tag, cls)


def _expect_list(data: Any, tag: str) -> list[Any]:
    if type(data) is not list:
        raise CodecError(f"{tag} must hold a list")
    return data


def _reject_constant(name: str) -> Any:
    raise CodecError(f"{name} is not a codec value")


# One encoder and one decoder for every call: json.dumps and json.loads with
# options build a new JSONEncoder or JSONDecoder (and its scanner) each time,
# a few microseconds a message (6% of decoding a 64-transfer Accept).
_DUMPS = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_DECODER = json.JSONDecoder(object_hook=_from_tagged, parse_constant=_reject_constant)
_LOADS = _DECODER.decode
# The decoder's C scanner, called directly for a document that starts at its
# first byte: `JSONDecoder.decode` around it is Python (two regex matches for
# whitespace, `raw_decode`), a fifth of decoding a small message. A document
# the scanner does not end exactly at the end of goes to `_LOADS`, which
# skips whitespace and words every error as before.
# (An instance attribute JSONDecoder sets in __init__, which typeshed does not declare.)
_SCAN: Callable[[str, int], tuple[object, int]] = vars(_DECODER)["scan_once"]


def _not_json(value: object) -> NoReturn:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# The C encoder JSONEncoder.encode builds afresh on every call, built once:
# the same bytes (compact separators, ASCII, no NaN) for a third less per
# message. No check for cycles: `_to_json` has built every container anew,
# and a value that contains itself never got this far (RecursionError).
_MAKE_C_ENCODER: Callable[..., Callable[[object, int], Sequence[str]]] | None = getattr(
    json.encoder, "c_make_encoder", None
)  # not in the type stubs; None where the C accelerator is missing
_C_ENCODER = (
    _MAKE_C_ENCODER(
        None, _not_json, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, False
    )
    if _MAKE_C_ENCODER is not None
    else None
)


try:
    import orjson

    _ORJSON_DUMPS: Callable[[object], bytes] | None = orjson.dumps
    _ORJSON_ERROR: type[Exception] = orjson.JSONEncodeError
    _ORJSON_LOADS: Callable[[bytes], object] | None = orjson.loads
except ImportError:  # optional: the standard encoder and decoder do the same, slower
    _ORJSON_DUMPS, _ORJSON_ERROR, _ORJSON_LOADS = None, TypeError, None


def _dumps(data: object) -> str:
    if _C_ENCODER is None or type(data) is str:  # a bare string: the C encoder wants a container
        return _DUMPS(data)
    return "".join(_C_ENCODER(data, 0))


def _write_json(data: object) -> bytes:
    """The JSON bytes of plain data: orjson's, where they are the standard encoder's.

    orjson writes the same compact JSON about ten times faster (a leader's
    Accept of 8 transfers: 20 us to 2 us, measured), and a replica encodes
    every message it sends. Where the two would differ, the standard encoder
    writes: text beyond ASCII or with DEL (which it escapes and orjson does not), and
    what orjson refuses (an integer beyond 64 bits, a lone surrogate). A
    float's exponent is the one difference left (1e+16 here, 1e16 there):
    the same number to every JSON reader. Non-finite floats never get here
    (`_encode_float`).
    """
    if _ORJSON_DUMPS is not None:
        try:
            raw = _ORJSON_DUMPS(data)
        except _ORJSON_ERROR:
            pass  # said by the standard encoder, or refused by it in its own words
        else:
            if raw.isascii() and b"\x7f" not in raw:  # the standard encoder escapes DEL
                return raw
    return _dumps(data).encode()


def encode_value(value: Any) -> bytes:
    """Encode any codec value (JSON-like, tuples, sets, bytes, messages)."""
    return _write_json(_to_json(value))


_OPENERS = (b"{", b"[")
# What orjson parses that the fast decoder passes on as it is. Not float:
# orjson reads an integer beyond 64 bits as a float, where the standard
# decoder keeps it an int; such a float sends the document to that decoder.
_JSON_LEAF = frozenset({str, int, bool, type(None)})
_INT64_LIMIT = float(1 << 63)


class _NotFast(Exception):
    """A document the fast decoder leaves to the standard one (see `decode_value`)."""


def _from_json(data: object) -> object:
    """What `_from_tagged` makes of a value, from orjson's parse of it, walked from the top.

    The walk for a value whose type is not declared (a field of type Any,
    a union). A message's fields are converted by their declared types
    (`_compile_json_builder`). Whatever this cannot build raises, and
    `decode_value` asks the standard decoder instead, which builds it or
    says what is wrong.
    """
    if type(data) is list:
        return [x if x.__class__ in _JSON_LEAF else _from_json(x) for x in data]
    if type(data) is float:
        if -_INT64_LIMIT < data < _INT64_LIMIT:
            return data
        raise _NotFast  # perhaps an integer of more than 64 bits
    if type(data) is not dict:
        raise _NotFast  # orjson makes nothing else; a leaf is not walked
    size = len(data)
    if size == 2 and "$m" in data:
        return _message_from_json(data)
    if size == 1 and "$t" in data:
        return tuple([x if x.__class__ in _JSON_LEAF else _from_json(x) for x in _items(data)])
    # Any other object: as the standard decoder's hook makes it, from its values.
    return _from_tagged(
        {k: v if v.__class__ in _JSON_LEAF else _from_json(v) for k, v in data.items()}
    )


def _message_from_json(data: object) -> Message:
    """A message from orjson's parse of `{"$m": tag, "f": [...]}` (see `_compile_json_builder`)."""
    if type(data) is not dict or len(data) != 2:
        raise _NotFast
    tag, values = data.get("$m"), data.get("f")
    if type(tag) is not str or type(values) is not list:
        raise _NotFast
    build = _JSON_BUILDERS.get(tag)
    if build is None:
        _builder_of(tag)  # compiles both builders, or raises: no such message
        build = _JSON_BUILDERS[tag]
    return build(values)


def _items(data: object) -> list[object]:
    """The items of a tuple's `{"$t": [...]}`."""
    if type(data) is dict and len(data) == 1:
        items = data.get("$t")
        if type(items) is list:
            return items
    raise _NotFast


def _items_of(data: object, count: int) -> list[object]:
    """The items of a tuple of `count` items."""
    items = _items(data)
    if len(items) != count:
        raise _NotFast
    return items


def _compile_json_builder(
    tag: str, types_: Sequence[object], build: Callable[[list[object]], Message]
) -> Callable[[list[object]], Message]:
    """The fast decoder of one message class: its fields as orjson parsed them, converted, built.

    For `Accept(ballot: tuple[int, str], ..., batch: tuple[tuple[str, Any], ...], ...)`:

        def from_json(values):
            values[0] = tuple(_items(values[0]))
            values[3] = tuple([(_t := _items_of(_x1, 2)) and (_t[0], _walk(_t[1]))
                               for _x1 in _items(values[3])])
            return build(values)

    A field of a flat type (`_flat`: a transfer's eleven ints) goes to the
    builder as parsed; the builder checks every field's type.
    """
    namespace: dict[str, object] = {
        "_build": build,
        "_items": _items,
        "_items_of": _items_of,
        "_walk": _from_json,
        "_message": _message_from_json,
        "_LEAF": _JSON_LEAF,
    }
    lines = [
        f"    values[{i}] = {expr}\n"
        for i, tp in enumerate(types_)
        if (expr := _convert(tp, f"values[{i}]", 1)) is not None
    ]
    source = "def from_json(values):\n" + "".join(lines) + "    return _build(values)\n"
    exec(source, namespace)  # built from resolved annotations and field positions only
    from_json = typing.cast("Callable[[list[object]], Message]", namespace["from_json"])
    from_json.__qualname__ = f"_compile_json_builder.<{tag}>"
    return from_json


def _convert(tp: object, var: str, depth: int) -> str | None:
    """A Python expression: the value of type `tp` made from its JSON in `var`; None: as parsed.

    Only the shape is followed (a tuple's tag, a message's fields); the
    builder checks the types of what comes out. What does not have the
    shape raises, and the standard decoder says what is wrong.
    """
    if _flat(tp):
        return None
    supertype = getattr(tp, "__supertype__", None)
    if supertype is not None:  # typing.NewType
        return _convert(supertype, var, depth)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = f"_x{depth}"
        inner = _convert(args[0], item, depth + 1)
        if inner is None:
            return f"tuple(_items({var}))"
        return f"tuple([{inner} for {item} in _items({var})])"
    if origin is tuple and args and args != ((),):
        items = f"_t{depth}"
        parts = [_convert(arg, f"{items}[{i}]", depth + 1) for i, arg in enumerate(args)]
        if all(part is None for part in parts):
            return f"tuple(_items_of({var}, {len(args)}))"
        made = ", ".join(part or f"{items}[{i}]" for i, part in enumerate(parts))
        # A tuple's items are a non-empty list, so `and` goes on to build it.
        return f"(({items} := _items_of({var}, {len(args)})) and ({made},))"
    if isinstance(tp, type) and issubclass(tp, Message):
        return f"_message({var})"
    # Anything else (Any, a union, a dict, bytes, a float): walked.
    return f"({var} if {var}.__class__ in _LEAF else _walk({var}))"


def _flat(tp: object) -> bool:
    """True when every value of type `tp` is a JSON int, string, bool or null."""
    if tp is None or tp in _FLAT_TYPES:
        return True
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return all(type(m.value) in _FLAT_TYPES for m in tp)
    supertype = getattr(tp, "__supertype__", None)
    if supertype is not None:  # typing.NewType
        return _flat(supertype)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        return all(_flat(a) for a in args)
    if origin is typing.Literal:
        return all(type(a) in _FLAT_TYPES for a in args)
    return False


_FLAT_TYPES = frozenset({int, str, bool, type(None)})


def decode_value(raw: bytes) -> Any:
    """Inverse of `encode_value`; raises `CodecError` on anything malformed.

    orjson parses, and `_from_json` builds, about twice as fast as the
    standard decoder with its hook. Anything either refuses (a malformed
    document, a wrong field, an integer beyond 64 bits, a lone surrogate)
    goes to the standard decoder, which is the one that decides: the same
    values, the same errors, with or without orjson.
    """
    if _ORJSON_LOADS is not None and type(raw) is bytes:
        try:
            data = _ORJSON_LOADS(raw)
            return data if data.__class__ in _JSON_LEAF else _from_json(data)
        except Exception:
            pass  # decided again below, in the standard decoder's words
    try:
        if type(raw) is bytes:  # what json.loads does with bytes, then its decoder
            # An object or array whose second byte is no zero is UTF-8 (what
            # json.detect_encoding would say, without its Python-level tests).
            fast = raw[:1] in _OPENERS and raw[1:2] != b"\x00"
            if fast:
                text = raw.decode("utf-8", "surrogatepass")
                try:
                    value, end = _SCAN(text, 0)
                except StopIteration:
                    value, end = None, -1  # not a document: _LOADS says why
                if end == len(text):
                    return value
                return _LOADS(text)
            return _LOADS(raw.decode(json.detect_encoding(raw), "surrogatepass"))
        return json.loads(raw, object_hook=_from_tagged, parse_constant=_reject_constant)
    except CodecError:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CodecError(f"not valid JSON: {exc}") from None
    except (TypeError, ValueError) as exc:
        # An unhashable key in a set or dict, an integer of more digits than
        # Python converts (4,300), a message's own __post_init__ refusing it.
        raise CodecError(f"{type(exc).__name__}: {exc}"[:200]) from None
    except RecursionError:
        raise CodecError("value nested too deeply") from None


# Encode once: the bytes of the messages most recently encoded or decoded, by
# object identity (messages are frozen, so an object's bytes never change).
# A Paxos leader sends an Accept and stores the very same object as its vote;
# a follower stores the Accept it decoded. The disk and the wire find the
# bytes here instead of encoding a batch of requests a second time. Each
# entry holds its message, so an id is not reused while it is here. Bounded
# and FIFO; OrderedDict's set and popitem are single calls (int keys: no
# Python code runs inside), safe beside a disk's writer thread. Decoded
# bytes may differ from what `encode` would write (a peer's spacing, a set's
# order), yet decode to an equal message: good for a wire or a disk record,
# which are decoded again, never compared as bytes. Only messages of
# KNOWN_BYTES_MIN or more are kept: a small one (a client's request, its
# answer, a vote) is encoded again faster than it is kept, and most are
# never encoded again (measured, keeping every message was 3% of a Paxos
# leader's CPU at one transfer a request).
_KNOWN: OrderedDict[int, tuple[Message, bytes]] = OrderedDict()
KNOWN_MAX = 512
KNOWN_BYTES_MIN = 256


def _remember(msg: Message, raw: bytes) -> None:
    if len(raw) < KNOWN_BYTES_MIN:
        return
    _KNOWN[id(msg)] = (msg, raw)
    if len(_KNOWN) > KNOWN_MAX:
        _KNOWN.popitem(last=False)


def encode(msg: Message) -> bytes:
    """Encode one registered message to bytes (once: see `_KNOWN`)."""
    entry = _KNOWN.get(id(msg))
    if entry is not None and entry[0] is msg:
        return entry[1]
    if not isinstance(msg, Message):
        raise CodecError(f"only registered messages go on the wire, not {type(msg).__name__}")
    raw = encode_value(msg)
    _remember(msg, raw)
    return raw


def decode(raw: bytes) -> Message:
    """Decode bytes made by `encode`; the result is always a registered message."""
    value = decode_value(raw)
    if not isinstance(value, Message):
        raise CodecError("bytes do not hold a message")
    if len(raw) >= KNOWN_BYTES_MIN:
        _remember(value, bytes(raw))
    return value
