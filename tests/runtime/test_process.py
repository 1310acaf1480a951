"""ProcessRuntime: real processes, real TCP, real signals, real files."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from runtime_helpers import Recorder, heard, recorder, send_from, start_beacons, wait_for

from reference.codec import encode_value
from reference.runtime import frames
from reference.runtime.base import Backend, NetControl
from reference.runtime.examples import Counted, Echo, Incr
from reference.runtime.process import ProcessRuntime

NODES = ["n1", "n2", "n3"]


@pytest.fixture
def counters() -> Iterator[ProcessRuntime]:
    with ProcessRuntime(seed=7) as rt:
        for node in NODES:
            rt.add_node(node, "reference.runtime.examples:counter")
        rt.add_local_node("client", recorder)
        rt.start()
        yield rt


@pytest.fixture
def beacons() -> Iterator[ProcessRuntime]:
    with start_beacons(NODES) as rt:
        yield rt


def _client(rt: ProcessRuntime) -> Recorder:
    box = rt.node("client")
    assert isinstance(box, Recorder)
    return box


def _incr(
    rt: ProcessRuntime, node: str, req_id: int, amount: int, timeout_ms: float = 5_000.0
) -> int | None:
    send_from(rt, "client", node, Incr(req_id, amount))
    got = lambda: [m for m in _client(rt).replies(Counted) if m.req_id == req_id]  # noqa: E731
    if not wait_for(rt, lambda: bool(got()), timeout_ms):
        return None
    return got()[0].value


def test_the_runtime_is_a_backend(counters: ProcessRuntime) -> None:
    assert isinstance(counters, Backend) and isinstance(counters.net, NetControl)
    assert counters.node_ids() == [*NODES, "client"]
    assert {counters.status(n) for n in counters.node_ids()} == {"up"}


def test_three_nodes_exchange_messages_over_tcp(beacons: ProcessRuntime) -> None:
    beacons.run_for(300)
    counts = heard(beacons, "client", NODES)
    for node in NODES:
        assert all(counts[node].get(peer, 0) > 0 for peer in NODES if peer != node), counts
    assert beacons.node("n1") is None  # a process node's object lives in its process


def test_sigkill_and_restart_recover_from_the_file_disk(counters: ProcessRuntime) -> None:
    rt = counters
    assert _incr(rt, "n1", 1, 5) == 5
    assert _incr(rt, "n1", 2, 7) == 12
    pid = rt.members["n1"].proc.pid  # type: ignore[union-attr]
    rt.crash("n1")
    assert rt.status("n1") == "crashed" and rt.members["n1"].exits == [-9]
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(pid, 0)  # the process is really gone
    assert _incr(rt, "n1", 3, 1, timeout_ms=300) is None  # nobody home
    rt.restart("n1")
    rt.settle()
    assert rt.status("n1") == "up"
    assert _incr(rt, "n1", 4, 1) == 13  # 5 + 7 survived the kill; this one too
    assert _incr(rt, "n2", 5, 2) == 2  # the others never noticed
    kinds = [e.kind for e in rt.telemetry.find(node="n1")]
    assert kinds.count("recovered") == 2 and "crash" in kinds and "restart" in kinds


def test_sigstop_freezes_and_sigcont_thaws(counters: ProcessRuntime) -> None:
    rt = counters
    rt.pause("n1")
    pid = rt.members["n1"].proc.pid  # type: ignore[union-attr]
    state = lambda: Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]  # noqa: E731
    assert wait_for(rt, lambda: state() == "T", 1_000)  # stopped by SIGSTOP, for real
    assert rt.status("n1") == "paused"
    send_from(rt, "client", "n1", Incr(1, 3))
    assert not wait_for(rt, lambda: bool(_client(rt).replies(Counted)), 300)
    rt.resume("n1")
    assert wait_for(rt, lambda: bool(_client(rt).replies(Counted)))
    assert state() in "RS"
    assert _client(rt).replies(Counted)[0].value == 3  # the queued request was handled


def _delta(
    before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]
) -> dict[tuple[str, str], int]:
    """Beats delivered per (sender, receiver) link between two snapshots."""
    return {
        (src, dst): after[dst].get(src, 0) - before[dst].get(src, 0)
        for dst in NODES
        for src in NODES
        if src != dst
    }


def test_a_partition_drops_exactly_the_cut_links(beacons: ProcessRuntime) -> None:
    rt = beacons
    rt.run_for(100)
    rt.net.cut(["n1"], ["n2"], one_way=True)  # n1 -> n2 only
    rt.settle()
    before = heard(rt, "client", NODES)
    rt.run_for(400)
    delta = _delta(before, heard(rt, "client", NODES))
    assert delta[("n1", "n2")] == 0, delta
    assert all(count > 0 for link, count in delta.items() if link != ("n1", "n2")), delta
    assert rt.net.link_stats()[("n1", "n2")].dropped > 0

    rt.net.heal()
    rt.net.partition([{"n1"}, {"n2", "n3"}])  # both ways
    rt.settle()
    before = heard(rt, "client", NODES)
    rt.run_for(400)
    delta = _delta(before, heard(rt, "client", NODES))
    cut = {("n1", "n2"), ("n2", "n1"), ("n1", "n3"), ("n3", "n1")}
    assert all(delta[link] == 0 for link in cut), delta
    assert delta[("n2", "n3")] > 0 and delta[("n3", "n2")] > 0, delta

    rt.net.heal()
    rt.settle()
    before = heard(rt, "client", NODES)
    rt.run_for(400)
    assert all(count > 0 for count in _delta(before, heard(rt, "client", NODES)).values())


SECRET = b"s" * 32


async def _attack(addr: tuple[str, int], cluster: str) -> None:
    """Four bad connections: no secret, oversized, malformed, wrong cluster."""

    async def challenge() -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
        reader, writer = await asyncio.open_connection(*addr)
        nonce = await frames.read_raw(reader, frames.NONCE_BYTES)
        return reader, writer, nonce

    async def finish(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await writer.drain()
        await asyncio.wait_for(reader.read(), 5.0)  # the node closes on us
        writer.close()

    # 1. A peer without the secret: an unsealed hello.
    reader, writer, nonce = await challenge()
    hello = frames.Hello(kind="peer", src="intruder", cluster=cluster)
    writer.write(frames.Session(None, nonce, 1 << 20).seal("dialer", frames.encode_hello(hello)))
    await finish(reader, writer)
    # 2. An oversized frame: announces 2 GiB.
    reader, writer, nonce = await challenge()
    writer.write((1 << 31).to_bytes(4, "big"))
    await finish(reader, writer)
    # 3. With the secret, a proper hello, then a frame that is no bundle of messages.
    reader, writer, session = await frames.dial(
        *addr, frames.Hello("peer", "confused", cluster), SECRET, 1 << 20
    )
    writer.write(session.seal("dialer", b"\x00 not a message"))
    await finish(reader, writer)
    # 4. With the secret but from another cluster.
    reader, writer, session = await frames.dial(
        *addr, frames.Hello("peer", "lost", "another-cluster"), SECRET, 1 << 20
    )
    await finish(reader, writer)
    # 5. A well-formed message of a type the codec has never heard of.
    reader, writer, session = await frames.dial(
        *addr, frames.Hello("peer", "future", cluster), SECRET, 1 << 20
    )
    writer.write(session.seal("dialer", frames.bundle([encode_value({"x": 1})], 1 << 20)[0]))
    await finish(reader, writer)


def test_bad_frames_and_unauthenticated_peers_are_refused_and_the_node_lives(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with ProcessRuntime(seed=7, secret=SECRET, max_frame_bytes=4096) as rt:
        rt.add_node("n1", "reference.runtime.examples:counter")
        rt.add_local_node("client", recorder)
        rt.start()
        addr = rt.members["n1"].addr
        rt.loop.run_until_complete(_attack(addr, rt.cluster))
        assert _incr(rt, "n1", 1, 4) == 4  # still serving
        assert rt.stats("n1")["rejected"] == 5
        log = rt.log_path("n1").read_text()
        assert "rejected connection" in log and "bad HMAC tag" in log
        assert "oversized frame: 2147483648 bytes announced" in log
        assert "malformed frame from confused" in log
        assert "hello from cluster 'another-cluster'" in log
        assert "malformed frame from future" in log
        assert rt.status("n1") == "up" and rt.members["n1"].exits == []
        # And a sender never puts an oversized frame on the wire: dropped, logged.
        send_from(rt, "client", "n1", Echo(9, "x" * 10_000))
        rt.run_for(50)
        assert rt.stats("client")["links"]["n1"]["dropped_full"] == 1
        assert "over the 4096-byte frame limit" in caplog.text
        assert rt.status("n1") == "up"


def test_a_node_bug_crashes_that_node_only() -> None:
    with ProcessRuntime(seed=7) as rt:
        rt.add_node("d1", "runtime_helpers:divider")
        rt.add_node("n2", "reference.runtime.examples:counter")
        rt.add_local_node("client", recorder)
        rt.start()
        send_from(rt, "client", "d1", Incr(1, 0))  # 100 // 0: a bug in the handler
        assert wait_for(rt, lambda: rt.status("d1") == "crashed")
        assert rt.members["d1"].exits == [70]
        assert "crashed in a handler" in rt.log_path("d1").read_text()
        assert _incr(rt, "n2", 2, 1) == 1


def test_a_message_the_node_does_not_handle_is_logged_counted_and_dropped(
    counters: ProcessRuntime,
) -> None:
    rt = counters
    for req_id in range(3):
        send_from(rt, "client", "n1", Echo(req_id, "a counter does not handle this"))
    assert wait_for(rt, lambda: rt.stats("n1")["unhandled"] == 3)
    assert _incr(rt, "n1", 9, 2) == 2  # still serving
    assert rt.status("n1") == "up" and rt.members["n1"].exits == []
    assert "dropped an unhandled message (3 so far): CounterNode does not handle Echo" in (
        rt.log_path("n1").read_text()
    )
    counted = lambda: rt.telemetry.counter("unhandled_messages", "n1")  # noqa: E731
    assert wait_for(rt, lambda: counted() == 3)


def test_restart_of_a_running_node_and_unknown_nodes_are_errors(counters: ProcessRuntime) -> None:
    with pytest.raises(ValueError, match="not crashed"):
        counters.restart("n1")
    with pytest.raises(ValueError, match="no node 'zz'"):
        counters.crash("zz")
    with pytest.raises(ValueError, match="no node, cell or city"):
        counters.net.isolate("zz")


def test_nodes_refuse_to_listen_beyond_loopback_without_a_secret() -> None:
    with ProcessRuntime(host="0.0.0.0") as rt:
        assert rt.secret is not None and len(rt.secret) == 32  # one is made up for the run


def test_the_node_command_rejects_a_bad_config_with_one_line() -> None:
    from typer.testing import CliRunner

    from tui.cli import app

    result = CliRunner().invoke(app, ["node", "{not json"])
    assert result.exit_code == 2
    assert "error: bad node config" in result.output and "Traceback" not in result.output


def test_bench_process_refuses_a_misspelt_disk_writer_before_starting_a_node(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from tui.cli import app

    monkeypatch.setenv("D11_DISK_WRITER", "ack")
    result = CliRunner().invoke(app, ["bench", "process", "--seconds", "0.5"])
    assert result.exit_code == 2
    assert "error: D11_DISK_WRITER='ack': expected one of acks, thread, loop" in result.output
    assert "transfers_per_s" not in result.output and "Traceback" not in result.output


def test_bench_process_commits_transfers_on_real_processes() -> None:
    from reference.runtime.bench import run_bench

    # 2 s, not 0.5: on a loaded machine a half-second window once held no commit at all.
    report = run_bench(seconds=2.0, clients=8, batch=4, fsync=False)
    assert report.transfers > 0 and report.p50_ms <= report.p99_ms
    text = report.render()
    assert "committed transfers/s" in text
    assert [line.split(":")[0] for line in text.splitlines()[-3:]] == [
        "transfers_per_s",
        "p50_ms",
        "p99_ms",
    ]


def test_the_simulator_is_a_backend_too() -> None:
    from reference.net.topology import Topology
    from reference.runtime.sim import SimRuntime

    sim = SimRuntime(Topology.build({"c": {"c-1": ["n1"]}}), seed=1)
    assert isinstance(sim, Backend) and isinstance(sim.net, NetControl)


def test_a_node_that_cannot_boot_is_reported_with_its_log() -> None:
    from reference.runtime.process import RuntimeUsageError

    with ProcessRuntime() as rt:
        rt.add_node("n1", "reference.runtime.examples:no_such_factory")
        with pytest.raises(
            RuntimeUsageError, match=r"(?s)node n1 failed to start.*no_such_factory"
        ):
            rt.start()
        assert rt.status("n1") == "crashed" and rt.members["n1"].exits == [1]
