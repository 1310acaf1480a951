"""The wallet projection of chapter 4's `lin` check, on small hand-written histories.

Quiet repeats are left out (a read of a wallet with no payment of it in
flight, showing a balance already read in the same quiet spell), and lookups
by id end or drop the payments they settle. Neither may hide a violation.
"""

from __future__ import annotations

from typing import Any

from chapters.ch4_paxos.wallets import check_wallets_linearizable, share_of, wallet_operations
from checks.history import Event

INITIAL = {"u1": 100, "u2": 50, "m0": 0}


class _History:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def add(self, type_: str, process: int | str, f: str, value: Any) -> _History:
        i = len(self.events)
        self.events.append(Event(type_, process, f, value, float(i), i))  # type: ignore[arg-type]
        return self

    def read(self, balances: dict[str, int]) -> _History:
        return self.add("invoke", 0, "read", None).add("ok", 0, "read", balances)

    def pay(self, process: int, pid: str, cents: int, outcome: str = "ok") -> _History:
        value = {"id": pid, "from": "u1", "to": "m0", "amount_cents": cents}
        return self.add("invoke", process, "transfer", value).add(
            outcome, process, "transfer", value
        )


def _reads_of(history: _History, wallet: str) -> list[int]:
    return [
        op.completion.value[wallet]
        for op in wallet_operations(history.events)
        if op.f == "read" and op.completion is not None and wallet in op.completion.value
    ]


def test_quiet_repeats_are_left_out_and_every_balance_kept() -> None:
    h = _History()
    for _ in range(5):
        h.read({"u1": 100, "u2": 50, "m0": 0})
    h.pay(1, "p1", 30)
    for _ in range(5):
        h.read({"u1": 70, "u2": 50, "m0": 30})
    assert _reads_of(h, "u1") == [100, 70]  # one per quiet spell and balance
    assert _reads_of(h, "u2") == [50]  # no payment of u2 at all: one spell
    assert check_wallets_linearizable(h.events, INITIAL).valid is True


def test_a_stale_read_in_a_quiet_spell_is_still_caught() -> None:
    h = _History()
    h.pay(1, "p1", 30)
    h.read({"u1": 70, "u2": 50, "m0": 30})
    h.read({"u1": 100, "u2": 50, "m0": 0})  # stale: p1 was acknowledged before
    h.read({"u1": 70, "u2": 50, "m0": 30})
    assert _reads_of(h, "u1") == [70, 100]
    assert check_wallets_linearizable(h.events, INITIAL).valid is False


def test_reads_during_a_payment_are_all_kept() -> None:
    """A payment in flight (here, unknown: it may apply at any time after its
    invoke) makes every later read of its wallet count."""
    h = _History()
    h.pay(1, "p1", 30, outcome="info")
    h.read({"u1": 100, "u2": 50, "m0": 0})
    h.read({"u1": 70, "u2": 50, "m0": 30})
    h.read({"u1": 100, "u2": 50, "m0": 0})  # back again: no order explains it
    assert _reads_of(h, "u1") == [100, 70, 100]
    assert check_wallets_linearizable(h.events, INITIAL).valid is False


def test_lookups_end_or_drop_the_payments_they_settle() -> None:
    h = _History()
    h.pay(1, "p1", 30, outcome="info")
    h.pay(2, "p2", 20, outcome="info")
    h.add("invoke", 9, "lookup-transfer", ["p1", "p2"])
    h.add("ok", 9, "lookup-transfer", {"p1": "applied", "p2": "absent"})
    h.read({"u1": 70, "u2": 50, "m0": 30})
    payments = {op.process: op for op in wallet_operations(h.events) if op.f == "transfer"}
    assert list(payments) == ["p1/u1"]  # p2 is dropped: it never applied
    done = payments["p1/u1"].completion
    assert done is not None and done.index == 5  # p1 ends where the lookup did
    assert check_wallets_linearizable(h.events, INITIAL).valid is True
    # A read after the lookup that misses p1 is stale.
    h.read({"u1": 100, "u2": 50, "m0": 0})
    assert check_wallets_linearizable(h.events, INITIAL).valid is False


def _two_wallet_history(stale: bool) -> _History:
    """u1 and u4: one in each of two shares (`share_of`)."""
    h = _History()
    h.pay(1, "p1", 30)
    value = {"id": "p2", "from": "u4", "to": "m0", "amount_cents": 20}
    h.add("invoke", 2, "transfer", value).add("ok", 2, "transfer", value)
    h.read({"u1": 70, "u4": 30, "m0": 50})
    h.read({"u1": 100 if stale else 70, "u4": 30, "m0": 50})
    return h


def test_the_shares_give_the_verdict_of_the_whole(monkeypatch: Any) -> None:
    """Forked shares of the wallets (as on a long history) give the same verdict,
    summary and witness as one check of the whole."""
    import checks.parallel

    monkeypatch.setattr(checks.parallel, "PARALLEL_MIN_EVENTS", 0)
    assert [share_of(w, 2) for w in ("u1", "u4")] == [0, 1]
    initial = {**INITIAL, "u4": 50}
    for stale in (False, True):
        events = _two_wallet_history(stale).events
        whole = check_wallets_linearizable(events, initial, shares=1)
        shared = check_wallets_linearizable(events, initial, shares=2)
        assert shared.valid is whole.valid is (not stale)
        assert shared.summary == whole.summary
        assert shared.witness == whole.witness
    ops = wallet_operations(_two_wallet_history(False).events)
    halves = [wallet_operations(_two_wallet_history(False).events, (k, 2)) for k in (0, 1)]
    assert all(halves)  # each share holds a wallet
    assert sorted(op.process for op in ops) == sorted(op.process for h in halves for op in h)


def test_the_shares_fork_from_a_forked_checker(monkeypatch: Any) -> None:
    """In `d11 test` the lin check itself runs in a forked child (checks.parallel)."""
    import functools

    import checks.parallel

    monkeypatch.setattr(checks.parallel, "PARALLEL_MIN_EVENTS", 0)
    events = _two_wallet_history(False).events
    initial = {**INITIAL, "u4": 50}
    check = functools.partial(check_wallets_linearizable, events, initial, shares=2)
    verdicts = checks.parallel.run_checks({"lin": check, "again": check}, len(events))
    assert [v.valid for v in verdicts.values()] == [True, True]
