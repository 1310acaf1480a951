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

d11's own payment histories carry more than the ledger's operations: chapter
5's message queue records its bookkeeping (send, commit, receive, apply, ...)
beside the payments, and its settlements (`settle`) are ledger transfers.
The ledger checker knows those operations move no money it cannot see
(`checks.transfers.history`), so such a history is still a ledger here, and
the reason says which operations were set aside (`d11 check delivery` judges
them). The capstone's history (`d11 run double11`) holds several ledgers, one
per part (each event's `part`, each part its own `init`): `parts` splits it,
so that each part is checked alone, as the run's own checks do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from checks.history import NOT_OPERATIONS, Event
from checks.transfers.history import MODELLED, NO_LEDGER_MONEY, SETTLE


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
LEDGER_OPERATIONS = frozenset(MODELLED | {"deposit"})


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
    return _d11_ledger(fs)


def _d11_ledger(fs: set[str]) -> Detected | None:
    """A d11 payment history with the queue's bookkeeping beside it: a ledger."""
    if not (fs <= LEDGER_OPERATIONS | NO_LEDGER_MONEY and fs & {"deposit", "transfer"}):
        return None
    ledger = "/".join(sorted(fs & LEDGER_OPERATIONS))
    aside = "/".join(sorted(fs & NO_LEDGER_MONEY))
    if not aside:
        return Detected("ledger", f"its operations are {ledger} (a settle is a ledger transfer)")
    return Detected(
        "ledger",
        f"its ledger operations are {ledger}; {aside} move no ledger money (a queue's "
        "bookkeeping, judged by d11 check delivery, or load-test payments on shadow "
        "accounts) and are set aside",
    )


PART = "part"  # the capstone's tag on each event: which part recorded it ("": its own)


@dataclass(frozen=True, slots=True)
class Part:
    """One part of a history that holds several: its name, its events (re-indexed
    from 0) and, for each, the index of the event it came from."""

    name: str
    events: list[Event]
    origin: list[int]


def parts(events: Sequence[Event]) -> list[Part] | None:
    """A history holding several parts, each with its own `init`, split into them;
    None for a history of one part (the usual kind).

    A part's events are its own and the history's own (nemesis notes, untagged).
    The settlements another part's consumers recorded (`settle`, naming an escrow
    this part opened) are transfers in this part's ledger, so they go with it."""
    names = sorted({str(ev.extra[PART]) for ev in events if ev.f == "init" and PART in ev.extra})
    if len(names) < 2:
        return None
    accounts: dict[str, set[str]] = {name: set() for name in names}
    for ev in events:
        name = str(ev.extra.get(PART, ""))
        opened = ev.f == "init" and ev.type == "ok" and isinstance(ev.value, Mapping)
        if opened and name in accounts:
            accounts[name].update(str(k) for k in ev.value)
    tagged = [n for n in sorted({str(ev.extra.get(PART, "")) for ev in events}) if n]
    out = []
    for name in tagged:
        picked = [i for i, ev in enumerate(events) if _belongs(ev, name, accounts.get(name))]
        mine = [replace(events[i], index=j) for j, i in enumerate(picked)]
        out.append(Part(name, mine, picked))
    return out


def _belongs(ev: Event, name: str, accounts: set[str] | None) -> bool:
    part = str(ev.extra.get(PART, ""))
    if part in ("", name):
        return True
    return (
        accounts is not None
        and ev.f == SETTLE
        and isinstance(ev.value, Mapping)
        and str(ev.value.get("merchant")) in accounts
    )
