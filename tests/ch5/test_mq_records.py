"""The broker's fast record builders (messages.py: `stored_message`, `payload`) make
exactly what the message classes' constructors make."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from reference.codec import decode, encode
from reference.mq.messages import Payload, StoredMessage, payload, stored_message
from reference.tracing.context import TraceContext

_TRACE = TraceContext("t1", "s2", "s1", "T")


def test_the_builders_take_every_field_in_the_classes_order() -> None:
    for build, cls in ((stored_message, StoredMessage), (payload, Payload)):
        params = list(inspect.signature(build).parameters)
        assert params == [f.name for f in dataclasses.fields(cls)], cls.__name__


def test_a_built_record_is_the_constructors_record() -> None:
    body = payload("p1", "u1", "m1@pay", 5)
    assert type(body) is Payload and body == Payload("p1", "u1", "m1@pay", 5)
    fields = (7, "p1", "payments", 3, "u1", body, 1_000, 2, 9_000, "g", _TRACE)
    built, made = stored_message(*fields), StoredMessage(*fields)
    assert type(built) is StoredMessage and built == made and hash(built) == hash(made)
    assert dataclasses.astuple(built) == dataclasses.astuple(made)
    assert decode(encode(built)) == made and encode(built) == encode(made)
    for name in ("offset", "body"):  # frozen, as the class's own
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(built, name, 8)
