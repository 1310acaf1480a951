"""The search as a whole: interleaved parts, budgets, bounded memory, explanations."""

from __future__ import annotations

from typing import Any

from lin_gen import events

from checks.explain import explain, timeline_html
from checks.history import Event, pair_operations
from checks.lin import check_history, model_named
from checks.lin.checker import prepare, split
from checks.lin.search import run_to_end, wgl


def concurrent_appends(
    key: str, n: int, impossible_get: str, with_put: bool = True
) -> list[tuple[Any, ...]]:
    """n appends all concurrent, and a get that returns what no order produces.

    Proving it impossible means trying every order of every subset: a search
    that blows up (every order gives a different string). The concurrent put
    of "" keeps it so: without it, reduction 5 refutes every append that does
    not start the value read at once.
    """
    kv = {"key": key}
    rows: list[tuple[Any, ...]] = [("invoke", p, "append", f"<{p}>", kv) for p in range(n)]
    if with_put:
        rows += [("invoke", 98, "put", "", kv)]
    rows += [("invoke", 99, "get", None, {"key": key})]
    rows += [("ok", 99, "get", impossible_get, {"key": key})]
    rows += [("ok", p, "append", f"<{p}>", {"key": key}) for p in range(n)]
    if with_put:
        rows += [("ok", 98, "put", "", kv)]
    return rows


def stale_reads(key: str, n: int) -> list[tuple[Any, ...]]:
    """A long sequential history on `key` ending in a stale read: fails at once."""
    rows: list[tuple[Any, ...]] = []
    for i in range(n):
        rows += [("invoke", 200, "put", str(i), {"key": key})]
        rows += [("ok", 200, "put", str(i), {"key": key})]
    rows += [("invoke", 200, "get", None, {"key": key}), ("ok", 200, "get", "0", {"key": key})]
    return rows


def test_a_part_that_fails_fast_is_not_hidden_by_one_that_blows_up() -> None:
    # The hard part is smaller, so it is searched first; interleaving lets the
    # larger, easy part report its failure without waiting for the hard one.
    h = events(*concurrent_appends("hard", 12, "nope"), *stale_reads("easy", 40))
    result = check_history(h, model_named("kv"), timeout_s=60)
    assert result.valid is False
    assert result.failing is not None and result.failing.key == "easy"
    hard = next(p for p in result.parts if p.key == "hard")
    assert hard.result is None, "the hard part was abandoned, not finished"


def test_running_out_of_time_is_unknown_never_a_guess() -> None:
    h = events(*concurrent_appends("k", 12, "nope"))
    result = check_history(h, model_named("kv"), timeout_s=0.05)
    assert result.valid == "unknown"
    assert result.exit_code == 2
    assert "time budget" in result.reason


def test_a_full_cache_keeps_the_search_correct() -> None:
    h = events(*concurrent_appends("k", 5, "nope"))
    calls, _ = prepare(pair_operations(h), model_named("kv"))
    part = split(calls, model_named("kv"))[0]
    bounded = run_to_end(wgl(part.calls, model_named("kv"), part.init, cache_max=50))
    free = run_to_end(wgl(part.calls, model_named("kv"), part.init, cache_max=10**6))
    assert bounded.stats.cache_full and not free.stats.cache_full
    assert bounded.stats.cache_entries == 50
    assert bounded.linearizable is free.linearizable is False
    ok = events(*concurrent_appends("k", 5, "<0><1>"))
    calls, _ = prepare(pair_operations(ok), model_named("kv"))
    part = split(calls, model_named("kv"))[0]
    assert run_to_end(wgl(part.calls, model_named("kv"), part.init, cache_max=3)).linearizable


def test_symmetry_and_greedy_reads_keep_many_identical_writes_cheap() -> None:
    # 14 concurrent writes of the same value and a read of a value never
    # written: without the symmetry reduction, 2^14 subsets to refute.
    rows: list[tuple[Any, ...]] = [("invoke", p, "write", 7) for p in range(14)]
    rows += [("invoke", 99, "read", None), ("ok", 99, "read", 8)]
    rows += [("ok", p, "write", 7) for p in range(14)]
    result = check_history(events(*rows), model_named("register"), timeout_s=30)
    assert result.valid is False
    assert result.stats.steps < 1000


def test_appends_that_cannot_make_the_read_are_cut_at_once() -> None:
    # Reduction 5: with only appends before the get's return, a state that is
    # not a prefix of the value read is a dead end. Without it, 12 concurrent
    # appends take minutes to refute (the put above keeps that case hard).
    bad = check_history(events(*concurrent_appends("k", 12, "<3><1>X", False)), model_named("kv"))
    assert bad.valid is False
    assert bad.stats.steps < 2000
    ok = check_history(events(*concurrent_appends("k", 12, "<3><1><7>", False)), model_named("kv"))
    assert ok.valid is True
    assert ok.stats.steps < 2000
    hard = check_history(events(*concurrent_appends("k", 12, "nope")), model_named("kv"), 0.2)
    assert hard.valid == "unknown"  # a put among them: the state may be set anew, no cut


def stale_register() -> list[Event]:
    return events(
        ("invoke", 0, "write", 1),
        ("ok", 0, "write", 1),
        ("invoke", 1, "write", 2),
        ("invoke", 2, "read", None),
        ("ok", 2, "read", 2),
        ("ok", 1, "write", 2),
        ("invoke", 0, "read", None),
        ("ok", 0, "read", 1),  # 2 was read, and its write completed: 1 is stale
        ("invoke", 3, "read", None),
        ("ok", 3, "read", 2),
    )


def test_explanation_finds_the_failing_prefix_and_witness() -> None:
    model = model_named("register")
    result = check_history(stale_register(), model)
    assert result.valid is False and result.failing is not None
    ex = explain(result.failing, model, budget_s=10)
    assert ex.complete
    assert len(ex.calls) == 4  # the last read comes after the failure
    stuck = ex.calls[ex.stuck] if ex.stuck is not None else None
    assert stuck is not None and stuck.process == 0 and stuck.output == 1
    witness = {(ex.calls[i].process, ex.calls[i].f) for i in ex.witness}
    # Write 1, read 2, then read 1 again: impossible even if write 2 might
    # have taken effect at any time (its completion is not needed).
    assert witness == {(0, "write"), (2, "read"), (0, "read")}
    assert [(ex.calls[i].process, ex.calls[i].f) for i in ex.weakened] == [(1, "write")]
    assert [model.describe_state(s) for s in ex.states] == ["1", "2", "2"]
    text = "\n".join(ex.lines(model))
    assert "cannot linearize: process 0 read -> 1" in text


def test_timeline_is_self_contained_html() -> None:
    model = model_named("register")
    result = check_history(stale_register(), model)
    assert result.failing is not None
    ex = explain(result.failing, model, budget_s=10)
    page = timeline_html(ex, model, "stale <read>", ex.lines(model))
    assert page.startswith("<!doctype html>")
    assert "stale &lt;read&gt;" in page  # escaped
    assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<script" not in page and " src=" not in page
    for lane in ("process 0", "process 1", "process 2"):
        assert lane in page
    assert 'class="op stuck' in page and "state after: 2" in page


def test_explaining_with_no_budget_is_incomplete_but_sound() -> None:
    model = model_named("register")
    result = check_history(stale_register(), model)
    assert result.failing is not None
    ex = explain(result.failing, model, budget_s=0.0)
    assert not ex.complete
    assert ex.calls and ex.witness  # the whole part: still a correct witness
