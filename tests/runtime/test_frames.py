"""Frames: bounded, authenticated, and refused (never believed) when they are not."""

from __future__ import annotations

import asyncio

import pytest

from reference.runtime import frames
from reference.runtime.frames import FrameError, Hello, Session
from reference.runtime.spec import NodeSpec, SpecError, spec_of
from reference.runtime.transport import TransportConfig

SECRET = b"k" * 32


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


@pytest.mark.parametrize("secret", [SECRET, b"short", b"long" * 40, b""])
def test_a_tag_is_hmac_sha256_of_direction_nonce_sequence_and_payload(secret: bytes) -> None:
    # The wire's tag, whatever the session computes it with (its keyed pads
    # are hashed once): a peer checking with the standard library agrees.
    import hmac
    import struct

    sender, _ = _pair(secret)
    for seq, payload in enumerate([b"", b"one", b"x" * 900]):
        frame = sender.seal("dialer", payload)
        header = b"dialer" + sender.nonce + struct.pack(">Q", seq)
        expected = hmac.digest(secret, header + payload, "sha256")
        assert frame[4 : 4 + frames.MAC_BYTES] == expected


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


def test_a_bundle_carries_messages_in_order_within_the_frame_limit() -> None:
    payloads = [b"one", b"", b"x" * 50, b"two"]
    assert frames.unbundle(frames.bundle(payloads, 1024)[0]) == payloads
    small = frames.bundle(payloads, 60)  # the 50-byte payload fills a bundle of its own
    assert [frames.unbundle(b) for b in small] == [[b"one", b""], [b"x" * 50], [b"two"]]
    assert all(len(b) <= 60 for b in small)
    assert frames.bundle([], 1024) == []


@pytest.mark.parametrize("body", [b"\x00\x00\x00", b"\x00\x00\x00\x05abc", b"\x00\x00\x00\x01ab"])
def test_a_bundle_whose_lengths_do_not_tile_it_is_refused(body: bytes) -> None:
    with pytest.raises(FrameError, match="malformed bundle"):
        frames.unbundle(body)
