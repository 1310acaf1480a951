"""Messages: frozen dataclasses with a registered, lossless codec.

The simulator passes message objects by reference (they are frozen), but the
process runtime sends them as bytes, and disks store values as bytes. One
codec serves both, so a message that round-trips here runs anywhere.

The wire form is JSON with a few tags for what JSON cannot say:
`{"$m": name, "f": {...}}` a registered message, `{"$t": [...]}` a tuple,
`{"$s": [...]}` a frozenset, `{"$b": base64}` bytes, `{"$d": [[k, v], ...]}`
a dict whose keys are not all plain strings.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable
from typing import Any, TypeVar, overload

__all__ = [
    "CodecError",
    "Message",
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
_FIELDS: dict[str, tuple[str, ...]] = {}

M = TypeVar("M", bound=type)


@overload
def message(cls: M, /) -> M: ...
@overload
def message(*, name: str | None = None) -> Callable[[M], M]: ...


# --8<-- [start:message]
def message(cls: Any = None, /, *, name: str | None = None) -> Any:
    """Make `cls` a frozen, slotted dataclass and register it under `name`.

    Usage: `@message` above a class with annotated fields. The name defaults
    to the class name and must be unique across the whole program, since it
    is what travels on the wire.
    """

    def wrap(klass: type) -> type:
        if not issubclass(klass, Message):
            # Rebuild the class with Message among its bases, so isinstance works.
            ns = {k: v for k, v in klass.__dict__.items() if k not in ("__dict__", "__weakref__")}
            bases = (*(b for b in klass.__bases__ if b is not object), Message)
            klass = type(klass.__name__, bases, ns)
        data = dataclasses.dataclass(frozen=True, slots=True)(klass)
        tag = name or data.__name__
        if tag in _REGISTRY and _REGISTRY[tag].__qualname__ != data.__qualname__:
            raise CodecError(f"message name {tag!r} is registered twice")
        _REGISTRY[tag] = data
        _FIELDS[tag] = tuple(f.name for f in dataclasses.fields(data))
        data._wire_name = tag  # type: ignore[attr-defined]
        return data

    return wrap(cls) if cls is not None else wrap


# --8<-- [end:message]


def registered_types() -> dict[str, type[Message]]:
    """A copy of the registry: wire name -> message class."""
    return dict(_REGISTRY)


def _to_json(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Message):
        tag = getattr(type(value), "_wire_name", None)
        if tag is None or _REGISTRY.get(tag) is not type(value):
            raise CodecError(f"{type(value).__name__} is not a registered message")
        return {"$m": tag, "f": {k: _to_json(getattr(value, k)) for k in _FIELDS[tag]}}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    if isinstance(value, tuple):
        return {"$t": [_to_json(v) for v in value]}
    if isinstance(value, frozenset | set):
        items = [_to_json(v) for v in value]
        items.sort(key=lambda item: json.dumps(item, sort_keys=True))
        return {"$s": items}
    if isinstance(value, bytes | bytearray):
        return {"$b": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in value):
            return {k: _to_json(v) for k, v in value.items()}
        return {"$d": [[_to_json(k), _to_json(v)] for k, v in value.items()]}
    raise CodecError(f"cannot encode a value of type {type(value).__name__}: {value!r:.80}")


def _from_json(data: Any) -> Any:
    if data is None or isinstance(data, bool | int | float | str):
        return data
    if isinstance(data, list):
        return [_from_json(v) for v in data]
    if not isinstance(data, dict):
        raise CodecError(f"unexpected JSON value of type {type(data).__name__}")
    if "$m" in data:
        tag = data["$m"]
        cls = _REGISTRY.get(tag) if isinstance(tag, str) else None
        if cls is None:
            raise CodecError(f"unknown message type {tag!r}")
        fields = data.get("f")
        if not isinstance(fields, dict) or set(fields) != set(_FIELDS[tag]):
            expected = ", ".join(_FIELDS[tag])
            raise CodecError(f"message {tag!r} needs exactly the fields ({expected})")
        return cls(**{k: _from_json(v) for k, v in fields.items()})
    if "$t" in data:
        return tuple(_from_json(v) for v in _expect_list(data["$t"], "$t"))
    if "$s" in data:
        return frozenset(_from_json(v) for v in _expect_list(data["$s"], "$s"))
    if "$b" in data:
        try:
            return base64.b64decode(data["$b"], validate=True)
        except (TypeError, ValueError) as exc:
            raise CodecError(f"bad base64 in $b: {exc}") from None
    if "$d" in data:
        pairs = _expect_list(data["$d"], "$d")
        if not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise CodecError("$d must hold [key, value] pairs")
        return {_from_json(k): _from_json(v) for k, v in pairs}
    return {k: _from_json(v) for k, v in data.items()}


def _expect_list(data: Any, tag: str) -> list[Any]:
    if not isinstance(data, list):
        raise CodecError(f"{tag} must hold a list")
    return data


def encode_value(value: Any) -> bytes:
    """Encode any codec value (JSON-like, tuples, sets, bytes, messages)."""
    return json.dumps(_to_json(value), separators=(",", ":"), allow_nan=False).encode()


def decode_value(raw: bytes) -> Any:
    """Inverse of `encode_value`; raises `CodecError` on anything malformed."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CodecError(f"not valid JSON: {exc}") from None
    try:
        return _from_json(data)
    except TypeError as exc:  # unhashable key in a set or dict, etc.
        raise CodecError(str(exc)) from None
    except RecursionError:
        raise CodecError("value nested too deeply") from None


def encode(msg: Message) -> bytes:
    """Encode one registered message to bytes."""
    if not isinstance(msg, Message):
        raise CodecError(f"only registered messages go on the wire, not {type(msg).__name__}")
    return encode_value(msg)


def decode(raw: bytes) -> Message:
    """Decode bytes made by `encode`; the result is always a registered message."""
    value = decode_value(raw)
    if not isinstance(value, Message):
        raise CodecError("bytes do not hold a message")
    return value
