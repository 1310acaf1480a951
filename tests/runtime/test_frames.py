"""Frames: bounded, authenticated, and refused (never believed) when they are not."""

from __future__ import annotations

import asyncio
import logging

import pytest

from reference.codec import Message
from reference.runtime import frames
from reference.runtime.examples import Incr
from reference.runtime.frames import FrameError, Hello, Session
from reference.runtime.spec import NodeSpec, SpecError, spec_of
from reference.runtime.transport import Transport, TransportConfig

SECRET = b"k" * 32
LOG = logging.getLogger("test.frames")


def _read(data: bytes, session: Session, direction: frames.Direction = "dialer") -> bytes:
    async def go() -> bytes:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await session.read(reader, direction)

    return asyncio.run(go())


def _pair(secret: bytes | None, max_bytes: int = 1024) -> tuple[Session, Session]:
    nonce = frames.new_nonce()
    return Session(secret, nonce, max_bytes), Session(secret, nonce, max_bytes)


def test_sealed_frames_round_trip_in_order() -> None:
    sender, receiver = _pair(SECRET)
    first, second = sender.seal("dialer", b"one"), sender.seal("dialer", b"two")
    assert _read(first, receiver) == b"one"
    assert _read(second, receiver) == b"two"


def test_a_bundle_carries_its_messages_in_order_under_one_tag() -> None:
    sender, receiver = _pair(SECRET)
    parts = [b'{"a":1}', b"[2]", b'"three"']
    payload = _read(sender.seal("dialer", frames.bundle(parts)), receiver)
    assert frames.unbundle(payload) == parts
    assert frames.unbundle(b'{"plain":1}') == [b'{"plain":1}']  # a message is itself
    assert sender.sent == receiver.received == 1  # one frame, one tag, for three messages


@pytest.mark.parametrize(
    "torn",
    [
        frames.BUNDLE_MARK + b"\x00\x00",  # ends inside a length
        frames.BUNDLE_MARK + b"\x00\x00\x00\x09[1]",  # a part longer than what is left
        frames.BUNDLE_MARK + b"\x00\x00\x00\x03[1]",  # one part: no bundle
    ],
)
def test_a_torn_bundle_is_a_frame_error(torn: bytes) -> None:
    with pytest.raises(FrameError):
        frames.unbundle(torn)


def test_what_a_turn_sends_a_peer_is_one_frame_and_arrives_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frames_read: list[int] = []
    real_take = Session.take

    def counted_take(self: Session, direction: frames.Direction, buffer: bytearray) -> list[bytes]:
        taken = real_take(self, direction, buffer)
        frames_read.extend(len(frames.unbundle(payload)) for payload in taken)
        return taken

    monkeypatch.setattr(Session, "take", counted_take)

    async def scenario() -> list[int]:
        got: list[int] = []

        def into_b(src: str, msg: Message) -> None:
            assert isinstance(msg, Incr)
            got.append(msg.req_id)

        b = Transport(TransportConfig("b", "127.0.0.1", 0, "t", SECRET), into_b, None, LOG)
        await b.start()
        addrs = {"b": ("127.0.0.1", b.port)}
        a = Transport(
            TransportConfig("a", "127.0.0.1", 0, "t", SECRET, addrs=addrs), into_b, None, LOG
        )
        try:
            a.send("b", Incr(0, 1))  # dials; what waits for the dial is one write too
            while not got:
                await asyncio.sleep(0.005)
            for i in range(1, 11):  # one turn: one frame
                a.send("b", Incr(i, 1))
            await asyncio.sleep(0.05)
            return got
        finally:
            a.close()
            b.close()

    assert asyncio.run(scenario()) == list(range(11))
    assert frames_read == [1, 10], frames_read  # messages per frame, as read


def test_a_replayed_or_reordered_frame_fails_its_tag() -> None:
    sender, receiver = _pair(SECRET)
    first = sender.seal("dialer", b"one")
    assert _read(first, receiver) == b"one"
    with pytest.raises(FrameError, match="bad HMAC"):
        _read(first, receiver)  # same bytes again: sequence number 0 is spent


def test_a_frame_reflected_back_to_its_sender_fails() -> None:
    sender, receiver = _pair(SECRET)
    with pytest.raises(FrameError, match="bad HMAC"):
        _read(sender.seal("dialer", b"x"), receiver, direction="acceptor")


def test_a_peer_without_the_secret_is_refused() -> None:
    nonce = frames.new_nonce()
    outsider = Session(None, nonce, 1024)
    member = Session(SECRET, nonce, 1024)
    with pytest.raises(FrameError):
        _read(outsider.seal("dialer", b"x" * 40), member)
    wrong = Session(b"w" * 32, nonce, 1024)
    with pytest.raises(FrameError, match="bad HMAC"):
        _read(wrong.seal("dialer", b"hello"), member)


def test_an_oversized_frame_is_refused_before_it_is_read() -> None:
    _, receiver = _pair(None, max_bytes=100)
    header_only = (1 << 30).to_bytes(4, "big")  # announces 1 GiB, sends nothing more
    with pytest.raises(FrameError, match="oversized frame"):
        _read(header_only, receiver)
    sender, _ = _pair(None, max_bytes=100)
    with pytest.raises(FrameError, match="exceeds"):
        sender.seal("dialer", b"x" * 101)


def test_malformed_hello_is_a_frame_error() -> None:
    with pytest.raises(FrameError, match="malformed hello"):
        frames.decode_hello(b"not json")
    with pytest.raises(FrameError, match="malformed hello"):
        frames.decode_hello(b'{"kind": "peer"}')
    hello = Hello(kind="peer", src="n1", cluster="c")
    assert frames.decode_hello(frames.encode_hello(hello)) == hello


def test_listening_beyond_loopback_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="cluster secret is required"):
        TransportConfig(node_id="n1", host="0.0.0.0", port=0, cluster="c", secret=None)
    TransportConfig(node_id="n1", host="127.0.0.1", port=0, cluster="c", secret=None)
    TransportConfig(node_id="n1", host="0.0.0.0", port=0, cluster="c", secret=SECRET)


def _module_level(node_id: str, size: int = 1) -> object:
    return object()


def test_factories_cross_processes_by_name_only() -> None:
    import functools

    assert spec_of("reference.runtime.examples:counter") == NodeSpec(
        "reference.runtime.examples:counter"
    )
    spec = spec_of(functools.partial(_module_level, size=3))
    assert spec.target.endswith(":_module_level") and spec.kwargs == {"size": 3}
    with pytest.raises(SpecError, match="cannot cross a process boundary"):
        spec_of(lambda node_id: object())  # type: ignore[arg-type,return-value]
    with pytest.raises(SpecError, match="JSON-encodable"):
        NodeSpec("a.b:c", {"x": object()})
    with pytest.raises(SpecError, match="must look like"):
        NodeSpec("no_colon")
    with pytest.raises(SpecError, match="cannot import"):
        NodeSpec("no.such.module:f").resolve()
