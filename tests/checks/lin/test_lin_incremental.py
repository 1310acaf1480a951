"""The live view's incremental linearizability check agrees with the whole search.

`checks.lin.incremental.IncrementalLin` judges a growing history round by
round, following each wallet just in time. Its verdicts must be exactly
those of `checks.lin.check_calls` on the same history: on generated wallet
histories (linearizable executions, some with a read's balance planted
wrong), at every round, and it must catch the planted violations.
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from checks.history import Event, pair_operations
from checks.lin import check_calls
from checks.lin.checker import prepare
from checks.lin.incremental import IncrementalLin, safe_horizon
from checks.lin.models.accounts import LedgerModel

WALLETS = ("u1", "u2")


def withdrawal(inp: tuple[Any, ...]) -> tuple[str, str, int] | None:
    return (inp[1], inp[2], inp[3]) if inp[0] == "transfer" else None


def execution(
    seed: int, steps: int, plant: bool, deposits: bool = False
) -> tuple[list[Event], dict[str, int]]:
    """A linearizable run of payments and reads on two wallets; maybe one read planted wrong.

    Every operation takes effect at one instant between its invoke and its
    completion; a payment may time out (info) having taken effect or not.
    With `deposits`, u1 is also paid into (its part is then searched whole).
    """
    rng = random.Random(seed)
    balance = {w: rng.choice((30, 50, 100)) for w in WALLETS}
    initial = dict(balance)
    events: list[Event] = []
    busy: dict[str, dict[str, Any]] = {}  # process -> its op in flight
    processes = [f"p{i}" for i in range(5)]

    def emit(type_: str, process: str, f: str, value: Any, **extra: Any) -> None:
        events.append(Event(type_, process, f, value, float(len(events)), len(events), extra))

    for _ in range(steps):
        p = rng.choice(processes)
        op = busy.get(p)
        if op is None:
            w = rng.choice(WALLETS)
            if deposits and w == "u1" and rng.random() < 0.15:
                value = {"account": w, "amount": rng.choice((5, 10))}
                emit("invoke", p, "deposit", value)
                busy[p] = {"f": "deposit", "value": value, "done": None}
            elif rng.random() < 0.5:
                value = {"from": w, "to": f"{w}>out", "amount": rng.choice((5, 10, 20, 25))}
                emit("invoke", p, "transfer", value)
                busy[p] = {"f": "transfer", "value": value, "done": None}
            else:
                emit("invoke", p, "read", [w])
                busy[p] = {"f": "read", "w": w, "done": None}
        elif op["done"] is None and rng.random() < 0.6:  # its instant of effect
            if op["f"] == "read":
                op["done"] = {op["w"]: balance[op["w"]]}
            elif op["f"] == "deposit":
                balance[op["value"]["account"]] += op["value"]["amount"]
                op["done"] = "ok"
            else:
                v = op["value"]
                funded = balance[v["from"]] >= v["amount"]
                if funded:
                    balance[v["from"]] -= v["amount"]
                op["done"] = "ok" if funded else "insufficient-funds"
        elif op["done"] is None and op["f"] == "transfer" and rng.random() < 0.2:
            emit("info", p, "transfer", op["value"])  # timed out, never took effect
            del busy[p]
        elif op["done"] is not None:
            if op["f"] == "read":
                emit("ok", p, "read", op["done"])
            elif op["f"] == "deposit":
                emit("ok", p, "deposit", op["value"])
            elif op["done"] == "ok":
                emit("info" if rng.random() < 0.2 else "ok", p, "transfer", op["value"])
            else:
                emit("fail", p, "transfer", op["value"], error="insufficient-funds")
            del busy[p]
    for p, op in busy.items():  # the run ends: what is in flight is indefinite
        emit("info", p, op["f"], op.get("value"))
    if plant:
        reads = [i for i, e in enumerate(events) if e.type == "ok" and e.f == "read"]
        if reads:
            i = rng.choice(reads)
            e = events[i]
            ((w, cents),) = e.value.items()
            events[i] = Event(e.type, e.process, e.f, {w: cents + 5}, e.time_ms, e.index)
    return events, initial


def whole(events: list[Event], model: LedgerModel) -> Any:
    calls, _ = prepare(pair_operations(events), model)
    return check_calls(calls, model, timeout_s=60).valid


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(
    seed=st.integers(0, 10**6),
    steps=st.integers(5, 90),
    plant=st.booleans(),
    cuts=st.lists(st.integers(1, 90), max_size=6),
    deposits=st.booleans(),
)
def test_every_round_agrees_with_the_whole_search(
    seed: int, steps: int, plant: bool, cuts: list[int], deposits: bool
) -> None:
    events, initial = execution(seed, steps, plant, deposits)
    model = LedgerModel(initial)
    live = IncrementalLin(model, withdrawal)
    for k in [*sorted(c for c in cuts if c < len(events)), len(events)]:
        seen = events[:k]
        calls, _ = prepare(pair_operations(seen), model)
        got = live.check(calls, safe_horizon(seen))
        if not deposits:
            assert got.searched == 0, "every wallet part is followed just in time"
        assert got.valid == whole(events[: got.horizon], model), (k, got)
    if not plant:
        assert got.valid is True


def test_a_planted_wrong_read_is_caught_and_the_part_named() -> None:
    caught = 0
    for seed in range(40):
        events, initial = execution(seed, 80, plant=True)
        model = LedgerModel(initial)
        calls, _ = prepare(pair_operations(events), model)
        got = IncrementalLin(model, withdrawal).check(calls, safe_horizon(events))
        expected = whole(events, model)
        assert got.valid == expected
        if got.valid is False:
            caught += 1
            assert got.failing is not None and got.failing[0] in WALLETS
    assert caught >= 20, caught
