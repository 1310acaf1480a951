"""DockerRuntime: the same nodes in containers; kill, pause and cuts act on real containers."""

from __future__ import annotations

import functools
import threading
import types
from collections.abc import Iterator

import pytest
from runtime_helpers import Recorder, heard, link_counts, recorder, send_from, wait_for

from reference.runtime.docker import DockerRuntime, engine_unreachable_reason
from reference.runtime.examples import Counted, Echo, Incr, beacon

pytestmark = pytest.mark.docker

BEACONS = ["n1", "n2", "n3"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[DockerRuntime]:
    reason = engine_unreachable_reason()
    if reason is not None:
        pytest.skip(reason)
    with DockerRuntime(seed=3) as rt:
        for node in BEACONS:
            rt.add_node(node, functools.partial(beacon, peers=BEACONS, period_ms=10.0))
        rt.add_node("k1", "reference.runtime.examples:counter")
        rt.add_local_node("client", recorder)
        rt.start()
        yield rt


def _incr(rt: DockerRuntime, req_id: int, amount: int, timeout_ms: float = 5_000.0) -> int | None:
    box = rt.node("client")
    assert isinstance(box, Recorder)
    send_from(rt, "client", "k1", Incr(req_id, amount))
    got = lambda: [m for m in box.replies(Counted) if m.req_id == req_id]  # noqa: E731
    return got()[0].value if wait_for(rt, lambda: bool(got()), timeout_ms) else None


def test_a_network_cut_is_an_iptables_rule_and_drops_exactly_those_links(
    cluster: DockerRuntime,
) -> None:
    rt = cluster
    rt.net.partition([{"n1"}, {"n2", "n3"}])
    rt.settle()
    n1_ip = rt.members["n1"].addr[0]
    assert f"-A INPUT -s {n1_ip}/32 -j DROP" in rt.iptables_rules("n2")
    rt.run_for(200)  # let frames in flight land
    before = heard(rt, "client", BEACONS)
    rt.run_for(500)
    after = heard(rt, "client", BEACONS)
    delta = {
        (src, dst): after[dst].get(src, 0) - before[dst].get(src, 0)
        for dst in BEACONS
        for src in BEACONS
        if src != dst
    }
    assert all(delta[(a, b)] == 0 for a, b in delta if "n1" in (a, b)), delta
    assert delta[("n2", "n3")] > 0 and delta[("n3", "n2")] > 0, delta

    rt.net.heal()
    rt.settle()
    assert "DROP" not in rt.iptables_rules("n2")
    # TCP retransmits on its own backoff: give the healed links a few seconds.
    marks = heard(rt, "client", BEACONS)
    assert wait_for(
        rt,
        lambda: (
            all(
                now[src] > marks[dst].get(src, 0)
                for dst, now in heard(rt, "client", BEACONS).items()
                for src in BEACONS
                if src != dst and src in now
            )
            and all(len(v) == 2 for v in heard(rt, "client", BEACONS).values())
        ),
        15_000,
    )


def test_docker_kill_and_restart_recover_from_the_file_disk(cluster: DockerRuntime) -> None:
    rt = cluster
    assert _incr(rt, 1, 5) == 5
    assert _incr(rt, 2, 7) == 12
    rt.crash("k1")
    container = rt.containers["k1"]
    container.reload()
    assert container.status == "exited" and rt.members["k1"].exits[-1] == -9
    rt.restart("k1")
    rt.settle()
    assert _incr(rt, 3, 1) == 13


def test_docker_pause_freezes_the_container(cluster: DockerRuntime) -> None:
    rt = cluster
    value = _incr(rt, 10, 0)
    assert value is not None
    rt.pause("k1")
    container = rt.containers["k1"]
    container.reload()
    assert container.status == "paused"
    assert _incr(rt, 11, 1, timeout_ms=300) is None
    rt.resume("k1")
    box = rt.node("client")
    assert wait_for(rt, lambda: any(m.req_id == 11 for m in box.replies(Counted)))


def test_docker_message_faults_are_injected_by_the_containers_transports(
    cluster: DockerRuntime,
) -> None:
    rt = cluster

    def beacon_counts() -> dict[str, int]:
        return link_counts(rt, list(BEACONS))

    rt.net.set_message_faults(loss=1.0)
    try:
        rt.settle()
        before = beacon_counts()
        rt.run_for(300)
        after = beacon_counts()
        assert after["sent"] == before["sent"]  # every container loses everything it sends
        assert after["dropped_loss"] > before["dropped_loss"]
    finally:
        rt.net.set_message_faults()
    rt.settle()
    before = beacon_counts()
    rt.run_for(300)
    after = beacon_counts()
    assert after["sent"] > before["sent"] and after["dropped_loss"] == before["dropped_loss"]


def test_docker_every_fault_works_whatever_state_the_container_is_in(
    cluster: DockerRuntime,
) -> None:
    rt = cluster
    n1_ip = rt.members["n1"].addr[0]
    drop_n1 = f"-A INPUT -s {n1_ip}/32 -j DROP"
    # A cut is handed to the worker thread: the call returns before the rule exists.
    rt.net.isolate("n1")
    assert rt._settling() == ["iptables"]
    rt.settle()
    assert drop_n1 in rt.iptables_rules("n2")
    # Healed while n2 is dead (this was docker-py's 409), cut again while it is dead:
    rt.crash("n2")
    rt.net.heal()
    rt.net.isolate("n1")
    rt.settle()
    rt.restart("n2")  # a fresh network namespace: it gets the cut that holds now
    rt.settle()
    assert drop_n1 in rt.iptables_rules("n2")
    # Healed while n3 is frozen: applied once it thaws.
    rt.pause("n3")
    rt.net.heal()
    rt.settle()
    rt.resume("n3")
    rt.settle()
    assert drop_n1 not in rt.iptables_rules("n3") and drop_n1 not in rt.iptables_rules("n2")
    # Cut, then killed while frozen (the engine refuses to kill a paused container).
    rt.net.isolate("n1")
    rt.pause("n3")
    rt.crash("n3")
    assert rt.members["n3"].exits[-1] == -9
    rt.restart("n3")
    rt.settle()
    assert drop_n1 in rt.iptables_rules("n3")
    rt.net.heal()
    rt.settle()
    assert all(drop_n1 not in rt.iptables_rules(n) for n in ("n2", "n3"))
    assert {rt.status(n) for n in BEACONS} == {"up"}


def test_docker_a_message_the_node_does_not_handle_is_dropped_and_counted(
    cluster: DockerRuntime,
) -> None:
    rt = cluster
    send_from(rt, "client", "k1", Echo(1, "a counter does not handle this"))
    assert wait_for(rt, lambda: rt.stats("k1")["unhandled"] == 1)
    assert rt.status("k1") == "up" and _incr(rt, 50, 0) is not None


@pytest.mark.slow  # ~10 s of wall time, little CPU: in .ci/run's named list
def test_a_container_that_hangs_up_yet_runs_as_the_engine_says_is_reaped(
    cluster: DockerRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under load the engine reports a container's exit late: a node that hung up its
    control channel must not stay "up" without one (a boot waited 240 s for six)."""
    rt = cluster
    polled = rt._poll_exit
    monkeypatch.setattr(rt, "_poll_exit", lambda m: None if m.node_id == "k1" else polled(m))
    control = rt.members["k1"].control
    assert control is not None
    control.close()  # the connection ends; the node exits, the engine says it runs
    assert wait_for(rt, lambda: rt.status("k1") == "crashed", 30_000), rt.status("k1")
    assert rt.telemetry.find(kind="hung_up", node="k1")
    monkeypatch.undo()
    rt.containers["k1"].reload()
    assert rt.containers["k1"].status != "running"
    rt.restart("k1")
    rt.settle()
    assert _incr(rt, 60, 1, timeout_ms=15_000) is not None


def test_an_engine_that_times_out_fails_no_fault() -> None:
    """On a loaded machine the engine answers late or not at all: faults log it and go on."""
    import requests

    from reference.runtime.process import Member

    class Stuck:
        name = "stuck"

        def _timeout(self, *args: object, **kwargs: object) -> None:
            raise requests.exceptions.ReadTimeout("Read timed out. (read timeout=60)")

        kill = pause = unpause = reload = remove = _timeout

    rt = DockerRuntime.__new__(DockerRuntime)  # no engine here: only the fault paths
    rt._cuts = types.SimpleNamespace(lock=lambda node_id: threading.Lock())  # type: ignore[assignment]
    rt.containers = {"n1": Stuck()}
    rt.members = {}
    member = Member("n1", "process", ("10.0.0.2", 7000), status="paused")
    rt._kill(member)  # unpause, then kill: both time out
    rt._signal_stop(member)
    rt._signal_cont(member)
    assert rt._poll_exit(member) is None  # not known to have ended
