"""The broker state the TUI's queue panel and the final-read gate read is the
leader that can commit, not a leader cut off from the rest.

Before: `broker_state()` gave the first replica up that called itself leader.
A leader whose city is cut keeps that role until it hears a higher ballot, so
through a whole cut of its city the panel showed its frozen state (lag, halves)
while the replicas elected in the other cities went on committing (found by a
newcomer's trial in `d11 tui double11`).
"""

from __future__ import annotations

from reference.mq.broker import BrokerReplica
from tui.session import Session, SessionConfig


def test_the_state_shown_is_the_new_leaders_not_the_cut_off_ones() -> None:
    s = Session(SessionConfig(chapter="ch5", scenario="steady", seed=1))
    s.step(2_000.0)
    leaders = [r for r in s.dep.brokers if s.rt.node(r).role == "leader"]
    assert len(leaders) == 1
    s.cut_off(leaders[0])  # its city cut from the other two
    s.step(6_000.0)
    nodes = {r: s.rt.node(r) for r in s.dep.brokers}
    both = [r for r, n in nodes.items() if isinstance(n, BrokerReplica) and n.role == "leader"]
    assert leaders[0] in both and len(both) == 2, both  # the cut-off one has not stepped down
    [elected] = [r for r in both if r != leaders[0]]
    assert s.dep.broker_state() is nodes[elected].machine
