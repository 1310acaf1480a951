"""A recording context for unit-testing a node without any runtime.

In the spirit of etcd raft's tests: call a handler, then look at what the node
asked for (messages, timers, work, trace events) and assert on it.
"""

from __future__ import annotations

import random
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from reference.codec import Message, decode, encode
from reference.disk.sim import SimDisk
from reference.node import NodeId


@dataclass
class RecordingContext:
    """Implements `reference.node.Context`; records every request."""

    node_id: NodeId = "n1"
    seed: int = 0
    clock_ms: float = 0.0
    disk: SimDisk = field(default_factory=SimDisk)
    check_codec: bool = True  # round-trip every sent message through the codec
    sent: list[tuple[NodeId, Message]] = field(default_factory=list)
    timers: dict[Hashable, float] = field(default_factory=dict)  # tag -> due time
    worked_ms: float = 0.0
    counters: dict[str, int] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    traces: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)

    def now_ms(self) -> float:
        return self.clock_ms

    def send(self, dst: NodeId, msg: Message) -> None:
        if self.check_codec:
            assert decode(encode(msg)) == msg, f"{msg!r} does not round-trip"
        self.sent.append((dst, msg))

    def set_timer(self, delay_ms: float, tag: Hashable) -> None:
        assert delay_ms >= 0, f"timer {tag!r} set {delay_ms} ms in the past"
        self.timers[tag] = self.clock_ms + delay_ms

    def cancel_timer(self, tag: Hashable) -> None:
        self.timers.pop(tag, None)

    def work(self, duration_ms: float) -> None:
        assert duration_ms >= 0
        self.worked_ms += duration_ms

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def observe(self, name: str, value: float) -> None:
        self.samples.setdefault(name, []).append(value)

    def trace(self, kind: str, **fields: Any) -> None:
        self.traces.append((kind, fields))

    def take_sent(self) -> list[tuple[NodeId, Message]]:
        """Return and clear the messages sent so far."""
        out, self.sent = self.sent, []
        return out
