"""Nemesis schedules: generated deterministically, valid, replayable from a file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from checks.nemesis import (
    NEMESES,
    Schedule,
    ScheduleError,
    Targets,
    heal_everything,
    install,
    parse_nemeses,
    random_schedule,
)

NODES = ("a", "b", "c", "d", "e")
TARGETS = Targets(
    nodes=NODES,
    cells={"hz-1": ("a", "b"), "sh-1": ("c", "d"), "sz-1": ("e",)},
    cities={"hz": ("a", "b"), "sh": ("c", "d"), "sz": ("e",)},
)


class FakeNet:
    def __init__(self) -> None:
        self.cut_links: set[tuple[str, str]] = set()
        self.calls: list[tuple[str, Any]] = []
        self.rates = (0.0, 0.0, 0.0)  # loss, duplicate, reorder

    def partition(self, groups: list[set[str]], one_way: bool = False) -> None:
        self.calls.append(("partition", (groups, one_way)))
        for i, a in enumerate(groups):
            for j, b in enumerate(groups):
                if i < j or (i > j and not one_way):
                    self.cut_links |= {(x, y) for x in a for y in b}

    def cut(self, src: list[str], dst: list[str], one_way: bool = True) -> None:
        self.calls.append(("cut", (src, dst)))
        self.cut_links |= {(s, d) for s in src for d in dst}

    def isolate(self, target: str) -> None:
        self.calls.append(("isolate", target))

    def heal(self) -> None:
        self.calls.append(("heal", None))
        self.cut_links.clear()

    def set_message_faults(
        self, loss: float = 0.0, duplicate: float = 0.0, reorder: float = 0.0
    ) -> None:
        self.calls.append(("net", (loss, duplicate, reorder)))
        self.rates = (loss, duplicate, reorder)


class FakeBackend:
    """Just enough of reference.runtime.base.Backend to watch a nemesis act."""

    def __init__(self) -> None:
        self.net = FakeNet()
        self.now_ms = 0.0
        self.timers: list[tuple[float, Any]] = []
        self.statuses = {n: "up" for n in NODES}
        self.clocks: dict[str, tuple[float, float]] = {}

    def call_at(self, t_ms: float, fn: Any) -> None:
        self.timers.append((t_ms, fn))

    def run_all(self) -> None:
        for t_ms, fn in sorted(self.timers, key=lambda x: x[0]):
            self.now_ms = t_ms
            fn()

    def status(self, node: str) -> str:
        return self.statuses[node]

    def crash(self, node: str) -> None:
        self.statuses[node] = "crashed"

    def restart(self, node: str) -> None:
        self.statuses[node] = "up"

    def pause(self, node: str) -> None:
        self.statuses[node] = "paused"

    def resume(self, node: str) -> None:
        self.statuses[node] = "up"

    def set_clock(self, node: str, skew_ms: float = 0.0, drift_ppm: float = 0.0) -> None:
        self.clocks[node] = (skew_ms, drift_ppm)


def test_unknown_nemesis_is_named_in_the_error() -> None:
    with pytest.raises(ScheduleError, match="'partition-moon'"):
        parse_nemeses("kill,partition-moon")
    assert parse_nemeses("kill, pause ,none") == ("kill", "pause")


@given(seed=st.integers(0, 2**32), kinds=st.lists(st.sampled_from(sorted(NEMESES)), min_size=1))
def test_generated_schedules_are_deterministic_paired_and_in_bounds(
    seed: int, kinds: list[str]
) -> None:
    one = random_schedule(kinds, TARGETS, seed=seed, start_ms=1000, end_ms=20_000)
    two = random_schedule(kinds, TARGETS, seed=seed, start_ms=1000, end_ms=20_000)
    assert one == two
    for action in one.actions:
        assert 1000 <= action.at_ms <= 20_000
    # Every fault is exactly one start and one end, the end after the start.
    for start_ms, end_ms, fault in one.intervals():
        actions = [a for a in one.actions if a.fault == fault]
        assert len(actions) == 2 and start_ms <= end_ms
    if set(kinds) == {"none"}:
        assert one.actions == ()


def test_different_seeds_give_different_schedules() -> None:
    kinds = ["kill", "partition-halves", "pause"]
    schedules = [
        random_schedule(kinds, TARGETS, seed=s, start_ms=0, end_ms=30_000) for s in range(5)
    ]
    assert any(s.actions != schedules[0].actions for s in schedules[1:])


def _heard_by(links: list[list[str]], node: str) -> set[str]:
    return {n for n in NODES if [n, node] not in links}


def test_ring_gives_every_node_a_distinct_majority() -> None:
    schedule = random_schedule(["partition-ring"], TARGETS, seed=3, start_ms=0, end_ms=5000)
    cut = next(a for a in schedule.actions if a.op == "cut")
    views = [frozenset(_heard_by(cut.params["links"], n)) for n in NODES]
    assert all(len(v) == 3 for v in views)  # a majority of 5, itself included
    assert len(set(views)) == len(NODES)


def test_bridge_node_keeps_every_link() -> None:
    schedule = random_schedule(["partition-bridge"], TARGETS, seed=11, start_ms=0, end_ms=5000)
    cut = next(a for a in schedule.actions if a.op == "cut")
    bridge = cut.params["bridge"]
    assert all(bridge not in link for link in cut.params["links"])
    assert cut.params["links"], "the two halves must be cut from each other"


def test_install_runs_actions_and_records_them_as_nemesis_events() -> None:
    schedule = random_schedule(
        ["kill", "pause", "partition-halves", "skew"], TARGETS, seed=5, start_ms=0, end_ms=20_000
    )
    backend, events = FakeBackend(), []
    install(schedule, backend, events.append)
    backend.run_all()
    assert [e["f"] for e in events] == [a.op for a in schedule.actions]
    assert all(e["process"] == "nemesis" and e["type"] == "info" for e in events)
    assert [e["time_ms"] for e in events] == [a.at_ms for a in schedule.actions]
    # Every fault ended: all nodes up, links healed, clocks reset.
    assert set(backend.statuses.values()) == {"up"}
    assert not backend.net.cut_links


def test_heal_everything_restores_nodes_links_clocks_and_message_rates() -> None:
    backend = FakeBackend()
    backend.crash("a")
    backend.pause("b")
    backend.set_clock("c", skew_ms=500.0)
    backend.net.partition([{"a"}, {"b", "c"}])
    backend.net.set_message_faults(loss=0.2, reorder=0.5)
    heal_everything(backend, NODES)
    assert set(backend.statuses.values()) == {"up"}
    assert not backend.net.cut_links
    assert backend.clocks["c"] == (0.0, 0.0)
    assert backend.net.rates == (0.0, 0.0, 0.0)


def test_message_fault_schedules_speak_one_api_on_every_backend() -> None:
    """Loss, duplicate, reorder: `net.set_message_faults`, never a backend's config."""
    schedule = random_schedule(
        ["loss", "duplicate", "reorder"], TARGETS, seed=4, start_ms=0, end_ms=20_000
    )
    backend = FakeBackend()
    install(schedule, backend)
    backend.run_all()
    rates = [args for op, args in backend.net.calls if op == "net"]
    assert len(rates) == len(schedule.actions) > 0
    assert all(sum(r > 0 for r in rate) == 1 for rate in rates[::2])  # one kind at a time
    assert backend.net.rates == (0.0, 0.0, 0.0)  # every fault ended


def test_schedule_file_round_trips(tmp_path: Path) -> None:
    schedule = random_schedule(sorted(NEMESES), TARGETS, seed=9, start_ms=0, end_ms=60_000)
    path = tmp_path / "schedule.json"
    schedule.save(path)
    assert Schedule.load(path) == schedule
    fewer = schedule.without_faults(schedule.faults()[:1])
    assert len(fewer.actions) == len(schedule.actions) - 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a JSON schedule"),
        ('{"actions": 3}', "'actions' list"),
        ('{"actions": [{"op": "explode", "at_ms": 1}]}', "action 0: unknown op 'explode'"),
        ('{"actions": [{"op": "crash", "at_ms": -1, "node": "a"}]}', "at_ms must be"),
        ('{"actions": [{"op": "crash", "at_ms": 5}]}', "needs node"),
        ('{"actions": [{"op": "cut", "at_ms": 5, "links": [["a"]]}]}', "links must be"),
        ('{"version": 7, "actions": []}', "version 7"),
    ],
)
def test_bad_schedule_files_give_clear_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ScheduleError, match=message):
        Schedule.load(path)


def test_missing_schedule_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ScheduleError, match="cannot read"):
        Schedule.load(tmp_path / "nope.json")
    json.dumps(NEMESES)  # the catalogue is plain data, shown by the CLI
