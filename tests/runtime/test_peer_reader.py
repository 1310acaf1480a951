"""A peer's messages reach the node in order, one handler at a time, even when the node
makes the reader wait (paused or busy: NodeHost._deliver returns what to await)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from reference.codec import Message
from reference.runtime.examples import Incr
from reference.runtime.transport import Transport, TransportConfig

LOG = logging.getLogger("test.peer_reader")
SECRET = b"s" * 32


async def _deliver_with_waits(wait_on: set[int]) -> tuple[list[int], list[int]]:
    """a sends b 30 Incrs in two bursts; b's handler makes the reader wait after each
    request id in `wait_on`. What b handled, in order, and what it handled during a wait."""
    handled: list[int] = []
    during_wait: list[int] = []
    waiting = False

    async def wait_a_little() -> None:
        nonlocal waiting
        waiting = True
        await asyncio.sleep(0.02)
        waiting = False

    def into_b(src: str, msg: Message) -> Awaitable[None] | None:
        assert isinstance(msg, Incr)
        (during_wait if waiting else handled).append(msg.req_id)
        return wait_a_little() if msg.req_id in wait_on else None

    def into_a(src: str, msg: Message) -> None:
        raise AssertionError("nothing is sent to a")

    b = Transport(TransportConfig("b", "127.0.0.1", 0, "test", SECRET), into_b, None, LOG)
    await b.start()
    config = TransportConfig(
        "a", "127.0.0.1", 0, "test", SECRET, addrs={"b": ("127.0.0.1", b.port)}
    )
    a = Transport(config, into_a, None, LOG)
    try:
        for i in range(10):  # queued while a dials: written right after the handshake
            a.send("b", Incr(i, 1))
        await asyncio.sleep(0.2)
        for i in range(10, 30):  # one turn: one bundle
            a.send("b", Incr(i, 1))
        await asyncio.sleep(0.5)
        return handled, during_wait
    finally:
        a.close()
        b.close()


def test_every_message_is_handled_in_order_with_no_waits() -> None:
    handled, during_wait = asyncio.run(_deliver_with_waits(set()))
    assert handled == list(range(30)) and during_wait == []


def test_a_wait_holds_the_rest_of_a_bundle_and_what_arrives_meanwhile() -> None:
    handled, during_wait = asyncio.run(_deliver_with_waits({0, 3, 12, 29}))
    assert handled == list(range(30))
    assert during_wait == []  # nothing was handled while the node made the reader wait
