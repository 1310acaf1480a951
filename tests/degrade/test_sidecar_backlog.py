"""The edge's sidecar under a backlog, hosted as a real node process hosts it.

Chapter 6 on processes (`d11 test ch6 --backend process --scenario double11`)
lost the spike to the edge gateway's inbox: each message the sidecar refused
owed 0.05 ms of modelled work, and the node host held the next message until
the loop's clock passed that, a whole millisecond tick on uvloop. The edge
read its sockets at about one message a tick, so the payment gateway's
refusals reached it 1.2-2.6 s late, after the clients' deadline. Here the
sidecar, in a `NodeHost` on the runtime's own loop, is handed a backlog the
way the transport hands it (awaiting when the host says the node is busy):
every request past its deadline must be refused at the door, nearly all
without a wait; and modelled work that matters (a database's) still holds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable
from pathlib import Path

import pytest

from reference.codec import Message
from reference.degrade import Sidecar, SidecarConfig
from reference.degrade.sidecar import REJECT_MS
from reference.disk.file import FileDisk
from reference.gateway import GatewayConfig, PaymentGateway
from reference.gateway.messages import GatewayRejected
from reference.node import Context, Node, NodeId
from reference.payment import PayRequest, merchant_account, user_account
from reference.runtime.control import ForwardingMetrics
from reference.runtime.eventloop import new_event_loop
from reference.runtime.host import BUSY_SLACK_S, Clock, NodeHost
from reference.runtime.transport import TransportConfig

BACKLOG = 400  # requests waiting in the edge's inbox
DB_WORK_MS = 20.0  # a database's modelled work: this must still hold the next message


def _host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, factory: type[Node] | None = None
) -> tuple[NodeHost, list[Message]]:
    peers = {"client": ("127.0.0.1", 9), "db": ("127.0.0.1", 9)}  # never dialed: sends recorded
    config = TransportConfig("gw-edge", "127.0.0.1", 0, "c", None, addrs=peers)
    edge = SidecarConfig(deadline=True)  # the edge's door: no work after a deadline

    def sidecar(node_id: NodeId) -> Node:
        return Sidecar(PaymentGateway(GatewayConfig(shards=("db",))), edge)

    def crashed(exc: BaseException) -> None:
        pytest.fail(f"node crashed: {exc!r}")

    host = NodeHost(factory or sidecar, config, disk=FileDisk(tmp_path / "n.disk"),
                    clock=Clock(time.monotonic()), seed=1, incarnation=0,
                    metrics=ForwardingMetrics(), on_fatal=crashed)  # fmt: skip
    sent: list[Message] = []
    monkeypatch.setattr(host.transport, "send", lambda dst, msg: sent.append(msg))
    return host, sent


def test_the_edge_refuses_a_backlog_past_its_deadline_without_a_tick_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, sent = _host(tmp_path, monkeypatch)
    waits = 0

    async def scenario() -> float:
        nonlocal waits
        await host.start()
        started_s = time.perf_counter()
        for i in range(BACKLOG):
            # Deadline 1 ms after the clock's epoch: long past, as in a backlog.
            msg = PayRequest(f"r{i}", f"p{i}", user_account(i), merchant_account(1), 100, 1.0)
            waiting = host._deliver("client", msg)  # as the transport reads a socket
            if waiting is not None:
                waits += 1
                await waiting
        deadline_s = time.perf_counter() + 5.0  # bounded: the last refusals follow their work
        while len(sent) < BACKLOG and time.perf_counter() < deadline_s:
            await asyncio.sleep(0.001)
        took_s = time.perf_counter() - started_s
        host.stop()
        return took_s

    loop = new_event_loop()  # uvloop where installed: what a node process runs on
    try:
        took_s = loop.run_until_complete(scenario())
    finally:
        loop.close()
    assert sent == [GatewayRejected(f"r{i}", "deadline", "gw-edge") for i in range(BACKLOG)]
    # The work owed (0.05 ms a refusal) holds the inbox once per millisecond of it,
    # not once per message: before, every message but the first waited a tick.
    owed_ms = BACKLOG * REJECT_MS
    assert waits <= owed_ms / (BUSY_SLACK_S * 1000) + 2, (waits, BACKLOG)
    assert took_s < BACKLOG * 0.001, f"{took_s * 1000:.0f} ms for {BACKLOG} refusals"


class _Db(Node):
    """A store that is busy DB_WORK_MS per request, replying to each."""

    def __init__(self, node_id: NodeId) -> None:
        self.node_id = node_id

    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        ctx.work(DB_WORK_MS)
        ctx.send("client", msg)

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        pass


def test_modelled_work_over_the_slack_still_holds_the_next_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, sent = _host(tmp_path, monkeypatch, _Db)
    handled_s: list[float] = []

    async def scenario() -> None:
        await host.start()
        first = PayRequest("a", "pa", user_account(1), merchant_account(1), 100, 0.0)
        second = PayRequest("b", "pb", user_account(2), merchant_account(1), 100, 0.0)
        started_s = host.loop.time()
        assert host._deliver("client", first) is None  # idle: handled at once
        waiting = host._deliver("client", second)
        assert waiting is not None, "a node busy for 20 ms took the next message at once"
        await waiting
        handled_s.append(host.loop.time() - started_s)
        deadline_s = host.loop.time() + 5.0  # bounded: the replies leave after the work
        while len(sent) < 2 and host.loop.time() < deadline_s:
            await asyncio.sleep(0.001)
        host.stop()

    loop = new_event_loop()
    try:
        loop.run_until_complete(scenario())
    finally:
        loop.close()
    # The second waited for the first's work (to within the slack and the loop's tick).
    assert handled_s[0] >= DB_WORK_MS / 1000 - BUSY_SLACK_S - 0.001, handled_s
    assert [m.req_id for m in sent if isinstance(m, PayRequest)] == ["a", "b"]
    assert len(sent) == 2
