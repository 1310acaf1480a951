"""The compiled search (native/lincheck) against the Python reference.

The helper claims to be checks/lin/search.py step for step: on every
Porcupine corpus history and on random (and randomly broken) register and kv
histories, both must give the same verdict and, part by part, the same
longest linearization, stuck call, step count and cache size. A history
planted non-linearizable must be rejected by both.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lin_engines import ENGINES, require_native
from lin_gen import events, histories, mutate

from checks.formats import load_history
from checks.history import Event, HistoryError, pair_operations
from checks.lin import Call, LinResult, check_history, check_operations, model_named, native
from checks.lin.checker import LazyParts
from checks.lin.corpus import CorpusEntry, corpus_dir, corpus_entries
from checks.lin.models.accounts import LedgerModel
from checks.lin.search import SearchResult

ROOT = corpus_dir()


def outcome(result: LinResult) -> tuple[object, ...]:
    """Everything both engines must agree on: the helper may prepare and
    split a history itself (kv), so the parts' calls and initial states too."""
    parts = [
        (p.key, p.init, list(p.calls), None if p.result is None else _found(p.result))
        for p in result.parts
    ]
    assert all(type(c) is Call for p in result.parts for c in p.calls)
    # the helper's calls are built on first use: their number is known before
    assert all(len(p.calls) == len(list(p.calls)) for p in result.parts)
    failing = None if result.failing is None else result.failing.key
    # the failing part is one of the parts (the helper builds it before them)
    assert result.failing is None or any(p is result.failing for p in result.parts)
    return result.valid, failing, result.calls_dropped, result.stats, parts


def _found(r: SearchResult) -> tuple[object, ...]:
    return r.linearizable, r.order, r.stuck, r.stats.steps, r.stats.cache_entries


def both(
    monkeypatch: pytest.MonkeyPatch, check: Callable[[], LinResult]
) -> tuple[LinResult, LinResult]:
    """`check()` with each engine forced, the Python reference first."""
    out = []
    for engine in ("python", "native"):
        monkeypatch.setenv(native.ENGINE_VAR, engine)
        result = check()
        assert result.engine == engine
        out.append(result)
    return out[0], out[1]


def corpus() -> list[object]:
    if not (ROOT / "verdicts.json").is_file():
        return []
    return [pytest.param(e, id=e.path.name) for e in corpus_entries(ROOT)]


@pytest.mark.parametrize("entry", corpus())
def test_engines_agree_on_every_corpus_history(
    entry: CorpusEntry, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_native()
    ops = load_history(entry.path).operations()
    model = model_named(entry.model)
    py, nat = both(monkeypatch, lambda: check_operations(ops, model, timeout_s=120))
    assert py.valid is entry.linearizable
    assert outcome(nat) == outcome(py)


def test_the_corpus_is_there_to_compare_on() -> None:
    if not (ROOT / "verdicts.json").is_file():
        pytest.skip(f"no Porcupine corpus at {ROOT}")
    assert len(corpus()) == 108


def planted() -> dict[str, list[Event]]:
    """Histories no order explains, one per kind of move the helper encodes."""
    kv = {"key": "k"}
    return {
        # A read sees a value written only after it returned.
        "etcd": events(
            ("invoke", 0, "write", 1),
            ("ok", 0, "write", 1),
            ("invoke", 1, "read", None),
            ("ok", 1, "read", 2),
            ("invoke", 0, "write", 2),
            ("ok", 0, "write", 2),
        ),
        # A failed compare observed the very value the register held.
        "cas-fail": events(
            ("invoke", 0, "write", 1),
            ("ok", 0, "write", 1),
            ("invoke", 1, "cas", [1, 3]),
            ("fail", 1, "cas", [1, 3]),
        ),
        # Appends only grow the value: a get cannot read one that skips "a".
        "kv": events(
            ("invoke", 0, "append", "a", kv),
            ("ok", 0, "append", "a", kv),
            ("invoke", 1, "append", "b", kv),
            ("invoke", 2, "get", None, kv),
            ("ok", 2, "get", "b", kv),
            ("ok", 1, "append", "b", kv),
        ),
    }


@pytest.mark.parametrize("name", sorted(planted()))
def test_a_planted_violation_is_rejected_by_both(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_native()
    h = planted()[name]
    model = model_named("kv" if name == "kv" else "etcd")
    py, nat = both(monkeypatch, lambda: check_history(h, model))
    assert py.valid is False and nat.valid is False
    assert outcome(nat) == outcome(py)
    assert nat.failing is not None and nat.failing.result is not None
    assert nat.failing.result.stuck is not None


def test_forcing_the_native_engine_without_it_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(native, "helper", lambda: None)
    monkeypatch.setenv(native.ENGINE_VAR, "native")
    with pytest.raises(native.EngineError, match="not installed"):
        check_history(planted()["etcd"], model_named("etcd"))
    monkeypatch.setenv(native.ENGINE_VAR, "auto")
    assert check_history(planted()["etcd"], model_named("etcd")).engine == "python"


def test_a_model_the_helper_does_not_know_runs_the_reference(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    require_native()
    monkeypatch.setenv(native.ENGINE_VAR, "native")
    h = events(("invoke", 0, "enqueue", 1), ("ok", 0, "enqueue", 1))
    assert check_history(h, model_named("queue")).engine == "python"


@pytest.mark.parametrize("model", ["register", "cas-register", "etcd", "kv", "ledger"])
@settings(max_examples=60)
@given(data=st.data())
def test_engines_agree_on_random_histories(model: str, data: st.DataObject) -> None:
    require_native()
    h = data.draw(histories(model, n_procs=4, n_ops=10))
    if data.draw(st.booleans()):
        h = mutate(data.draw, h)
    m = model_named(model)
    ops = pair_operations(h)
    with pytest.MonkeyPatch.context() as mp:
        py, nat = both(mp, lambda: check_operations(ops, m))
    assert outcome(nat) == outcome(py)


def wallets() -> dict[str, list[Event]]:
    """Ledger histories shaped as chapter 4's wallet projection (a payment
    to a sink of its own, reads of one wallet), opening balances given:
    good ones, and ones no order explains."""
    pay = {"from": "u1", "to": "u1>out", "amount": 300}
    big = {"from": "u1", "to": "u1>out", "amount": 900}
    return {
        # A payment in flight while two reads see before and after; a payment
        # rejected for insufficient funds; one whose outcome is unknown.
        "good": events(
            ("invoke", 0, "transfer", pay),
            ("invoke", 1, "read", ["u1"]),
            ("ok", 1, "read", {"u1": 1000}),
            ("invoke", 2, "read", ["u1"]),
            ("ok", 2, "read", {"u1": 700}),
            ("ok", 0, "transfer", pay),
            ("invoke", 0, "transfer", big),
            ("fail", 0, "transfer", {"error": "insufficient-funds"}),
            ("invoke", 3, "transfer", pay),
            ("invoke", 1, "read", ["u1"]),
            ("ok", 1, "read", {"u1": 700}),
        ),
        # A read after the payment was acknowledged shows the old balance.
        "stale-read": events(
            ("invoke", 0, "transfer", pay),
            ("ok", 0, "transfer", pay),
            ("invoke", 1, "read", ["u1"]),
            ("ok", 1, "read", {"u1": 1000}),
        ),
        # Two acknowledged payments overdraw the wallet.
        "overdrawn": events(
            ("invoke", 0, "transfer", big),
            ("invoke", 1, "transfer", pay),
            ("ok", 0, "transfer", big),
            ("ok", 1, "transfer", pay),
        ),
        # Rejected for insufficient funds while the wallet held enough.
        "wrongly-rejected": events(
            ("invoke", 0, "transfer", pay),
            ("fail", 0, "transfer", {"error": "insufficient-funds"}),
        ),
    }


@pytest.mark.parametrize("name", sorted(wallets()))
def test_engines_agree_on_wallet_histories(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    require_native()
    ops = pair_operations(wallets()[name])
    model = LedgerModel({"u1": 1000})
    py, nat = both(monkeypatch, lambda: check_operations(ops, model))
    assert py.valid is (name == "good")
    assert outcome(nat) == outcome(py)
    if name != "good":
        assert nat.failing is not None and nat.failing.result is not None
        assert nat.failing.result.stuck is not None


def kv_shapes() -> dict[str, list[Event]]:
    """kv histories the helper prepares itself (a `key` field holding a
    string) and ones it hands back to checker.py's `prepare`."""
    a, b = {"key": "a"}, {"key": "b"}
    return {
        # Left out: a failed put, a get whose outcome is unknown; an append
        # whose outcome is unknown stays in; a get of nil reads "".
        "left-out": events(
            ("invoke", 0, "get", None, a),
            ("ok", 0, "get", None, a),
            ("invoke", 1, "put", "x", a),
            ("fail", 1, "put", "x", a),
            ("invoke", 2, "get", None, b),
            ("info", 2, "get", None, b),
            ("invoke", 3, "append", "y", b),
            ("info", 3, "append", None, b),
            ("invoke", 0, "get", None, b),
            ("ok", 0, "get", "y", b),
        ),
        # Jepsen's independent workloads: [key value], no key field.
        "pairs": events(
            ("invoke", 0, "put", ["a", "x"]),
            ("ok", 0, "put", None),
            ("invoke", 1, "get", ["a", None]),
            ("ok", 1, "get", ["a", "x"]),
        ),
        # An integer key: a key of its own (Clojure-equal), not the string "1".
        "int-key": events(
            ("invoke", 0, "put", "x", {"key": 1}),
            ("ok", 0, "put", "x", {"key": 1}),
            ("invoke", 1, "get", None, {"key": "1"}),
            ("ok", 1, "get", "", {"key": "1"}),
        ),
    }


@pytest.mark.parametrize("name", sorted(kv_shapes()))
def test_engines_agree_on_every_kv_shape(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    require_native()
    ops = pair_operations(kv_shapes()[name])
    py, nat = both(monkeypatch, lambda: check_operations(ops, model_named("kv")))
    assert py.valid is True
    assert outcome(nat) == outcome(py)


@pytest.mark.parametrize(
    ("value", "got", "error"),
    [
        (3, "3", "put needs a string"),  # a put of a number
        ("x", 3, "get returned 3"),  # a get of a number
    ],
)
def test_a_kv_value_of_the_wrong_type_is_the_same_error_in_both(
    value: object, got: object, error: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_native()
    k = {"key": "k"}
    ops = pair_operations(
        events(
            ("invoke", 0, "put", value, k),
            ("ok", 0, "put", value, k),
            ("invoke", 1, "get", None, k),
            ("ok", 1, "get", got, k),
        )
    )
    for engine in ENGINES:
        monkeypatch.setenv(native.ENGINE_VAR, engine)
        with pytest.raises(HistoryError, match=error):
            check_operations(ops, model_named("kv"))


def test_a_kv_verdict_builds_no_parts_or_calls_until_they_are_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The helper's parts, and then their calls, are built only when read (a
    verdict needs none); the first read builds them once, and they are the
    reference's."""
    require_native()
    a, b = {"key": "a"}, {"key": "b"}
    ops = pair_operations(
        events(
            ("invoke", 0, "put", "x", a),
            ("invoke", 1, "append", "y", b),
            ("ok", 0, "put", "x", a),
            ("ok", 1, "append", "y", b),
            ("invoke", 0, "get", None, a),
            ("ok", 0, "get", "x", a),
        )
    )
    py, nat = both(monkeypatch, lambda: check_operations(ops, model_named("kv")))
    assert nat.engine == "native"
    assert isinstance(nat.parts, LazyParts) and nat.parts.unbuilt()
    assert len(nat.parts) == len(py.parts) and nat.parts.unbuilt()  # counted, none built
    lazy = [p.calls for p in nat.parts]
    assert all(isinstance(c, native.LazyCalls) and c.unbuilt() for c in lazy)
    assert [len(c) for c in lazy] == [len(p.calls) for p in py.parts]
    assert all(c.unbuilt() for c in lazy)  # counting them built none
    first = nat.parts[0].calls
    assert first[0] == py.parts[0].calls[0] and first[-1:] == py.parts[0].calls[-1:]
    assert not first.unbuilt() and first.built() is first.built()  # built once
