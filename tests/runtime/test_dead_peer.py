"""A link whose peer is gone loses what it sends, counts it, and writes nothing into the socket.

asyncio logs "socket.send() raised exception." for every write into a
transport whose connection is already lost, from the fifth on. A link that
wrote what waited for a connection frame by frame logged one such warning
per frame (after the fourth) when the peer went away between the handshake
and those writes (a node killed as a client dialed it). These tests lose
the connection at exactly that moment, on both event loops, and read the
asyncio logger.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from reference.codec import Message
from reference.runtime import frames
from reference.runtime.eventloop import EVENT_LOOP_ENV, loop_factory, loop_name
from reference.runtime.examples import Incr
from reference.runtime.transport import LinkStats, Transport, TransportConfig

LOG = logging.getLogger("test.dead_peer")
QUEUED = 20  # frames waiting for the connection: many more than the loop's 4 silent writes


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def asyncio_log() -> Iterator[list[str]]:
    """Every line the asyncio logger (asyncio's and uvloop's) logs meanwhile."""
    handler, logger = _Lines(), logging.getLogger("asyncio")
    logger.addHandler(handler)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)


async def _send_to_a_peer_lost_after_the_handshake(monkeypatch: pytest.MonkeyPatch) -> LinkStats:
    real_dial = frames.dial

    async def dial_then_lose(*args: Any, **kwargs: Any) -> Any:
        reader, writer, session = await real_dial(*args, **kwargs)
        writer.transport.abort()  # the connection is lost: the peer was killed just now
        return reader, writer, session

    monkeypatch.setattr(frames, "dial", dial_then_lose)

    async def nothing_expected(src: str, msg: Message) -> None:
        raise AssertionError(f"{msg} arrived through a lost connection")

    b = Transport(TransportConfig("b", "127.0.0.1", 0, "t", None), nothing_expected, None, LOG)
    await b.start()
    config = TransportConfig("a", "127.0.0.1", 0, "t", None, addrs={"b": ("127.0.0.1", b.port)})
    a = Transport(config, nothing_expected, None, LOG)
    try:
        for i in range(QUEUED):
            a.send("b", Incr(i, 1))  # queued: the link dials
        for _ in range(50):
            await asyncio.sleep(0.01)
            if a.stats["b"].dropped_down + a.stats["b"].sent == QUEUED:
                break
        await asyncio.sleep(0.05)  # the lost connection's callbacks run
        return a.stats["b"]
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_frames_queued_for_a_peer_lost_at_the_handshake_are_dropped_without_warnings(
    loop: str, asyncio_log: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(EVENT_LOOP_ENV, loop)
    if loop_name() != loop:
        pytest.skip(f"{loop} is not installed")
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        stats = runner.run(_send_to_a_peer_lost_after_the_handshake(monkeypatch))
    assert not [line for line in asyncio_log if "socket.send()" in line], asyncio_log[:3]
    assert (stats.sent, stats.dropped_down) == (0, QUEUED)  # lost, and counted as lost
