"""The message codec: lossless for every codec value, a clear error for anything else."""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import json
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference import codec
from reference.codec import (
    CodecError,
    check_field_types,
    decode,
    decode_value,
    encode,
    encode_value,
    message,
    registered_types,
)
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


@given(values)
def test_the_bytes_are_the_standard_json_encoders(value: object) -> None:
    # The fast writer (orjson) or the standard encoder: the same bytes, so a
    # reader, a disk record or a test never sees which wrote them. (A float's
    # exponent is the one spelling that may differ: 1e+16 against 1e16.)
    standard = json.dumps(codec._to_json(value), separators=(",", ":"), allow_nan=False)
    if "e" not in standard.replace("e+", "e"):  # no exponent spelled at all
        assert encode_value(value) == standard.encode()
    assert json.loads(encode_value(value)) == json.loads(standard)


@pytest.mark.parametrize(
    "value",
    [
        "caf\u00e9 \u2603",  # beyond ASCII: escaped, as the standard encoder does
        "\x7f",  # DEL is ASCII, yet the standard encoder escapes it (orjson does not)
        {"\x7f": None},
        "\ud800",  # a lone surrogate
        2**128 - 2,  # beyond 64 bits (a ledger id may be)
        -(2**70),
        (1, "\u00e9", [2**100]),
    ],
)
def test_what_the_fast_writer_cannot_say_is_written_by_the_standard_encoder(
    value: object,
) -> None:
    standard = json.dumps(codec._to_json(value), separators=(",", ":"), allow_nan=False)
    assert encode_value(value) == standard.encode()
    assert decode_value(encode_value(value)) == value


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_float_that_is_not_finite_is_refused(bad: float) -> None:
    # orjson would write null: the codec refuses it before any writer sees it.
    for value in (bad, [1, bad], {"k": bad}, (bad,), Inner(1, frozenset({bad}))):
        with pytest.raises(CodecError, match="not JSON compliant"):
            encode_value(value)


def test_messages_round_trip_and_nest() -> None:
    msg = Outer("o", Inner(3, frozenset({1, (2, "x")})), (1, b"\x00", [2]), {(1, 2): "k", "$x": 1})
    assert decode(encode(msg)) == msg
    assert isinstance(decode(encode(msg)), Message)


def test_str_enums_travel_as_their_value() -> None:
    assert decode_value(encode_value(Colour.RED)) == "red"
    # After the first value the encoder passes the enum's values without a
    # call (they are plain str underneath): the bytes stay the same.
    first = encode_value((Colour.RED, [Colour.RED], {"c": Colour.RED}))
    assert encode_value((Colour.RED, [Colour.RED], {"c": Colour.RED})) == first
    assert first == b'{"$t":["red",["red"],{"c":"red"}]}'


def test_a_float_subclass_is_not_learned_as_plain() -> None:
    # Floats go through `_encode_float` (finite or refused): not passed by class.
    class Ratio(float):
        pass

    assert encode_value(Ratio(0.5)) == b"0.5"
    assert float not in codec._PLAIN and Ratio not in codec._PLAIN


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


@pytest.mark.parametrize(
    "raw",
    [b"[1] ", b"[1]\n\t", b'{"a":[1,2]}  ', b"[1][2]", b"[1] x", b"[1,", b"{", b"[", b"[]]"],
)
def test_a_document_is_read_whole_as_the_standard_decoder_reads_it(raw: bytes) -> None:
    # decode_value calls the C scanner directly for a document starting at its
    # first byte; what it does not end exactly at the end of goes the long way.
    try:
        expected: object = json.loads(raw)
    except json.JSONDecodeError:
        with pytest.raises(CodecError, match="not valid JSON"):
            decode_value(raw)
    else:
        assert decode_value(raw) == expected


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


# -- decoding checks every field's type (issue 11) ---------------------------------


class Mode(enum.IntEnum):
    FAST = 1


@message(name="test.Typed")
class Typed:
    count: int
    ratio: float
    flag: bool
    name: str | None
    pair: tuple[int, str]
    ids: tuple[int, ...]
    by_name: dict[str, int]
    inner: Inner
    mode: Mode
    anything: object = None


GOOD = Typed(3, 0.5, True, None, (1, "a"), (1, 2), {"a": 1}, Inner(1, frozenset()), Mode.FAST)


def _with(field: str, raw_value: str) -> bytes:
    """GOOD's encoding with one field's JSON replaced by `raw_value`."""
    names = [f.name for f in dataclasses.fields(Typed)]
    values = json.loads(encode(GOOD))["f"]
    values[names.index(field)] = "@@"
    return json.dumps({"$m": "test.Typed", "f": values}).replace('"@@"', raw_value).encode()


def test_a_well_typed_message_decodes_and_a_float_field_takes_an_int() -> None:
    assert decode(encode(GOOD)) == GOOD
    assert decode(_with("ratio", "2")).ratio == 2  # PEP 484: an int is a float
    assert decode(_with("name", '"n"')).name == "n"
    assert decode(_with("anything", '{"$t":[1,[2]]}')).anything == (1, [2])


WRONG_FIELDS = [
    ("count", "1.5"),  # an int field: not a float
    ("count", "true"),  # bool is no int
    ("count", '"3"'),
    ("count", "null"),
    ("ratio", "true"),
    ("ratio", "1e999"),  # parses as inf, which no encoder writes
    ("ratio", "-1e999"),
    ("flag", "1"),  # 1 is no bool
    ("name", "7"),
    ("pair", '[1, "a"]'),  # a list where a tuple belongs
    ("pair", '{"$t":[1]}'),  # a tuple of the wrong length
    ("pair", '{"$t":["a","a"]}'),
    ("ids", '{"$t":[1,true]}'),
    ("by_name", '{"a":"1"}'),
    ("by_name", '{"$d":[[1,1]]}'),  # a key of the wrong type
    (
        "inner",
        '{"$m":"test.Outer","f":["o",{"$m":"test.Inner","f":[1,{"$s":[]}]},{"$t":[]},{}]}',
    ),  # another message
    ("inner", '{"$m":"test.Inner","f":[true,{"$s":[]}]}'),  # nested: checked too
    ("mode", "2"),  # not a member's value
    ("mode", "true"),
]


@pytest.mark.parametrize(("field", "raw_value"), WRONG_FIELDS)
def test_a_field_of_the_wrong_type_is_refused(field: str, raw_value: str) -> None:
    with pytest.raises(CodecError, match=r"wrong type"):
        decode(_with(field, raw_value))


# -- the fast decoder (orjson) and the standard one agree ------------------------------


@contextlib.contextmanager
def _standard_decoder_only() -> Iterator[None]:
    saved, codec._ORJSON_LOADS = codec._ORJSON_LOADS, None
    try:
        yield
    finally:
        codec._ORJSON_LOADS = saved


def _outcome(raw: bytes) -> tuple[str, object]:
    try:
        value = decode_value(raw)
    except CodecError as exc:
        return "error", str(exc)
    return type(value).__name__, value


@given(values)
def test_the_fast_and_the_standard_decoder_make_the_same_value(value: object) -> None:
    raw = encode_value(value)
    with _standard_decoder_only():
        standard = _outcome(raw)
    assert _outcome(raw) == standard


@pytest.mark.parametrize(("field", "raw_value"), WRONG_FIELDS)
def test_the_fast_decoder_refuses_in_the_standard_decoders_words(
    field: str, raw_value: str
) -> None:
    raw = _with(field, raw_value)
    with _standard_decoder_only():
        standard = _outcome(raw)
    assert standard[0] == "error"
    assert _outcome(raw) == standard


@pytest.mark.parametrize(
    "raw",
    [
        b"[18446744073709551616]",  # orjson reads these as floats
        b"[-9223372036854775809]",
        b'{"$t":[18446744073709551616,1.5]}',
        b'["\\ud800"]',  # a lone surrogate: orjson refuses it
        b"[NaN]",
        b' {"a": 1} ',
        b'{"a":1,"a":2}',
    ],
)
def test_what_orjson_reads_otherwise_is_read_by_the_standard_decoder(raw: bytes) -> None:
    with _standard_decoder_only():
        standard = _outcome(raw)
    assert _outcome(raw) == standard


def test_big_integers_stay_integers_in_every_kind_of_field() -> None:
    big = 1 << 64
    assert decode_value(encode_value([big, -big])) == [big, -big]
    message = dataclasses.replace(GOOD, ratio=big, anything=(big,), ids=(big,))
    decoded = decode(encode(message))
    assert decoded == message
    assert type(decoded.ratio) is int and type(decoded.anything[0]) is int


def test_an_integer_too_long_to_convert_is_a_codec_error_not_a_value_error() -> None:
    with pytest.raises(CodecError, match="4300 digits"):
        decode(_with("count", "9" * 5000))
    with pytest.raises(CodecError, match="4300 digits"):
        decode_value(b"9" * 5000)


def test_every_registered_message_has_field_types_the_codec_can_check() -> None:
    """Every module of reference/ and chapters/ imported: each class compiles."""
    import importlib
    import pkgutil

    import chapters
    import reference

    for package in (reference, chapters):
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            importlib.import_module(module.name)
    types = registered_types()
    assert len(types) > 60
    for cls in types.values():
        check_field_types(cls)


def test_a_field_type_the_codec_cannot_check_is_named() -> None:
    @message(name="test.Unsupported")
    class Unsupported:
        callback: Callable[[], None]

    try:
        with pytest.raises(CodecError, match="cannot check a field of type"):
            check_field_types(Unsupported)
    finally:  # no other test should meet it in the registry
        del codec._REGISTRY["test.Unsupported"]
