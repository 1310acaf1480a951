"""Checkers forked side by side give the verdicts they give one after the other."""

from __future__ import annotations

import gc

import pytest

from checks.bank import check_bank
from checks.history import Event
from checks.parallel import CheckError, run_checks
from checks.verdict import Verdict


def _history(total_ok: bool) -> list[Event]:
    second = {"a": 60, "b": 40} if total_ok else {"a": 60, "b": 41}
    values = [None, {"a": 50, "b": 50}, None, second]
    types = ["invoke", "ok", "invoke", "ok"]
    return [
        Event(t, 0, "read", v, time_ms=float(i), index=i)
        for i, (t, v) in enumerate(zip(types, values, strict=True))
    ]


def _checks(history: list[Event]) -> dict[str, object]:
    return {
        "bank": lambda: check_bank(history, total=100, accounts=["a", "b"]),
        "count": lambda: Verdict("count", True, f"{len(history)} events"),
    }


@pytest.mark.parametrize("total_ok", [True, False])
def test_forked_verdicts_equal_sequential_ones(total_ok: bool) -> None:
    history = _history(total_ok)
    alone = run_checks(_checks(history), len(history), parallel=False)  # type: ignore[arg-type]
    forked = run_checks(_checks(history), len(history), parallel=True)  # type: ignore[arg-type]
    assert forked == alone
    assert list(forked) == ["bank", "count"]  # the checks' own order
    assert forked["bank"].valid is total_ok


def test_a_checker_raising_in_its_child_raises_here() -> None:
    def broken() -> Verdict:
        raise ValueError("a bad history")

    with pytest.raises(ValueError, match="a bad history"):
        run_checks({"ok": lambda: Verdict("ok", True, "fine"), "broken": broken}, 1, parallel=True)


def test_a_child_that_dies_is_an_error_not_a_verdict() -> None:
    import os

    def dies() -> Verdict:
        os._exit(3)

    with pytest.raises(CheckError, match="died"):
        run_checks({"dies": dies, "ok": lambda: Verdict("ok", True, "fine")}, 1, parallel=True)


def test_forked_checkers_say_when_they_finished() -> None:
    import time

    from checks.parallel import start_checks

    def slow() -> Verdict:
        time.sleep(0.2)
        return Verdict("slow", True, "done")

    before = time.monotonic()
    pending = start_checks({"slow": slow, "quick": lambda: Verdict("q", True, "")}, 1, True)
    pending.wait()
    assert before + 0.2 <= pending.done_s <= time.monotonic()  # the slow one's end


def test_a_child_inherits_the_heap_frozen_and_collects_only_its_own() -> None:
    # The child's collections never scan (and so never copy, page by page) the
    # heap it inherited, even from a parent that simulated with its collector off
    # (the rehearsal's levels); the parent's collector is as it was after.
    def collector() -> Verdict:
        return Verdict("gc", gc.isenabled() and gc.get_freeze_count() > 0, "in the child")

    gc.disable()
    try:
        forked = run_checks({"gc": collector, "other": collector}, 1, parallel=True)
    finally:
        gc.enable()
    assert forked["gc"].valid is True
    assert gc.get_freeze_count() == 0


def test_cancelled_checks_end_at_once() -> None:
    # A caller that no longer wants them (another check raised) ends them; a
    # child left running could block on its pipe, its payload never read.
    import time

    from checks.parallel import start_checks

    def slow() -> Verdict:
        time.sleep(30)
        return Verdict("slow", True, "done")

    before = time.monotonic()
    pending = start_checks({"slow": slow, "slower": slow}, 1, True)
    pending.cancel()
    assert time.monotonic() - before < 10
