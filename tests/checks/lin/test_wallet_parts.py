"""`wallet_parts` makes the parts the checker makes of the wallet projection.

Chapter 4's `lin` check searches `wallet_parts(ops, ...)`, built in one pass
from the history, and trusts a verdict of linearizable from it; so its parts
must be exactly `split(prepare(project(ops, ...)))`'s: the same keys, initial
states and calls (ids, processes, inputs, outputs, call and return
positions), in the same order. Random wallet histories (payments ok, failed,
unknown, retried under one id, settled by lookups; reads of every account,
some repeating a quiet balance, some wrong) hold it to that.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from checks.history import Event, Operation, pair_operations
from checks.lin.checker import Part, check_parts, prepare, split
from checks.lin.models.accounts import LedgerModel
from checks.lin.models.wallets import project, wallet_parts

WALLETS = ("u1", "u2", "u3")
INITIAL = {"u1": 500, "u2": 300, "u3": 0}


def is_wallet(account: str) -> bool:
    return account.startswith("u")


@st.composite
def wallet_histories(draw: Any) -> list[Event]:
    """Interleaved payments, lookups and full reads, by five processes."""
    events: list[Event] = []
    open_ops: dict[int, tuple[str, Any]] = {}
    paid: list[str] = []

    def emit(etype: str, process: int, f: str, value: Any) -> None:
        events.append(Event(etype, process, f, value, float(len(events)), len(events)))  # type: ignore[arg-type]

    for _ in range(draw(st.integers(1, 40))):
        process = draw(st.integers(0, 4))
        if process in open_ops:  # complete its operation
            f, value = open_ops.pop(process)
            if f == "read":
                balances = {a: draw(st.sampled_from([0, 100, 200, 300, 500])) for a in INITIAL}
                balances["m0"] = draw(st.integers(0, 3)) * 100
                emit("ok", process, "read", balances)
            elif f == "lookup-transfer":
                answers = {pid: draw(st.sampled_from(["applied", "absent"])) for pid in value}
                emit("ok", process, f, answers)
            else:
                emit(draw(st.sampled_from(["ok", "ok", "fail", "info"])), process, f, value)
            continue
        kind = draw(st.sampled_from(["pay", "pay", "retry", "read", "read", "lookup"]))
        if kind == "read":
            open_ops[process] = ("read", None)
            emit("invoke", process, "read", None)
        elif kind == "lookup" and paid:
            asked = draw(st.lists(st.sampled_from(paid), min_size=1, max_size=2, unique=True))
            open_ops[process] = ("lookup-transfer", asked)
            emit("invoke", process, "lookup-transfer", asked)
        else:
            pid = draw(st.sampled_from(paid)) if kind == "retry" and paid else f"p{len(paid)}"
            paid.append(pid)
            cents = draw(st.sampled_from([0, 100, 200, 300]))
            value = {"id": pid, "from": draw(st.sampled_from(WALLETS)), "to": "m0"}
            value["amount_cents" if draw(st.booleans()) else "amount"] = cents
            open_ops[process] = ("transfer", value)
            emit("invoke", process, "transfer", value)
    return events


def reference(ops: list[Operation], model: LedgerModel) -> list[Part]:
    calls, dropped = prepare(project(ops, is_wallet), model)
    assert dropped == 0  # nothing the projection gives is left out
    return split(calls, model)


def shape(parts: list[Part]) -> list[tuple[Any, ...]]:
    """What both must agree on: each part's key, initial state and calls (but
    the operation a call points at: `wallet_parts` builds none)."""
    return [(p.key, p.init, [tuple(c)[:7] for c in p.calls]) for p in parts]


@settings(max_examples=300, deadline=None)
@given(events=wallet_histories())
def test_the_parts_are_the_projections(events: list[Event]) -> None:
    ops = pair_operations(events)
    model = LedgerModel(INITIAL)
    made = wallet_parts(ops, is_wallet, model)
    assert made is not None
    parts, operations = made
    assert operations == len(project(ops, is_wallet))
    assert shape(parts) == shape(reference(ops, model))
    assert all(c.op is None for p in parts for c in p.calls)
    # and so the same verdict, part by part
    quick, full = check_parts(parts, model), check_parts(reference(ops, model), model)
    assert quick.valid == full.valid
    assert [p.verdict for p in quick.parts] == [p.verdict for p in full.parts]


def test_a_value_of_an_unusual_shape_is_left_to_the_projection() -> None:
    model = LedgerModel(INITIAL)
    pay = {"id": "p1", "from": "u1", "to": "m0", "amount": -5}  # a negative amount
    odd = [
        Event("invoke", 0, "transfer", pay, 0.0, 0),
        Event("ok", 0, "transfer", pay, 1.0, 1),
    ]
    assert wallet_parts(pair_operations(odd), is_wallet, model) is None
    read = [  # a balance that is not an integer
        Event("invoke", 0, "read", None, 0.0, 0),
        Event("ok", 0, "read", {"u1": 1.5}, 1.0, 1),
    ]
    assert wallet_parts(pair_operations(read), is_wallet, model) is None
