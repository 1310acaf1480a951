"""Which model a history is checked against, when its format or its operations say.

`d11 check lin HISTORY` needs a model. Where the file says which, it is
taken from there: Porcupine's etcd logs are one compare-and-set register
checked as Porcupine checks etcd (a failed cas observed a different value);
Porcupine's kv logs are a key-value map. Otherwise the operations' names
decide, as a Jepsen workload names them: read/write/cas is a register,
get/put/append a key-value map, enqueue/dequeue a queue, add/read a set,
deposit/transfer/read a ledger (with d11's own `init`, the opening
balances, and `lookup-transfer`). Anything else is not guessed: the caller
asks for `--model`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from checks.history import NOT_OPERATIONS, Event


@dataclass(frozen=True, slots=True)
class Detected:
    """A model name and the reason it was chosen, for the report."""

    model: str
    reason: str


# (the operations the history may use, those it must use one of, the model)
_BY_OPERATIONS: tuple[tuple[str, str, str], ...] = (
    ("read write cas", "cas", "cas-register"),
    ("read write", "read write", "register"),
    ("get put append", "get put append", "kv"),
    ("enqueue dequeue", "enqueue dequeue", "queue"),
    ("add read", "add", "set"),
    ("init deposit transfer read lookup-transfer", "deposit transfer", "ledger"),
)


def detect_model(fmt: str, events: Iterable[Event]) -> Detected | None:
    """The model for a history read in format `fmt`, or None when nothing says."""
    if fmt == "porcupine-etcd":
        return Detected("etcd", "a Porcupine etcd log: one compare-and-set register")
    if fmt == "porcupine-kv":
        return Detected("kv", "a Porcupine kv log: a key-value map")
    fs = {ev.f for ev in events if ev.process not in NOT_OPERATIONS}
    if not fs:
        return None
    for allowed, needed, model in _BY_OPERATIONS:
        if fs <= set(allowed.split()) and fs & set(needed.split()):
            ops = "/".join(f for f in allowed.split() if f in fs)  # the history's own
            return Detected(model, f"its operations are {ops}")
    return None
