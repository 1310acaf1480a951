"""Chapter 5's panel below the queues: open claims and the trace topic's latest steps.

A loyalty member is killed at the instant its claim is committed and not yet
applied (the schedule tests/ch5/test_mq_orderly.py plants): its claim stays
open until the broker's leader tells the member is dead (3 s without a
heartbeat), and the panel lists it with how long it has been open; then its
locks are released and the queue's next holder adopts the claim (the effect
table makes applying it again safe). The latest message of the broker's
trace topic is shown with its steps.
"""

from __future__ import annotations

import asyncio

from tui.app import D11App
from tui.session import Session, SessionConfig
from tui.widgets.chapter import ChapterPanel

MEMBER = "loyalty-sh"


def _text(s: Session) -> str:
    panel = s.frame().chapter_panel
    assert panel is not None
    return "\n".join("".join(text for text, _ in line) for line in panel.lines)


def _killed_mid_claim() -> tuple[Session, tuple[str, int, int, int]]:
    """A ch5 session whose MEMBER died with a claim its broker committed and it had
    not heard of; the claim as (topic, queue, from, to)."""
    s = Session(SessionConfig(chapter="ch5", scenario="steady", seed=1))
    s.step(1_500.0)
    consumer = s.rt.node(MEMBER)
    for _ in range(200_000):  # bounded: events, not time
        state = s.dep.broker_state()
        claims = [
            (t, q, lo, hi)
            for (_, t, q, who), (lo, hi) in (state.claims.items() if state else ())
            if who == MEMBER and consumer.queues[f"{t}/{q}"].claimed_to < hi
        ]
        if claims:
            break
        assert s.rt.step()
    s.kill(MEMBER)
    return s, claims[0]


def test_the_panel_lists_an_open_claim_with_its_age_and_the_latest_trace() -> None:
    s, (topic, qid, lo, hi) = _killed_mid_claim()
    line = f" loyalty {topic[:3]}/{qid} {MEMBER} [{lo},{hi}) 0 s"
    assert line in _text(s).splitlines()
    s.step(1_000.0)  # dead, not told yet (3 s without a heartbeat): the claim is open
    state = s.dep.broker_state()
    assert ("loyalty", topic, qid, MEMBER) in state.claims
    text = _text(s).splitlines()
    assert f" loyalty {topic[:3]}/{qid} {MEMBER} [{lo},{hi}) 1 s" in text, text
    assert f"claims open {len(state.claims)}" in text
    latest = state.trace_topic[-1]
    i = text.index(f"trace {latest.msg_id}")
    assert text[i + 1 :][-1].endswith(f"{latest.node} {latest.step}"), text[i:]
    s.step(5_000.0)  # told: its locks released, the claim adopted by the next holder
    state = s.dep.broker_state()
    assert ("loyalty", topic, qid, MEMBER) not in state.claims
    assert not [line for line in _text(s).splitlines() if f" {MEMBER} [" in line]


def test_the_pilot_draws_the_claims_and_the_trace_in_the_panel() -> None:
    async def run() -> None:
        s, (topic, qid, lo, hi) = _killed_mid_claim()
        s.frame()  # the panel sees the claim as the member dies: its age counts from here
        s.step(2_000.0)
        app = D11App(s, autorun=False)
        async with app.run_test(size=(160, 45)) as pilot:
            await pilot.pause()
            app.show_frame()
            await pilot.pause()
            drawn = str(app.screen.query_one(ChapterPanel).render())
            assert f"{topic[:3]}/{qid} {MEMBER} [{lo},{hi}) 2 s" in drawn, drawn
            assert f"trace {s.dep.broker_state().trace_topic[-1].msg_id}" in drawn

    asyncio.run(run())
