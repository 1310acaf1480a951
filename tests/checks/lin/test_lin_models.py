"""Each model: a history it must accept and a violation it must catch."""

from __future__ import annotations

from typing import Any

import pytest
from lin_gen import events

from checks.history import HistoryError, Operation
from checks.lin import check_history, model_named
from checks.lin.model import UNKNOWN, Model, outcome
from checks.lin.models import LedgerModel

# A stale read: write 1 completes, then a read starts and sees nil.
STALE = events(
    ("invoke", 0, "write", 1),
    ("ok", 0, "write", 1),
    ("invoke", 1, "read", None),
    ("ok", 1, "read", None),
)
# Overlapping: the read may go before the write.
OVERLAP = events(
    ("invoke", 0, "write", 1),
    ("invoke", 1, "read", None),
    ("ok", 1, "read", None),
    ("ok", 0, "write", 1),
)


@pytest.mark.parametrize("model", ["register", "cas-register", "etcd"])
def test_registers_catch_a_stale_read(model: str) -> None:
    assert check_history(STALE, model_named(model)).valid is False
    assert check_history(OVERLAP, model_named(model)).valid is True


def test_info_write_may_take_effect_late_or_never() -> None:
    late = events(
        ("invoke", 0, "write", 1),
        ("info", 0, "write", None),
        ("invoke", 1, "read", None),
        ("ok", 1, "read", None),
        ("invoke", 1, "read", None),
        ("ok", 1, "read", 1),  # the write took effect after the first read
    )
    assert check_history(late, model_named("register")).valid is True
    never = events(("invoke", 0, "write", 1), ("info", 0, "write", None))
    assert check_history(never, model_named("register")).valid is True
    flapping = [*late, *events(("invoke", 1, "read", None), ("ok", 1, "read", None))[0:2]]
    flapping = [
        e.__class__(e.type, e.process, e.f, e.value, e.time_ms, i, e.extra)
        for i, e in enumerate(flapping)
    ]
    assert check_history(flapping, model_named("register")).valid is False  # 1 then nil again


def test_failed_cas_did_not_happen_but_etcd_observed_it() -> None:
    h = events(
        ("invoke", 0, "write", 1),
        ("ok", 0, "write", 1),
        ("invoke", 1, "cas", [1, 2]),
        ("fail", 1, "cas", [1, 2]),  # register holds 1: the compare must have matched
    )
    assert check_history(h, model_named("cas-register")).valid is True  # dropped
    assert check_history(h, model_named("etcd")).valid is False  # an impossible observation


def test_kv_is_checked_per_key() -> None:
    h = events(
        ("invoke", 0, "append", "a", {"key": "x"}),
        ("ok", 0, "append", "a", {"key": "x"}),
        ("invoke", 1, "put", "z", {"key": "y"}),
        ("ok", 1, "put", "z", {"key": "y"}),
        ("invoke", 0, "get", None, {"key": "x"}),
        ("ok", 0, "get", "a", {"key": "x"}),
        ("invoke", 1, "get", None, {"key": "y"}),
        ("ok", 1, "get", "", {"key": "y"}),  # y was put before: lost
    )
    result = check_history(h, model_named("kv"))
    assert result.valid is False
    assert result.failing is not None and result.failing.key == "y"
    # Jepsen's independent [key value] tuples work too.
    jepsen = events(
        ("invoke", 0, "put", ["k", "v"]),
        ("ok", 0, "put", ["k", "v"]),
        ("invoke", 0, "get", ["k", None]),
        ("ok", 0, "get", ["k", "v"]),
    )
    assert check_history(jepsen, model_named("kv")).valid is True


def test_queue_is_fifo() -> None:
    h = events(
        ("invoke", 0, "enqueue", 1),
        ("ok", 0, "enqueue", 1),
        ("invoke", 0, "enqueue", 2),
        ("ok", 0, "enqueue", 2),
        ("invoke", 1, "dequeue", None),
        ("ok", 1, "dequeue", 2),
    )
    assert check_history(h, model_named("queue")).valid is False
    h[-1] = h[-1].__class__("ok", 1, "dequeue", 1, 5.0, 5)
    assert check_history(h, model_named("queue")).valid is True


def test_set_reads_see_every_add() -> None:
    h = events(
        ("invoke", 0, "add", 1),
        ("ok", 0, "add", 1),
        ("invoke", 1, "read", None),
        ("ok", 1, "read", []),
    )
    assert check_history(h, model_named("set")).valid is False


def test_ledger_transfers_and_insufficient_funds() -> None:
    ok = events(
        ("invoke", 0, "deposit", {"account": "a", "amount": 500}),
        ("ok", 0, "deposit", {"account": "a", "amount": 500}),
        ("invoke", 0, "transfer", {"from": "a", "to": "b", "amount_cents": 300}),
        ("ok", 0, "transfer", {"from": "a", "to": "b", "amount_cents": 300}),
        ("invoke", 1, "transfer", {"from": "a", "to": "b", "amount": 300}),
        (
            "fail",
            1,
            "transfer",
            {"from": "a", "to": "b", "amount": 300},
            {"error": "insufficient-funds"},
        ),
        ("invoke", 1, "read", None),
        ("ok", 1, "read", {"a": 200, "b": 300}),
    )
    assert check_history(ok, model_named("ledger")).valid is True
    # A rejection that cannot be: "a" held 500 when the transfer of 300 was refused.
    bad_reject = [*ok[:2], *ok[4:6]]
    bad_reject = [
        e.__class__(e.type, e.process, e.f, e.value, e.time_ms, i, e.extra)
        for i, e in enumerate(bad_reject)
    ]
    assert check_history(bad_reject, model_named("ledger")).valid is False
    # An overdraft acknowledged: not allowed unless the model allows it.
    overdraft = events(
        ("invoke", 0, "transfer", {"from": "a", "to": "b", "amount": 1}),
        ("ok", 0, "transfer", {"from": "a", "to": "b", "amount": 1}),
    )
    assert check_history(overdraft, model_named("ledger")).valid is False
    assert check_history(overdraft, LedgerModel(overdraft=True)).valid is True
    assert check_history(overdraft, LedgerModel(initial_cents={"a": 1})).valid is True


def test_ledger_splits_by_connected_accounts() -> None:
    h = events(
        ("invoke", 0, "deposit", {"account": "a", "amount": 5}),
        ("ok", 0, "deposit", {"account": "a", "amount": 5}),
        ("invoke", 1, "deposit", {"account": "c", "amount": 7}),
        ("ok", 1, "deposit", {"account": "c", "amount": 7}),
        ("invoke", 0, "transfer", {"from": "a", "to": "b", "amount": 5}),
        ("ok", 0, "transfer", {"from": "a", "to": "b", "amount": 5}),
        ("invoke", 1, "read", ["c"]),
        ("ok", 1, "read", {"c": 7}),
    )
    result = check_history(h, model_named("ledger"))
    assert result.valid is True
    assert sorted(p.key for p in result.parts) == [("a", "b"), ("c",)]


def test_an_operation_the_model_does_not_know_is_an_error() -> None:
    h = events(("invoke", 0, "frobnicate", 1), ("ok", 0, "frobnicate", 1))
    with pytest.raises(HistoryError, match="no operation 'frobnicate'"):
        check_history(h, model_named("register"))


class CounterModel(Model):
    """The example from `checks/lin/model.py`: a learner's first model."""

    name = "counter"

    def init(self) -> int:
        return 0

    def prepare(self, op: Operation) -> tuple[Any, Any] | None:
        if op.type == "fail":
            return None
        return (op.f, op.invoke.value), outcome(op)

    def step(self, state: int, inp: tuple[str, Any], out: Any) -> tuple[bool, int]:
        f, n = inp
        if f == "add":
            return True, state + n
        return (out is UNKNOWN or out == state), state

    def read_only(self, inp: tuple[str, Any], out: Any) -> bool:
        return inp[0] == "read"


def test_a_model_written_in_a_few_lines_works() -> None:
    h = events(
        ("invoke", 0, "add", 2),
        ("invoke", 1, "read", None),
        ("ok", 1, "read", 0),  # before the add took effect: fine
        ("ok", 0, "add", 2),
        ("invoke", 1, "read", None),
        ("ok", 1, "read", 2),
    )
    assert check_history(h, CounterModel()).valid is True
    lost = [*h[:4], *events(("invoke", 1, "read", None), ("ok", 1, "read", 0))]
    lost = [
        e.__class__(e.type, e.process, e.f, e.value, e.time_ms, i, e.extra)
        for i, e in enumerate(lost)
    ]
    assert check_history(lost, CounterModel()).valid is False
