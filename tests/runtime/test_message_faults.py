"""Message faults on real links: lost, duplicated, held back at the sender, counted.

The transport tests drive two transports on loopback in one asyncio loop,
with a fixed seed; the runtime tests set the faults on real node processes
through the control channel and read the links' counters back.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from runtime_helpers import heard, link_counts, start_beacons, wait_for

from reference.codec import Message
from reference.net.sim import NetConfig
from reference.net.topology import Topology
from reference.node import Node
from reference.runtime.examples import Incr
from reference.runtime.process import ProcessRuntime
from reference.runtime.sim import SimRuntime
from reference.runtime.transport import (
    REORDER_DELAY_MS,
    LinkStats,
    MessageFaults,
    Transport,
    TransportConfig,
)

LOG = logging.getLogger("test.message_faults")
MESSAGES = 40
SETTLE_S = 2 * REORDER_DELAY_MS[1] / 1000.0 + 0.2  # every held copy is due by then


async def _exchange(
    faults: MessageFaults, *, seed: int = 1, cut_after_send: bool = False
) -> tuple[list[int], LinkStats]:
    """Transport a sends MESSAGES numbered messages to transport b; what b got, a's counts."""
    got: list[int] = []

    async def into_b(src: str, msg: Message) -> None:
        assert isinstance(msg, Incr)
        got.append(msg.req_id)

    async def into_a(src: str, msg: Message) -> None:
        raise AssertionError("nothing is sent to a")

    b = Transport(TransportConfig("b", "127.0.0.1", 0, "test", None), into_b, None, LOG)
    await b.start()
    config = TransportConfig("a", "127.0.0.1", 0, "test", None, addrs={"b": ("127.0.0.1", b.port)})
    a = Transport(config, into_a, None, LOG, random.Random(seed))
    a.set_message_faults(faults)
    try:
        for i in range(MESSAGES):
            a.send("b", Incr(i, 1))
        if cut_after_send:
            a.set_blocks(frozenset({"b"}), frozenset())
        await asyncio.sleep(SETTLE_S)
        return got, a.stats["b"]
    finally:
        a.close()
        b.close()


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_no_faults_change_nothing() -> None:
    got, stats = _run(_exchange(MessageFaults()))
    assert got == list(range(MESSAGES))
    assert stats == LinkStats(sent=MESSAGES)


def test_loss_one_delivers_nothing_and_counts_every_message() -> None:
    got, stats = _run(_exchange(MessageFaults(loss=1.0)))
    assert got == []
    assert stats.dropped_loss == MESSAGES and stats.sent == 0


def test_loss_is_drawn_from_the_seeded_stream() -> None:
    one, stats = _run(_exchange(MessageFaults(loss=0.5), seed=3))
    two, _ = _run(_exchange(MessageFaults(loss=0.5), seed=3))
    other, _ = _run(_exchange(MessageFaults(loss=0.5), seed=4))
    assert one == two != other  # the same messages lost for the same seed
    assert one == sorted(one) and 0 < len(one) < MESSAGES
    assert stats.dropped_loss + stats.sent == MESSAGES


def test_duplicate_one_delivers_every_message_twice() -> None:
    got, stats = _run(_exchange(MessageFaults(duplicate=1.0)))
    assert got == [i for i in range(MESSAGES) for _ in range(2)]
    assert stats.duplicated == MESSAGES and stats.sent == 2 * MESSAGES


def test_reorder_lets_later_messages_overtake_held_ones() -> None:
    got, stats = _run(_exchange(MessageFaults(reorder=1.0)))
    assert sorted(got) == list(range(MESSAGES))  # all arrive, once each
    assert got != sorted(got)  # but not in the order sent
    assert stats.reordered == MESSAGES and stats.sent == MESSAGES


def test_a_held_message_due_on_a_cut_link_is_dropped_as_cut() -> None:
    got, stats = _run(_exchange(MessageFaults(reorder=1.0), cut_after_send=True))
    assert got == []
    assert stats.reordered == MESSAGES and stats.dropped_cut == MESSAGES and stats.sent == 0


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"loss": 1.5}, ValueError),
        ({"duplicate": -0.1}, ValueError),
        ({"reorder": float("nan")}, ValueError),
        ({"loss": "0.3"}, TypeError),
        ({"loss": True}, TypeError),
    ],
)
def test_message_faults_are_probabilities(fields: dict[str, Any], error: type) -> None:
    with pytest.raises(error, match="message fault"):
        MessageFaults(**fields)
    with pytest.raises(error, match="message fault"):
        MessageFaults.from_json({"loss": 0.0, "duplicate": 0.0, "reorder": 0.0, **fields})
    with pytest.raises(ValueError, match="lack"):
        MessageFaults.from_json({"loss": 0.1})


def test_the_simulator_takes_the_same_call() -> None:
    rt = SimRuntime(Topology.build({"hangzhou": {"hz-1": ["a"]}}), seed=1)
    rt.add_node("a", lambda node_id: Node())
    rt.net.set_message_faults(loss=0.25, reorder=0.5)
    assert (rt.net.config.loss, rt.net.config.duplicate, rt.net.config.reorder) == (0.25, 0, 0.5)
    rt.net.heal()  # links only
    assert rt.net.config.loss == 0.25
    with pytest.raises(ValueError, match="probability"):
        rt.net.set_message_faults(duplicate=2.0)
    assert rt.net.config.duplicate == 0.0  # nothing changed
    rt.net.set_message_faults()
    assert rt.net.config == NetConfig()
    assert [e.fields for e in rt.telemetry.find(kind="net")] == [
        {"loss": 0.25, "duplicate": 0.0, "reorder": 0.5},
        {"loss": 0.0, "duplicate": 0.0, "reorder": 0.0},
    ]


# -- on real processes ------------------------------------------------------------

NODES = ["n1", "n2", "n3"]


@pytest.fixture
def beacons() -> Iterator[ProcessRuntime]:
    with start_beacons(NODES) as rt:
        yield rt


def _counts(rt: ProcessRuntime, nodes: list[str] = NODES) -> Counter[str]:
    return link_counts(rt, nodes)


def _during(rt: ProcessRuntime, duration_ms: float) -> dict[str, int]:
    """What the counters counted during `duration_ms` of running."""
    before = _counts(rt)
    rt.run_for(duration_ms)
    after = _counts(rt)
    return {name: after[name] - before.get(name, 0) for name in after}


def test_loss_on_processes_drops_its_share_until_reset_and_heal_leaves_it(
    beacons: ProcessRuntime,
) -> None:
    rt = beacons
    rt.run_for(100)
    rt.net.set_message_faults(loss=0.3)
    rt.settle()
    delta = _during(rt, 1_000)
    share = delta["dropped_loss"] / (delta["dropped_loss"] + delta["sent"])
    assert 0.22 < share < 0.38, (share, delta)
    assert rt.net.link_stats()[("n1", "n2")].dropped > 0
    rt.net.heal()  # about links, not messages
    rt.settle()
    assert _during(rt, 300)["dropped_loss"] > 0

    rt.net.set_message_faults(duplicate=0.5, reorder=0.5)
    rt.settle()
    delta = _during(rt, 300)
    assert delta["dropped_loss"] == 0 and delta["duplicated"] > 0 and delta["reordered"] > 0
    assert rt.net.link_stats()[("n2", "n3")].duplicated > 0

    rt.net.set_message_faults()
    rt.settle()
    rt.run_for(2 * REORDER_DELAY_MS[1])  # what was held back is out
    delta = _during(rt, 300)
    assert delta["dropped_loss"] == delta["duplicated"] == delta["reordered"] == 0
    before = heard(rt, "client", NODES)  # the client's requests and their replies get through
    rt.run_for(200)
    after = heard(rt, "client", NODES)
    assert all(after[d][s] > before[d].get(s, 0) for d in NODES for s in NODES if s != d)
    kinds = [(e.kind, e.fields["loss"]) for e in rt.telemetry.find(kind="net")]
    assert kinds == [("net", 0.3), ("net", 0.0), ("net", 0.0)]


def test_a_restarted_node_gets_the_setting_and_bad_settings_are_refused(
    beacons: ProcessRuntime,
) -> None:
    rt = beacons
    rt.net.set_message_faults(loss=1.0)
    rt.crash("n1")
    rt.restart("n1")
    rt.settle()
    before = _counts(rt, ["n1"])
    assert before["sent"] == 0  # faulted from its first send: the boot config says so
    rt.run_for(300)
    after = _counts(rt, ["n1"])
    assert after["sent"] == 0  # the new process loses everything too
    assert after["dropped_loss"] > before["dropped_loss"]

    control = rt.members["n2"].control
    assert control is not None
    bad = [
        {"loss": 2.0, "duplicate": 0.0, "reorder": 0.0},
        {"loss": "all", "duplicate": 0.0, "reorder": 0.0},
        {"loss": 0.5},
    ]
    for fields in bad:
        with pytest.raises(RuntimeError, match="message fault"):
            rt.loop.run_until_complete(control.command("net", **fields))
    assert wait_for(rt, lambda: "bad control command 'net'" in rt.log_path("n2").read_text())
    assert rt.status("n2") == "up"
    assert _during(rt, 200)["sent"] == 0  # still the last good setting: lose everything
    with pytest.raises(ValueError, match="probability"):
        rt.net.set_message_faults(loss=1.5)
    with pytest.raises(TypeError, match="number"):
        rt.net.set_message_faults(reorder=None)  # type: ignore[arg-type]
