"""Factories by value: closures and lambdas cross into node processes, checked on arrival."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from runtime_helpers import Recorder, recorder, send_from, wait_for

from reference.runtime.examples import Counted, CounterNode, Incr
from reference.runtime.process import ProcessRuntime, RuntimeUsageError
from reference.runtime.spec import (
    Detached,
    NodeSpec,
    PickledSpec,
    SpecError,
    pickle_factory,
    pickle_value,
    unpickle,
)

SECRET = bytes(range(32))


class Config:
    """A config object holding a lambda, as the chapters' StoreConfig does."""

    def __init__(self, start: int) -> None:
        self.make = lambda: CounterNode()
        self.start = start


def _closure_factory(config: Config):  # type: ignore[no-untyped-def]
    return lambda _nid: config.make()


@pytest.fixture
def cluster() -> Iterator[ProcessRuntime]:
    with ProcessRuntime(seed=3) as rt:
        rt.add_node("n1", _closure_factory(Config(start=0)))
        rt.add_node("n2", "reference.runtime.examples:counter")
        rt.add_local_node("client", recorder)
        yield rt


def _incr(rt: ProcessRuntime, node: str, req_id: int, amount: int) -> int | None:
    box = rt.node("client")
    assert isinstance(box, Recorder)
    send_from(rt, "client", node, Incr(req_id, amount))
    got = lambda: [m for m in box.replies(Counted) if m.req_id == req_id]  # noqa: E731
    return got()[0].value if wait_for(rt, lambda: bool(got())) else None


def test_a_closure_runs_as_a_process_and_is_rebuilt_at_every_restart(
    cluster: ProcessRuntime,
) -> None:
    rt = cluster
    assert isinstance(rt.members["n1"].spec, PickledSpec)
    assert isinstance(rt.members["n2"].spec, NodeSpec)  # nameable: still by name
    rt.start()
    assert _incr(rt, "n1", 1, 5) == 5
    rt.crash("n1")
    rt.restart("n1")
    rt.settle()
    assert _incr(rt, "n1", 2, 2) == 7  # a new process built it again; the disk kept 5
    copy = rt.node_snapshot("n1")
    assert isinstance(copy, CounterNode) and copy.value == 7
    assert rt.node_snapshot("client") is rt.node("client")


def test_a_tampered_factory_file_is_refused_at_boot(cluster: ProcessRuntime) -> None:
    rt = cluster
    spec = rt.members["n1"].spec
    assert isinstance(spec, PickledSpec)
    path = rt.data_dir / spec.file
    path.write_bytes(pickle_value(lambda _nid: CounterNode()))  # someone else's code
    with pytest.raises(RuntimeUsageError, match="n1 failed to start"):
        rt.start()
    assert "does not match its config: refused" in rt.log_path("n1").read_text()


def test_with_a_secret_a_file_must_be_sealed_by_the_cluster(tmp_path: Path) -> None:
    spec = pickle_factory(lambda _nid: CounterNode(), "n1", tmp_path, SECRET)
    assert spec.mac
    spec.resolve(tmp_path, SECRET, "n1")  # sealed by this cluster: accepted
    with pytest.raises(SpecError, match="not sealed by the cluster"):
        spec.resolve(tmp_path, bytes(32), "n1")  # another cluster's secret
    with pytest.raises(SpecError, match="not sealed by the cluster"):
        spec.resolve(tmp_path, SECRET, "n2")  # the seal binds the node it is for
    with pytest.raises(SpecError, match="must be a name in the data dir"):
        PickledSpec.from_json({"pickled": "../n1.factory", "sha256": "", "mac": ""})


def test_what_stays_in_the_harness_is_named_when_a_node_reaches_for_it() -> None:
    class Harness:
        now_ms = 5.0

    harness = Harness()
    closure = unpickle(pickle_value(lambda: harness.now_ms, stays_behind=[harness]), "f")
    with pytest.raises(RuntimeError, match=r"Harness\.now_ms: that object stays in the harness"):
        closure()
    assert isinstance(unpickle(pickle_value(Detached("x")), "d"), Detached)


def test_a_factory_that_cannot_be_pickled_is_a_clear_error(cluster: ProcessRuntime) -> None:
    lock = threading.Lock()
    with pytest.raises(SpecError, match=r"the factory of n3 cannot be pickled.*add_local_node"):
        cluster.add_node("n3", lambda _nid: (lock, CounterNode())[1])
