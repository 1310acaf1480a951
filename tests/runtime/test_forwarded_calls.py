"""A harness callback captured by a node factory runs in the harness, not in a copy.

Chapter 6's sidecars record every degrade decision through the deployment's
`record`; in a node process that call used to append to a pickled copy of
the deployment, and the history never saw it (issue 14).
"""

from __future__ import annotations

from typing import Any

import pytest
from runtime_helpers import wait_for

from checks.harness.real import RECORD_CHANNEL, forward_records
from reference.runtime.examples import CounterNode
from reference.runtime.process import ProcessRuntime
from reference.runtime.spec import (
    Detached,
    Forwarded,
    ForwardedCall,
    pickle_value,
    set_forward_sink,
    unpickle,
)


class Owner:
    """What a deployment is to its nodes: a `record` that appends to its history."""

    def __init__(self) -> None:
        self.history: list[dict[str, Any]] = []

    def record(self, event: dict[str, Any]) -> None:
        self.history.append(event)

    def size(self) -> int:
        return len(self.history)


def test_only_the_named_method_crosses_as_a_forwarded_call() -> None:
    owner = Owner()
    config = {"record": owner.record, "size": owner.size}
    blob = pickle_value(config, stays_behind=[Forwarded(owner, "record", "rec")])
    copy = unpickle(blob, "n1")
    assert isinstance(copy["record"], ForwardedCall) and copy["record"].channel == "rec"
    assert copy["size"]() == 0  # any other method still travels with a copy of its owner
    sent: list[tuple[str, tuple[Any, ...]]] = []
    set_forward_sink(lambda channel, args: sent.append((channel, args)))
    try:
        copy["record"]({"f": "x"})
    finally:
        set_forward_sink(None)
    assert sent == [("rec", ({"f": "x"},))] and owner.history == []
    with pytest.raises(RuntimeError, match="outside a node process"):
        copy["record"]({"f": "y"})


def test_a_forwarded_method_on_an_object_that_stays_behind_is_still_forwarded() -> None:
    owner = Owner()
    stays = [owner, Forwarded(owner, "record", "rec")]
    copy = unpickle(pickle_value((owner.record, owner), stays_behind=stays), "n1")
    assert isinstance(copy[0], ForwardedCall) and isinstance(copy[1], Detached)


def _recording_counter(record: Any) -> Any:
    def build(node_id: str) -> CounterNode:
        record({"type": "info", "process": "nemesis", "f": "built", "value": node_id,
                "time_ms": 0.0})  # fmt: skip
        return CounterNode()

    return build


def test_what_a_node_process_records_reaches_the_harness_history() -> None:
    """Each boot of the node, in its own process, records once: both records arrive."""
    owner = Owner()
    with ProcessRuntime(seed=1) as rt:
        forward_records(rt, owner)  # type: ignore[arg-type]
        rt.add_node("n1", _recording_counter(owner.record))
        rt.start()
        assert wait_for(rt, lambda: owner.size() == 1, timeout_ms=30_000.0), owner.history
        rt.crash("n1")
        rt.restart("n1")
        assert wait_for(rt, lambda: owner.size() == 2, timeout_ms=30_000.0), owner.history
    assert [e["value"] for e in owner.history] == ["n1", "n1"]
    assert RECORD_CHANNEL == "record"
