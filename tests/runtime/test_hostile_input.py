"""Nodes that cannot be crashed or fooled from outside (issue 11).

- a frame whose message has a field of the wrong type, or an integer too
  long to convert, is a rejected frame (counted, logged), never applied and
  never an exception escaping the connection callback;
- a message the node does not handle is logged, counted and dropped, on the
  simulator and on real processes; a bug inside a handler still crashes it;
- every run has a cluster secret, loopback included: a local process without
  it cannot speak as a node, and the secret is never on a command line.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from runtime_helpers import Recorder, recorder, send_from, wait_for

from reference.net.topology import Topology
from reference.node import Context, Node, NodeId, UnhandledMessage
from reference.runtime import frames
from reference.runtime.examples import Counted, Echo, Incr, counter
from reference.runtime.node_main import SECRET_ENV
from reference.runtime.process import ProcessRuntime
from reference.runtime.sim import SimRuntime


@pytest.fixture
def counters() -> Iterator[ProcessRuntime]:
    with ProcessRuntime(seed=11) as rt:
        rt.add_node("n1", "reference.runtime.examples:counter")
        rt.add_local_node("client", recorder)
        rt.start()
        yield rt


def _counted(rt: ProcessRuntime, req_id: int, amount: int) -> int | None:
    box = rt.node("client")
    assert isinstance(box, Recorder)
    send_from(rt, "client", "n1", Incr(req_id, amount))
    got = lambda: [m.value for m in box.replies(Counted) if m.req_id == req_id]  # noqa: E731
    return got()[0] if wait_for(rt, lambda: bool(got())) else None


async def _send_raw(
    addr: tuple[str, int], cluster: str, secret: bytes | None, payload: bytes
) -> bytes:
    """Dial as a peer, send one sealed frame of raw bytes (a bundle of one); what the
    node answers (EOF)."""
    reader, writer, session = await frames.dial(
        *addr, frames.Hello("peer", "client", cluster), secret, 1 << 20
    )
    try:
        writer.write(session.seal("dialer", frames.bundle([payload], 1 << 20)[0]))
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 5.0)  # the node closes on a bad frame
    except ConnectionError:  # closed before our frame was even written
        return b""
    finally:
        writer.close()


def _incr_frame(amount: str) -> bytes:
    return b'{"$m":"runtime.Incr","f":[77,' + amount.encode() + b"]}"


@pytest.mark.parametrize(
    ("amount", "logged"),
    [
        ("1.5", "field amount has the wrong type (float: 1.5)"),
        ("true", "field amount has the wrong type (bool: True)"),
        ("9" * 5000, "Exceeds the limit (4300 digits)"),
        ("1e999", "field amount has the wrong type (float: inf)"),
        ('{"$t":[1]}', "field amount has the wrong type (tuple: (1,))"),
    ],
)
def test_a_message_with_a_field_of_the_wrong_type_is_a_rejected_frame(
    counters: ProcessRuntime, amount: str, logged: str
) -> None:
    rt = counters
    assert _counted(rt, 1, 2) == 2
    # Even a peer holding the secret (a buggy node) cannot slip a bad value in.
    addr = rt.members["n1"].addr
    rt.loop.run_until_complete(_send_raw(addr, rt.cluster, rt.secret, _incr_frame(amount)))
    assert rt.stats("n1")["rejected"] == 1
    assert _counted(rt, 2, 3) == 5  # 2 + 3: the bad Incr was never applied
    log = rt.log_path("n1").read_text()
    assert "malformed frame from client" in log and logged in log
    assert "Traceback" not in log and "Unhandled exception" not in log
    assert rt.status("n1") == "up" and rt.members["n1"].exits == []


def test_every_run_has_a_secret_and_a_process_without_it_cannot_speak(
    counters: ProcessRuntime,
) -> None:
    rt = counters
    assert rt.secret is not None and len(rt.secret) == 32  # made for this run, on loopback
    addr = rt.members["n1"].addr
    good = b'{"$m":"runtime.Incr","f":[5,1000]}'
    for secret in (None, bytes(32)):  # no secret at all; another cluster's
        answer = rt.loop.run_until_complete(_send_raw(addr, rt.cluster, secret, good))
        assert answer == b""  # refused: closed without a word
    assert rt.stats("n1")["rejected"] == 2
    assert "bad HMAC tag" in rt.log_path("n1").read_text()
    assert _counted(rt, 1, 1) == 1  # neither Incr of 1000 was applied
    with ProcessRuntime(seed=11) as other:
        assert other.secret != rt.secret  # per run


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs Linux /proc")
def test_the_secret_is_in_the_node_environment_never_on_its_command_line(
    counters: ProcessRuntime,
) -> None:
    rt = counters
    proc = rt.members["n1"].proc
    assert proc is not None and rt.secret is not None
    cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
    environ = Path(f"/proc/{proc.pid}/environ").read_bytes()
    assert rt.secret.hex().encode() not in cmdline  # `ps` shows this
    assert f"{SECRET_ENV}={rt.secret.hex()}".encode() in environ.split(b"\0")
    assert SECRET_ENV not in os.environ  # the harness's own environment is left alone


def test_a_node_process_refuses_to_run_without_a_secret(tmp_path: Path) -> None:
    from reference.runtime.node_main import NodeConfig, main

    config = NodeConfig(
        node_id="n1",
        spec={"target": "reference.runtime.examples:counter"},
        host="127.0.0.1",
        port=0,
        cluster="c",
        data_dir=str(tmp_path),
        epoch_s=0.0,
        seed=0,
        incarnation=0,
        max_frame_bytes=1 << 20,
    )
    assert SECRET_ENV not in os.environ
    assert main([config.to_json()]) == 2


# -- unhandled messages on the simulator ------------------------------------------


class Fussy(Node):
    """Handles Incr only; refuses the rest, and has a bug for Incr(amount=0)."""

    def __init__(self) -> None:
        self.total = 0

    def on_message(self, ctx: Context, src: NodeId, msg: object) -> None:
        if not isinstance(msg, Incr):
            raise UnhandledMessage(self, msg)
        if msg.amount == 0:
            raise UnhandledMessage(self, Echo(0, "not the message it was handed"))
        self.total += msg.amount


def _sim() -> tuple[SimRuntime, Fussy]:
    topology = Topology.build({"c1": {"cell1": ["a", "b"]}})
    rt = SimRuntime(topology, seed=1)
    fussy = Fussy()
    rt.add_node("a", lambda _: fussy)
    rt.add_node("b", counter)
    rt.start()
    return rt, fussy


def test_the_simulator_drops_counts_and_traces_a_message_a_node_does_not_handle() -> None:
    rt, fussy = _sim()
    ctx_b = rt.context("b")
    assert ctx_b is not None
    for i in range(3):
        ctx_b.send("a", Echo(i, "not for a"))
    ctx_b.send("a", Incr(1, 5))
    rt.run_for(100)
    assert fussy.total == 5  # it lived, and went on serving
    assert rt.telemetry.counter("unhandled_messages", "a") == 3
    traced = rt.telemetry.find(kind="unhandled")
    assert [(e.node, e.fields["type"], e.fields["src"]) for e in traced] == [("a", "Echo", "b")] * 3


def test_on_the_simulator_a_refusal_of_another_message_is_a_bug() -> None:
    rt, _ = _sim()
    ctx_b = rt.context("b")
    assert ctx_b is not None
    ctx_b.send("a", Incr(1, 0))
    with pytest.raises(UnhandledMessage, match="Fussy does not handle Echo"):
        rt.run_for(100)
