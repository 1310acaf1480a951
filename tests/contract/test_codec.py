"""The message codec: lossless for every codec value, a clear error for anything else."""

from __future__ import annotations

import contextlib
import enum

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference.codec import CodecError, decode, decode_value, encode, encode_value, message
from reference.node import Message


@message(name="test.Inner")
class Inner:
    n: int
    tags: frozenset


@message(name="test.Outer")
class Outer:
    name: str
    inner: Inner
    path: tuple
    extra: dict


class Colour(enum.StrEnum):
    RED = "red"


scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.binary(max_size=8)
scalars = scalars | st.floats(allow_nan=False, allow_infinity=False)
hashables = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3),
    max_leaves=6,
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=4), inner, max_size=3)
        | st.dictionaries(hashables, inner, max_size=3)
        | st.frozensets(hashables, max_size=3)
        | st.builds(Inner, st.integers(), st.frozensets(hashables, max_size=3))
    ),
    max_leaves=12,
)


@given(values)
def test_every_codec_value_round_trips_exactly(value: object) -> None:
    decoded = decode_value(encode_value(value))
    assert decoded == value
    assert type(decoded) is type(value)


def test_messages_round_trip_and_nest() -> None:
    msg = Outer("o", Inner(3, frozenset({1, (2, "x")})), (1, b"\x00", [2]), {(1, 2): "k", "$x": 1})
    assert decode(encode(msg)) == msg
    assert isinstance(decode(encode(msg)), Message)


def test_str_enums_travel_as_their_value() -> None:
    assert decode_value(encode_value(Colour.RED)) == "red"


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b'{"$m":"nope","f":[]}', "unknown message type 'nope'"),
        (b'{"$m":"test.Inner","f":[1]}', "needs exactly the fields"),
        (b'{"$m":"test.Inner","f":[1,{"$s":[]}],"x":1}', "needs exactly the fields"),
        (b'{"$t":3}', r"\$t must hold a list"),
        (b'{"$d":[[1]]}', "pairs"),
        (b'{"$d":[[[1],2]]}', "unhashable"),
        (b'{"$b":"!!"}', "base64"),
        (b'{"$q":1}', "unknown tag"),
        (b"NaN", "not a codec value"),
        (b"\xff", "not valid JSON"),
        (b"[" * 100_000, "nested too deeply|not valid JSON"),
    ],
)
def test_malformed_bytes_give_a_codec_error(raw: bytes, error: str) -> None:
    with pytest.raises(CodecError, match=error):
        decode_value(raw)


def test_decode_refuses_a_value_that_is_not_a_message() -> None:
    with pytest.raises(CodecError, match="do not hold a message"):
        decode(encode_value([1, 2]))


def test_unregistered_values_are_refused_when_encoding() -> None:
    with pytest.raises(CodecError, match="cannot encode a value of type object"):
        encode_value({"x": object()})
    with pytest.raises(CodecError, match="only registered messages"):
        encode([1])  # type: ignore[arg-type]


def test_a_name_cannot_be_registered_twice() -> None:
    with pytest.raises(CodecError, match="registered twice"):

        @message(name="test.Inner")
        class Impostor:
            x: int


@given(st.binary(max_size=64))
def test_random_bytes_never_escape_as_another_exception(raw: bytes) -> None:
    with contextlib.suppress(CodecError):
        decode_value(raw)
