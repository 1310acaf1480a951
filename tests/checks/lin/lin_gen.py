"""Test helpers: small concurrent histories from a sequential spec, and an oracle.

`generate` runs random operations of a few processes against a plain
sequential implementation (written here, independently of the models), with
a random interleaving of invokes, effects and completions: the history is
linearizable by construction. `mutate` then changes one observed outcome.
`brute_force` decides linearizability by trying every order of every
allowed subset of operations, with no caching, no reductions and no
partitioning: the oracle the checker must agree with.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

from checks.history import Event, pair_operations
from checks.lin.checker import prepare
from checks.lin.model import Call, Model
from checks.lin.models import KvModel

MODEL_NAMES = ("register", "cas-register", "etcd", "kv", "queue", "set", "ledger")
VALUES = (1, 2, 3)
KEYS = ("x", "y")
ACCOUNTS = ("a", "b", "c")


# -- a sequential implementation of each model, independent of checks.lin ----
def initial(model: str) -> Any:
    return {"kv": {}, "queue": [], "set": set(), "ledger": {}}.get(model)


def random_op(draw: Any, model: str) -> tuple[str, Any, dict[str, Any]]:
    """(f, invoke value, extra) of one random operation."""
    v = draw(st.sampled_from(VALUES))
    if model in ("register", "cas-register", "etcd"):
        fs = ["read", "write"] + (["cas"] if model != "register" else [])
        f = draw(st.sampled_from(fs))
        arg = {"read": None, "write": v, "cas": [v, draw(st.sampled_from(VALUES))]}[f]
        return f, arg, {}
    if model == "kv":
        f = draw(st.sampled_from(["get", "put", "append"]))
        key = draw(st.sampled_from(KEYS))
        return f, (None if f == "get" else str(v)), {"key": key}
    if model == "queue":
        f = draw(st.sampled_from(["enqueue", "dequeue"]))
        return f, (v if f == "enqueue" else None), {}
    if model == "set":
        f = draw(st.sampled_from(["add", "read"]))
        return f, (v if f == "add" else None), {}
    assert model == "ledger"
    f = draw(st.sampled_from(["deposit", "transfer", "read"]))
    a, b = draw(st.sampled_from(ACCOUNTS)), draw(st.sampled_from(ACCOUNTS))
    if f == "deposit":
        return f, {"account": a, "amount": v * 100}, {}
    if f == "transfer":
        return f, {"from": a, "to": b, "amount": v * 100}, {}
    return f, None, {}


def execute(model: str, state: Any, f: str, arg: Any, extra: dict[str, Any]) -> tuple[str, Any]:
    """Apply one operation to `state` (in place); (completion type, completion value)."""
    if model in ("register", "cas-register", "etcd"):
        if f == "read":
            return "ok", state["v"]
        if f == "write":
            state["v"] = arg
            return "ok", arg
        if state["v"] == arg[0]:
            state["v"] = arg[1]
            return "ok", arg
        return "fail", arg  # the compare did not match; nothing changed
    if model == "kv":
        key = extra["key"]
        if f == "get":
            return "ok", state.get(key, "")
        state[key] = arg if f == "put" else state.get(key, "") + arg
        return "ok", arg
    if model == "queue":
        if f == "enqueue":
            state.append(arg)
            return "ok", arg
        return "ok", (state.pop(0) if state else None)
    if model == "set":
        if f == "add":
            state.add(arg)
            return "ok", arg
        return "ok", sorted(state)
    if f == "deposit":
        state[arg["account"]] = state.get(arg["account"], 0) + arg["amount"]
        return "ok", arg
    if f == "transfer":
        if state.get(arg["from"], 0) < arg["amount"]:
            return "fail", arg  # insufficient funds: nothing changed
        state[arg["from"]] -= arg["amount"]
        state[arg["to"]] = state.get(arg["to"], 0) + arg["amount"]
        return "ok", arg
    return "ok", {a: state.get(a, 0) for a in ACCOUNTS}


@st.composite
def histories(draw: Any, model: str, n_procs: int = 3, n_ops: int = 6) -> list[Event]:
    """A linearizable history: random interleaving of invoke, effect, completion."""
    state = {"v": None} if model in ("register", "cas-register", "etcd") else initial(model)
    total = draw(st.integers(1, n_ops))
    phase: dict[int, int] = {}  # process -> 0 invoked, 1 took effect (or will not)
    pending: dict[int, tuple[str, Any, dict[str, Any], str | None, Any]] = {}
    events: list[Event] = []
    started = 0

    def emit(etype: str, p: int, f: str, value: Any, extra: dict[str, Any]) -> None:
        events.append(Event(etype, p, f, value, float(len(events)), len(events), dict(extra)))

    for _ in range(4 * total + 4 * n_procs):
        choices = [p for p in range(n_procs) if p in pending or started < total]
        if not choices:
            break
        p = draw(st.sampled_from(choices))
        if p not in pending:
            f, arg, extra = random_op(draw, model)
            pending[p] = (f, arg, extra, None, None)
            phase[p] = 0
            started += 1
            emit("invoke", p, f, arg, extra)
        elif phase[p] == 0:
            f, arg, extra, _, _ = pending[p]
            fate = draw(st.sampled_from(["effect", "effect", "effect", "lost"]))
            if fate == "effect":
                etype, value = execute(model, state, f, arg, extra)
                pending[p] = (f, arg, extra, etype, value)
            else:  # it never takes effect: it can only end as info
                pending[p] = (f, arg, extra, "info", None)
            phase[p] = 1
        else:
            f, arg, extra, etype, value = pending.pop(p)
            assert etype is not None
            if etype != "info" and draw(st.integers(0, 9)) == 0:
                etype, value = "info", None  # took effect, but the client never heard
            if etype == "fail" and f == "transfer":
                extra = {**extra, "error": "insufficient-funds"}
            emit(etype, p, f, value, extra)
    return events


def mutate(draw: Any, events: list[Event]) -> list[Event]:
    """Change one completion's value or type: the result may or may not be linearizable."""
    idx = [i for i, e in enumerate(events) if e.type in ("ok", "fail")]
    if not idx:
        return events
    i = draw(st.sampled_from(idx))
    e = events[i]
    out = list(events)
    kind = draw(st.sampled_from(["value", "type"]))
    if kind == "type":
        new_type = {"ok": "fail", "fail": "ok"}[e.type]
        extra = dict(e.extra)
        if e.f == "transfer" and new_type == "fail":
            extra["error"] = "insufficient-funds"
        out[i] = Event(new_type, e.process, e.f, e.value, e.time_ms, e.index, extra)  # type: ignore[arg-type]
        return out
    value = copy.deepcopy(e.value)
    if isinstance(value, dict) and value and all(isinstance(v, int) for v in value.values()):
        k = draw(st.sampled_from(sorted(value)))
        value[k] += 100
    elif isinstance(value, list) and e.f == "read":
        value = sorted(set(value) ^ {draw(st.sampled_from(VALUES))})
    elif isinstance(value, str):
        value = value + draw(st.sampled_from(["1", "2"]))
    else:
        value = draw(st.sampled_from([None, *VALUES]))
    out[i] = Event(e.type, e.process, e.f, value, e.time_ms, e.index, dict(e.extra))
    return out


# -- the oracle --------------------------------------------------------------
def _global_step(model: Model, state: Any, c: Call) -> tuple[bool, Any]:
    """One step on the whole state (no partitioning)."""
    if isinstance(model, KvModel):
        key = c.input[1]
        ok, new = model.step(state.get(key, model.init()), c.input, c.output)
        return ok, {**state, key: new}
    return model.step(state, c.input, c.output)


def brute_force(events: list[Event], model: Model) -> bool:
    """Is there an order of all known-outcome operations (and any subset of the
    unknown ones) that respects real time and the model? Tries them all."""
    calls, _ = prepare(pair_operations(events), model)
    definite = {c.id for c in calls if c.ret is not None}
    init = {} if isinstance(model, KvModel) else model.init()

    def rec(done: frozenset[int], state: Any) -> bool:
        if definite <= done:
            return True
        for c in calls:
            if c.id in done:
                continue
            # Real time: every known-outcome call that returned before c was
            # called must already be in the order.
            if any(d.ret is not None and d.ret < c.call and d.id not in done for d in calls):
                continue
            ok, new = _global_step(model, state, c)
            if ok and rec(done | {c.id}, new):
                return True
        return False

    return rec(frozenset(), init)


def events(*rows: tuple[Any, ...]) -> list[Event]:
    """A history from rows (type, process, f, value[, extra]), in order."""
    out = []
    for i, row in enumerate(rows):
        etype, process, f, value = row[:4]
        extra = row[4] if len(row) > 4 else {}
        out.append(Event(etype, process, f, value, float(i), i, dict(extra)))
    return out
