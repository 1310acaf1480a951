"""Message classes keep dataclass semantics with the codec's faster __init__."""

from __future__ import annotations

import dataclasses
from dataclasses import field

import pytest

from reference.codec import decode, encode, message


@message(name="platform_test.Plain")
class Plain:
    seq: int
    body: str = "x"
    tags: tuple[str, ...] = ()


@message(name="platform_test.WithFactory")
class WithFactory:
    items: list[int] = field(default_factory=list)


def test_fast_init_keeps_signature_defaults_equality_and_frozenness() -> None:
    assert Plain(1) == Plain(seq=1, body="x", tags=()) != Plain(2)
    assert Plain(1, "y", ("a",)).tags == ("a",)
    assert hash(Plain(1)) == hash(Plain(1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        Plain(1).seq = 2  # type: ignore[misc]
    with pytest.raises(TypeError, match="seq"):
        Plain()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Plain(1, body="y", colour="red")  # type: ignore[call-arg]
    assert decode(encode(Plain(3, "z", ("q",)))) == Plain(3, "z", ("q",))
    assert Plain.__init__.__qualname__ == "Plain.__init__"


def test_classes_with_a_default_factory_keep_the_dataclass_init() -> None:
    first, second = WithFactory(), WithFactory()
    assert first.items == [] and first.items is not second.items
