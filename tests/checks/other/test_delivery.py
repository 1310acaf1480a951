"""The delivery checker: each violation planted and caught; clean runs pass."""

from __future__ import annotations

import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st
from other_builder import History

from checks.delivery import check_delivery


def produce(h: History, mid: str, key: str | None = "k", fate: str = "commit") -> History:
    h.op("producer", "send", {"id": mid, "key": key})
    if fate in ("commit", "rollback"):
        h.op("producer", fate, {"id": mid})
    elif fate == "commit-info":
        h.invoke("producer", "commit", {"id": mid}).info("producer", "commit", None)
    return h


def consume(h: History, mid: str, group: str = "g", apply: bool = True, key: str = "k") -> History:
    h.op("consumer", "receive", None, {"id": mid, "key": key, "group": group})
    if apply:
        h.op("consumer", "apply", {"id": mid, "group": group})
    return h


def problems(h: History) -> dict[str, int]:
    v = check_delivery(h.events)
    json.dumps(v.to_json())
    return v.details["problems"]


def test_clean_history_with_duplicates_is_valid() -> None:
    h = History()
    produce(h, "m1")
    produce(h, "m2")
    produce(h, "m3", fate="rollback")
    produce(h, "m4", fate="commit-info")  # indeterminate: may be delivered or not
    h.op("producer", "publish", {"id": "m5", "key": "other"})
    for mid in ("m1", "m2", "m4"):
        consume(h, mid)
    h.op("consumer", "receive", None, {"id": "m2", "key": "k", "group": "g"})  # redelivery
    consume(h, "m5", key="other")
    v = check_delivery(h.events)
    assert v.valid is True, v.summary
    assert v.details["problems"] == {"duplicate-delivery": 1}
    assert "more than once (allowed)" in v.summary
    assert v.details["indeterminate"] == 1


def test_lost_committed_message() -> None:
    h = produce(History(), "m1")
    produce(h, "m2", key="j")
    consume(h, "m2", key="j")
    v = check_delivery(h.events)
    assert v.valid is False and v.details["problems"] == {"lost": 1}
    assert v.witness[0]["id"] == "m1"


def test_rolled_back_message_delivered_and_phantom() -> None:
    h = produce(History(), "m1", fate="rollback")
    consume(h, "m1")
    consume(h, "ghost")
    assert problems(h) == {"rolled-back-delivered": 1, "phantom": 1}


def test_per_key_order_violation() -> None:
    h = produce(History(), "m1")
    produce(h, "m2")  # m1 committed before m2 was sent: m1 must come first
    consume(h, "m2")
    consume(h, "m1")
    v = check_delivery(h.events)
    assert v.details["problems"] == {"order": 1}
    assert "received before m1" in v.witness[0]["words"]
    # Different keys: no order between them.
    h2 = produce(History(), "m1", key="a")
    produce(h2, "m2", key="b")
    consume(h2, "m2", key="b")
    consume(h2, "m1", key="a")
    assert check_delivery(h2.events).valid is True


def test_effect_applied_twice_and_effect_lost() -> None:
    h = produce(History(), "m1")
    produce(h, "m2", key="z")
    consume(h, "m1")
    consume(h, "m1", apply=True)  # redelivered and applied again: not idempotent
    consume(h, "m2", key="z", apply=False)
    assert problems(h) == {"duplicate-delivery": 1, "applied-twice": 1, "effect-lost": 1}


def test_groups_are_judged_separately() -> None:
    h = produce(History(), "m1")
    consume(h, "m1", group="billing")
    v = check_delivery(h.events, groups=["billing", "points"])
    assert v.valid is False
    assert v.witness[0]["group"] == "points" and v.witness[0]["kind"] == "lost"


def test_no_messages_is_unknown() -> None:
    assert check_delivery(History().op(0, "read", None, {}).events).valid == "unknown"


# --- property: an at-least-once, per-key FIFO broker with an idempotent
# consumer is valid; removing a delivery or double-applying is caught.


def broker_run(seed: int) -> History:
    rng = random.Random(seed)
    h = History()
    queue: list[tuple[str, str]] = []
    for i in range(rng.randint(1, 12)):
        mid, key = f"m{i}", rng.choice("abc")
        fate = rng.choice(["commit", "commit", "rollback", "commit-info"])
        produce(h, mid, key=key, fate=fate)
        if fate == "commit" or (fate == "commit-info" and rng.random() < 0.5):
            queue.append((mid, key))
    applied: set[str] = set()
    for mid, key in queue:  # FIFO, so per-key order holds
        for _ in range(rng.choice([1, 1, 2])):  # redeliveries
            h.op("consumer", "receive", None, {"id": mid, "key": key, "group": "g"})
            if mid not in applied:  # the idempotent consumer
                applied.add(mid)
                h.op("consumer", "apply", {"id": mid, "group": "g"})
    return h


@settings(max_examples=50)
@given(st.integers(0, 100_000), st.sampled_from(["drop-receive", "double-apply"]))
def test_broker_runs_valid_and_mutations_caught(seed: int, mutation: str) -> None:
    h = broker_run(seed)
    assert check_delivery(h.events).valid in (True, "unknown")
    receives = [i for i, e in enumerate(h.events) if e.f == "receive" and e.type == "ok"]
    if not receives:
        return
    i = receives[0]
    events = list(h.events)
    if mutation == "drop-receive":
        mid = events[i].value["id"]
        # drop every receipt and apply of it: each completion and its invoke just before
        gone = {
            j + d
            for j, e in enumerate(events)
            if e.type == "ok" and e.f in ("receive", "apply") and _mid(e) == mid
            for d in (-1, 0)
        }
        events = [e for j, e in enumerate(events) if j not in gone]
        committed = any(e.f == "commit" and e.type == "ok" and _mid(e) == mid for e in events)
        if not committed:
            return  # an indeterminate message may be lost
    else:
        mid = events[i].value["id"]
        events += History().op("consumer", "apply", {"id": mid, "group": "g"}).events
    events = [type(e)(e.type, e.process, e.f, e.value, float(j), j) for j, e in enumerate(events)]
    assert check_delivery(events, groups=["g"]).valid is False


def _mid(e: object) -> object:
    v = getattr(e, "value", None)
    return v.get("id") if isinstance(v, dict) else None


def test_the_summary_names_the_groups_whose_effects_it_judged() -> None:
    """`d11 run ch5 --scenario consumer-lag --variant no-dedup --seed 2` printed
    "delivery PASS ... every recorded effect applied once" beside "settlement
    EXPECTED FAILURE (settled-twice x65)": settlement records no applies."""
    h = produce(History(), "m1")
    consume(h, "m1", group="loyalty")
    consume(h, "m1", group="settlement", apply=False)
    consume(h, "m1", group="settlement", apply=False)  # redelivered: not judged here
    v = check_delivery(h.events)
    assert v.valid is True, v.summary
    assert "every effect recorded (loyalty) applied once" in v.summary, v.summary
    assert "settlement records no effects here, so this check does not judge them" in v.summary
    h2 = produce(History(), "m1")
    consume(h2, "m1", group="loyalty")
    assert "every recorded effect applied once" in check_delivery(h2.events).summary
