"""Peers on one machine talk over Unix sockets; everything else still over TCP.

With `TransportConfig.unix_dir`, a node listens on `<dir>/<node>.sock` as
well as on its TCP port, and dials a peer's socket file where it finds one
(and the peer's address is on loopback). These tests check which kind of
socket a link uses, that messages arrive either way, and that a socket file
nobody listens on (a node that is down) refuses the dial as a closed port
would: the link drops what waited and dials again later.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Coroutine
from pathlib import Path
from typing import TypeVar

import pytest

from reference.codec import Message
from reference.runtime.eventloop import new_event_loop
from reference.runtime.examples import Incr
from reference.runtime.transport import (
    UNIX_PATH_BYTES_MAX,
    Transport,
    TransportConfig,
    unix_path,
)

LOG = logging.getLogger("test.unix_sockets")
T = TypeVar("T")


def _run(coro: Coroutine[object, object, T]) -> T:
    loop = new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


async def _exchange(
    a_dir: str | None, b_dir: str | None, *, b_host: str = "127.0.0.1"
) -> tuple[list[tuple[str, Message]], int]:
    """Start b, send it three messages from a; (what b got, the family of a's link socket)."""
    got: list[tuple[str, Message]] = []

    def receive(src: str, msg: Message) -> None:
        got.append((src, msg))

    b = Transport(
        TransportConfig("b", "127.0.0.1", 0, "t", None, unix_dir=b_dir), receive, None, LOG
    )
    await b.start()
    config = TransportConfig(
        "a", "127.0.0.1", 0, "t", None, addrs={"b": (b_host, b.port)}, unix_dir=a_dir
    )
    a = Transport(config, receive, None, LOG)
    await a.start()
    try:
        for i in range(3):
            a.send("b", Incr(i, 1))
        for _ in range(200):
            if len(got) == 3:
                break
            await asyncio.sleep(0.01)
        writer = a._links["b"]._writer
        assert writer is not None
        return got, writer.get_extra_info("socket").family
    finally:
        a.close()
        b.close()


def test_peers_sharing_a_directory_talk_over_a_unix_socket(tmp_path: Path) -> None:
    got, family = _run(_exchange(str(tmp_path), str(tmp_path)))
    assert family == socket.AF_UNIX
    assert got == [("a", Incr(i, 1)) for i in range(3)]
    assert (tmp_path / "b.sock").is_socket() and (tmp_path / "a.sock").is_socket()


def test_without_a_directory_peers_talk_over_tcp(tmp_path: Path) -> None:
    got, family = _run(_exchange(None, None))
    assert family == socket.AF_INET
    assert got == [("a", Incr(i, 1)) for i in range(3)]
    # A dialer with a directory, a peer without: no socket file there, so TCP.
    got, family = _run(_exchange(str(tmp_path), None))
    assert family == socket.AF_INET
    assert len(got) == 3


def test_a_peer_beyond_loopback_is_dialed_over_tcp_whatever_the_directory_holds(
    tmp_path: Path,
) -> None:
    a = Transport(
        TransportConfig(
            "a",
            "127.0.0.1",
            0,
            "t",
            b"s" * 32,
            addrs={"b": ("10.0.0.2", 7000)},
            unix_dir=str(tmp_path),
        ),
        lambda src, msg: None,
        None,
        LOG,
    )
    (tmp_path / "b.sock").touch()
    assert a.dial_path("b") is None
    a.addrs["b"] = ("127.0.0.1", 7000)
    assert a.dial_path("b") == str(tmp_path / "b.sock")


def test_a_socket_file_nobody_listens_on_refuses_like_a_closed_port(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, int]:
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(str(tmp_path / "b.sock"))  # bound, never listening: a node that is down
        stale.close()
        config = TransportConfig(
            "a", "127.0.0.1", 0, "t", None, addrs={"b": ("127.0.0.1", 1)}, unix_dir=str(tmp_path)
        )
        a = Transport(config, lambda src, msg: None, None, LOG)
        try:
            a.send("b", Incr(1, 1))
            for _ in range(100):
                if a.stats["b"].dropped_down:
                    break
                await asyncio.sleep(0.01)
            return a.stats["b"].dropped_down, a.stats["b"].sent
        finally:
            a.close()

    assert _run(scenario()) == (1, 0)


def test_a_path_too_long_for_a_unix_socket_means_tcp() -> None:
    long_dir = "/tmp/" + "d" * UNIX_PATH_BYTES_MAX
    assert unix_path(long_dir, "r1") is None
    assert unix_path("/tmp/run", "r1") == "/tmp/run/r1.sock"


@pytest.mark.slow
def test_a_process_runtime_talks_over_unix_sockets_in_its_data_directory() -> None:
    from runtime_helpers import heard, start_beacons

    nodes = ["n1", "n2", "n3"]
    with start_beacons(nodes) as rt:
        rt.run_for(300)
        counts = heard(rt, "client", nodes)  # the client asked each node over its link
        assert all(counts[n].get(p, 0) > 0 for n in nodes for p in nodes if p != n), counts
        assert {p.name for p in rt.data_dir.glob("*.sock")} == {
            f"{n}.sock" for n in [*nodes, "client"]
        }
        client = rt.members["client"].host
        assert client is not None
        for node in nodes:
            writer = client.transport._links[node]._writer
            assert writer is not None and writer.get_extra_info("socket").family == socket.AF_UNIX


def test_a_started_transport_sends_without_asking_asyncio_for_its_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A link schedules its end-of-turn write on the loop the transport started on:
    asyncio.get_running_loop() makes a getpid() system call on every call."""
    import reference.runtime.transport as transport_module

    asked: list[int] = []
    real = asyncio.get_running_loop

    def counted() -> asyncio.AbstractEventLoop:
        asked.append(1)
        return real()

    async def scenario() -> list[tuple[str, Message]]:
        got: list[tuple[str, Message]] = []
        b = Transport(
            TransportConfig("b", "127.0.0.1", 0, "t", None, unix_dir=str(tmp_path)),
            lambda src, msg: got.append((src, msg)),
            None,
            LOG,
        )
        await b.start()
        config = TransportConfig(
            "a", "127.0.0.1", 0, "t", None, addrs={"b": ("127.0.0.1", b.port)}, unix_dir=None
        )
        a = Transport(config, lambda src, msg: None, None, LOG)
        await a.start()
        try:
            a.send("b", Incr(0, 1))  # dials: the link's connection task
            while not got:
                await asyncio.sleep(0.01)
            monkeypatch.setattr(transport_module.asyncio, "get_running_loop", counted)
            for i in range(1, 4):  # one a turn: each turn's first send schedules a write
                a.send("b", Incr(i, 1))
                await asyncio.sleep(0)
            for _ in range(200):
                if len(got) == 4:
                    break
                await asyncio.sleep(0.01)
            monkeypatch.undo()
            return got
        finally:
            a.close()
            b.close()

    got = _run(scenario())
    assert got == [("a", Incr(i, 1)) for i in range(4)]
    assert not asked
