"""SimRuntime semantics: timers, crash/restart, pause, clocks, work, errors."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import pytest
from sim_helpers import Note, Recorder, recorder, runtime, send, two_city_topology

from reference.codec import message
from reference.disk.sim import TornRecord
from reference.net.sim import NetConfig
from reference.node import Context, Node, NodeId
from reference.runtime.sim import DiskConfig, SimRuntime

NO_JITTER = NetConfig(jitter_ratio=0.0)


def test_message_latency_follows_distance_class() -> None:
    rt = runtime(net=NO_JITTER)
    for dst in ("b", "c", "d"):
        send(rt, "a", dst, Note(1))
    rt.run_until(100)
    arrivals = {n: recorder(rt, n).log[-1][3] for n in ("b", "c", "d")}
    assert arrivals == {"b": pytest.approx(0.2), "c": pytest.approx(1.0), "d": pytest.approx(15.0)}


def test_timers_fire_rearm_replaces_and_cancel_disarms() -> None:
    rt = runtime()
    ctx = rt.context("a")
    assert ctx is not None
    ctx.set_timer(10, "t1")
    ctx.set_timer(5, "t2")
    ctx.set_timer(20, "t1")  # replaces the 10 ms arming
    ctx.set_timer(7, "t3")
    ctx.cancel_timer("t3")
    rt.run_until(100)
    timers = [(tag, now) for kind, tag, _, now in recorder(rt, "a").log if kind == "timer"]
    assert timers == [("t2", 5.0), ("t1", 20.0)]


def test_send_to_unknown_node_or_non_message_is_a_clear_error() -> None:
    rt = runtime()
    with pytest.raises(ValueError, match="'a' sent to unknown node 'zz'"):
        send(rt, "a", "zz", Note(1))
    with pytest.raises(TypeError, match="'a' sent a dict to 'b'"):
        send(rt, "a", "b", {"seq": 1})


@message(name="platform_test.Opaque")
class Opaque:
    payload: Any


def test_strict_mode_rejects_a_message_the_codec_cannot_carry() -> None:
    rt = runtime()
    with pytest.raises(TypeError, match="fails the codec"):
        send(rt, "a", "b", Opaque(object()))
    lax = SimRuntime(two_city_topology(), seed=1, strict=False)
    lax.add_node("a", Recorder)
    lax.add_node("b", Recorder)
    lax.start()
    send(lax, "a", "b", Opaque(object()))  # by reference: allowed when not strict
    lax.run_until(10)
    assert len(recorder(lax, "b").messages()) == 1


def test_add_node_needs_placement_and_factory_must_build_a_node() -> None:
    rt = SimRuntime(two_city_topology(), seed=1)
    with pytest.raises(ValueError, match="place it in the topology"):
        rt.add_node("nowhere", Recorder)
    rt.add_node("a", lambda node_id: "not a node")
    with pytest.raises(TypeError, match="not a Node"):
        rt.start()


class Counter(Node):
    """Keeps a counter in memory and, when asked, syncs it to disk."""

    def __init__(self, node_id: NodeId) -> None:
        self.value = 0
        self.recovered = 0

    def on_start(self, ctx: Context) -> None:
        self.recovered = self.value = ctx.disk.get("value", 0)

    def on_message(self, ctx: Context, src: NodeId, msg: Any) -> None:
        self.value += 1
        ctx.disk.put("value", self.value)
        if msg.body == "sync":
            ctx.disk.sync()

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        raise AssertionError("a crashed node's timer fired")


def test_crash_loses_volatile_state_timers_inflight_and_unsynced_writes() -> None:
    rt = runtime(factory=Counter, disk=DiskConfig(sync_latency_ms=0.0))
    send(rt, "b", "a", Note(1, "sync"))
    send(rt, "b", "a", Note(2, "nosync"))
    rt.run_until(1)
    ctx = rt.context("a")
    assert ctx is not None
    ctx.set_timer(50, "never")  # lost with the crash: Counter.on_timer would raise
    send(rt, "d", "a", Note(3, "sync"))  # in flight (15 ms) when a crashes
    rt.run_until(5)
    rt.crash("a")
    assert rt.status("a") == "crashed" and rt.node("a") is None
    rt.run_until(10)
    rt.restart("a")
    rt.run_until(100)
    node = rt.node("a")
    assert isinstance(node, Counter)
    assert node.recovered == 1 and node.value == 1  # only the synced write survived
    stats = rt.net.link_stats()
    assert stats[("d", "a")].dropped == 1 and stats[("d", "a")].delivered == 0
    assert [e.kind for e in rt.telemetry.find(node="a")] == ["crash", "restart"]


def test_restart_of_a_running_node_is_an_error() -> None:
    rt = runtime()
    with pytest.raises(ValueError, match="it is up, not crashed"):
        rt.restart("a")
    with pytest.raises(ValueError, match="no node 'zz'"):
        rt.crash("zz")


def test_messages_sent_while_down_arrive_if_the_node_is_back() -> None:
    rt = runtime(net=NO_JITTER)
    rt.crash("d")
    send(rt, "a", "d", Note(1))  # 15 ms to shanghai; d restarts at 5 ms
    rt.run_until(5)
    rt.restart("d")
    rt.run_until(20)
    assert recorder(rt, "d").messages() == [("a", Note(1))]


def test_pause_queues_messages_and_timers_until_resume() -> None:
    rt = runtime(net=NO_JITTER)
    ctx = rt.context("b")
    assert ctx is not None
    ctx.set_timer(3, "tick")
    rt.pause("b")
    assert rt.status("b") == "paused"
    send(rt, "a", "b", Note(1))
    send(rt, "a", "b", Note(2))
    rt.run_until(50)
    assert recorder(rt, "b").log[1:] == []
    assert rt.queue_len("b") == 3
    rt.resume("b")
    rt.run_until(51)
    log = recorder(rt, "b").log[1:]
    assert [(k, s) for k, s, _, _ in log] == [("msg", "a"), ("msg", "a"), ("timer", "tick")]
    assert [m.seq for _, _, m, _ in log[:2]] == [1, 2]
    assert all(now == 50.0 for *_, now in log)  # handled at resume time, in arrival order


def test_clock_skew_and_drift_change_the_node_clock_and_its_timers() -> None:
    rt = runtime()
    rt.set_clock("a", skew_ms=100.0, drift_ppm=100_000)  # 10% fast, 100 ms ahead
    rt.run_until(1000)
    assert rt.node_now_ms("a") == pytest.approx(1000 + 100 + 100)
    ctx = rt.context("a")
    assert ctx is not None and ctx.now_ms() == pytest.approx(1200)
    ctx.set_timer(110, "lease")  # 110 ms on a clock running 10% fast = 100 ms true time
    rt.run_until(2000)
    fired = [now for kind, _, _, now in recorder(rt, "a").log if kind == "timer"]
    assert fired == [pytest.approx(1100 + 100 + 110)]
    assert rt.telemetry.find(kind="clock")[0]["drift_ppm"] == 100_000


class Worker(Node):
    """Spends 10 ms on every message, then replies."""

    def __init__(self, node_id: NodeId) -> None:
        self.handled_at: list[float] = []

    def on_message(self, ctx: Context, src: NodeId, msg: Any) -> None:
        self.handled_at.append(ctx.now_ms())
        ctx.work(10.0)
        ctx.send(src, Note(msg.seq, "done"))


def test_work_gives_service_time_queues_events_and_delays_sends() -> None:
    topo = two_city_topology()
    rt = SimRuntime(topo, seed=1, net=NO_JITTER, strict=True)
    rt.add_node("a", Recorder)
    rt.add_node("b", Worker)
    rt.start()
    for seq in range(3):
        send(rt, "a", "b", Note(seq))
    rt.run_until(0.3)
    assert rt.queue_len("b") == 2  # the first is being worked on, two wait
    rt.run_until(100)
    worker = rt.node("b")
    assert isinstance(worker, Worker)
    assert worker.handled_at == pytest.approx([0.2, 10.2, 20.2])
    replies = [now for kind, _, _, now in recorder(rt, "a").log if kind == "msg"]
    assert replies == pytest.approx([10.4, 20.4, 30.4])


@pytest.mark.parametrize("crash", [False, True])
def test_a_crash_mid_work_takes_back_what_the_work_would_have_sent(crash: bool) -> None:
    """On a link already in use (the network's fast path) as on a new one."""
    topo = two_city_topology()
    rt = SimRuntime(topo, seed=1, net=NO_JITTER, strict=True)
    rt.add_node("a", Recorder)
    rt.add_node("b", Worker)
    rt.start()
    send(rt, "a", "b", Note(0))
    rt.run_until(15.0)  # answered at 10.4: the link b -> a exists now
    send(rt, "a", "b", Note(1))  # b works from 15.2 to 25.2, then answers
    rt.run_until(20.0)
    if crash:
        rt.crash("b")
    rt.run_until(100.0)
    replies = [msg.seq for kind, _, msg, _ in recorder(rt, "a").log if kind == "msg"]
    assert replies == ([0] if crash else [0, 1])


def test_disk_sync_latency_is_charged_like_work() -> None:
    rt = runtime(factory=Counter, disk=DiskConfig(sync_latency_ms=2.0), net=NO_JITTER)
    send(rt, "b", "a", Note(1, "sync"))
    send(rt, "b", "a", Note(2, "sync"))
    rt.run_until(0.2)
    assert rt.queue_len("a") == 1  # the second waits for the first fsync
    rt.run_until(10)
    assert rt.disk("a").syncs == 2 and rt.disk("a").get("value") == 2


def test_call_at_runs_outside_nodes_and_stop_ends_a_run() -> None:
    rt = runtime()
    seen: list[float] = []
    rt.call_at(5, lambda: seen.append(rt.now_ms))
    rt.call_after(10, rt.stop)
    rt.call_at(20, lambda: seen.append(rt.now_ms))
    rt.run_until(100)
    assert seen == [5.0] and rt.now_ms == 10.0
    rt.run_until(100)
    assert seen == [5.0, 20.0] and rt.now_ms == 100.0
    with pytest.raises(ValueError, match="before now"):
        rt.call_at(50, lambda: None)


def test_step_and_run_until_quiet() -> None:
    rt = runtime()
    assert not rt.step()
    send(rt, "a", "b", Note(1))
    assert rt.step() and not rt.step()
    arrived_ms = rt.now_ms
    assert 0.18 <= arrived_ms <= 0.22  # cell latency 0.2 ms, jitter 10%
    ctx = rt.context("a")
    assert ctx is not None
    ctx.set_timer(30, "x")
    assert rt.run_until_quiet(max_ms=10) is False and rt.now_ms == arrived_ms + 10
    assert rt.run_until_quiet(max_ms=100) is True


def test_run_paced_follows_the_wall_clock() -> None:
    rt = runtime()
    ctx = rt.context("a")
    assert ctx is not None
    for i in range(10):
        ctx.set_timer(i * 10.0, i)
    wall = [0.0]

    def fake_sleep(seconds: float) -> None:
        wall[0] += seconds

    rt._kernel.run_paced(speed=2.0, until_ms=100, wall_clock=lambda: wall[0], sleep=fake_sleep)
    assert rt.now_ms == 100
    assert wall[0] == pytest.approx(0.05, rel=0.05)  # 100 ms at 2x speed = 50 ms of wall
    assert len(recorder(rt, "a").log) == 11
    stops = iter([False, False, True])
    rt.run_paced(speed=1.0, until_ms=10_000, should_stop=lambda: next(stops))
    assert rt.now_ms < 1_000  # stopped after two short slices of real time


class Appender(Node):
    """Appends every message to its log; syncs only when told to."""

    def __init__(self, node_id: NodeId) -> None:
        self.recovered: list[tuple[int, Any]] = []

    def on_start(self, ctx: Context) -> None:
        self.recovered = ctx.disk.read_log("wal")

    def on_message(self, ctx: Context, src: NodeId, msg: Any) -> None:
        ctx.disk.append("wal", msg.seq)
        if msg.body == "sync":
            ctx.disk.sync()


def test_a_torn_write_reaches_the_restarted_node_as_a_torn_record() -> None:
    rt = runtime(factory=Appender, disk=DiskConfig(sync_latency_ms=0.0, tear_on_crash=True))
    send(rt, "b", "a", Note(1, "sync"))
    send(rt, "b", "a", Note(2))
    send(rt, "b", "a", Note(3))
    rt.run_until(5)
    rt.crash("a")
    rt.restart("a")
    node = rt.node("a")
    assert isinstance(node, Appender)
    assert node.recovered == [(0, 1), (1, TornRecord("wal", 1))]


def test_link_stats_count_messages_in_flight_as_sent() -> None:
    rt = runtime(net=NetConfig(duplicate=1.0))
    send(rt, "a", "d", Note(1))
    stats = rt.net.link_stats()[("a", "d")]
    assert (stats.sent, stats.delivered, stats.duplicated) == (1, 0, 1)
    rt.run_until(100)
    stats = rt.net.link_stats()[("a", "d")]
    assert (stats.sent, stats.delivered, stats.dropped, stats.duplicated) == (1, 2, 0, 1)


def test_a_crash_drops_what_waits_in_the_inbox_and_stale_wakeups_do_nothing() -> None:
    topo = two_city_topology()
    rt = SimRuntime(topo, seed=1, net=NO_JITTER, strict=True)
    rt.add_node("a", Recorder)
    rt.add_node("b", Worker)
    rt.start()
    for seq in range(3):
        send(rt, "a", "b", Note(seq))
    rt.run_until(5)
    assert rt.queue_len("b") == 2
    rt.crash("b")
    rt.restart("b")
    assert rt.queue_len("b") == 0
    rt.run_until(100)
    worker = rt.node("b")
    assert isinstance(worker, Worker) and worker.handled_at == []
    # b crashed in the middle of its first 10 ms of work: its reply never left.
    assert recorder(rt, "a").messages() == []
    assert rt.net.link_stats()[("b", "a")].dropped == 1


def test_a_node_added_after_start_boots_and_joins_the_network() -> None:
    topo = two_city_topology()
    rt = SimRuntime(topo, seed=1, strict=True)
    rt.add_node("a", Recorder)
    rt.start()
    send(rt, "a", "a", Note(0))  # to itself: the "local" class
    rt.run_until(10)
    rt.add_node("d", Recorder)  # booted at once, at 10 ms
    assert recorder(rt, "d").log[0][:1] == ("start",) and recorder(rt, "d").log[0][3] == 10.0
    send(rt, "a", "d", Note(1))
    send(rt, "d", "a", Note(2))
    rt.run_until(50)
    assert recorder(rt, "d").messages() == [("a", Note(1))]
    assert [m for _, m in recorder(rt, "a").messages()] == [Note(0), Note(2)]
    assert rt.net.link_stats()[("a", "a")].delivered == 1
