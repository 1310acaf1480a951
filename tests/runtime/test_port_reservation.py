"""A node's port is the runtime's from the moment it is chosen until close().

Ports are chosen in the harness and bound by each node in its own process,
later; a port released in between went to a run booting beside this one, and
a node failed with "address already in use" (seen under a loaded machine).
"""

from __future__ import annotations

import asyncio
import errno
import socket

import pytest

from reference.runtime.process import ProcessRuntime


def _plain_bind(port: int) -> int:
    """0 if a socket without SO_REUSEADDR (anyone else) can bind `port`, else the errno."""
    with socket.socket() as other:
        try:
            other.bind(("127.0.0.1", port))
        except OSError as exc:
            return exc.errno or -1
    return 0


def test_a_chosen_port_is_held_for_the_node_until_close() -> None:
    rt = ProcessRuntime(seed=1)
    try:
        port, unused = rt._free_port(), rt._free_port()
        assert _plain_bind(port) == errno.EADDRINUSE  # nobody else gets it meanwhile
        assert _plain_bind(unused) == errno.EADDRINUSE

        async def node_listens() -> bool:  # as the transport binds: reuse_address=True
            server = await asyncio.start_server(
                lambda _r, w: w.close(), "127.0.0.1", port, reuse_address=True
            )
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            server.close()
            await server.wait_closed()
            return True

        assert asyncio.run(node_listens())
    finally:
        rt.close()
    assert _plain_bind(unused) == 0  # given back with the runtime (`port` sits in TIME_WAIT)


@pytest.mark.parametrize("n", [64])
def test_ports_chosen_together_are_distinct(n: int) -> None:
    with ProcessRuntime(seed=1) as rt:
        ports = [rt._free_port() for _ in range(n)]
    assert len(set(ports)) == n
