"""Linearizability of every user's wallet: the ledger model, one account at a time.

Chapter 4's reads are lease reads, so it claims what chapters 1-3 could
not: every read of a wallet shows every payment from it acknowledged before
the read began, and none invoked after it ended. `checks.lin` decides that
with Wing-Gong-Lowe search over the ledger model (`checks.lin.models.accounts`),
but one search over every account at once is hopeless: each full read ties
two thousand accounts together. Linearizability is *local* (Herlihy and
Wing): a history is linearizable iff its projection on each object is. So
the check projects the history on each user's wallet and searches each
projection alone, a handful of operations each.

The projection (`checks.lin.models.wallets.project`, which `d11 check lin`
uses too), per wallet `u`:

- a payment from `u` becomes a transfer from `u` to a sink of its own
  (`u>out`), so the model still refuses an acknowledged payment that
  overdraws the wallet; its attempts (a client retries, a reconciliation
  asks again, all under one payment id) are one operation, from the first
  invoke to the first `ok` (indefinite if none, dropped if all failed);
- every full read becomes a read of `u` alone, with `u`'s balance, except
  where it adds nothing: in a quiet spell (no payment of `u` in flight),
  every read must show the same balance, so one read per balance seen
  there says what all of them would (a minute of every fault composed
  holds 700,000 wallet reads, nearly all of them quiet repeats);
- a lookup by id (`lookup-transfer`) that found a payment applied ends it
  there, and one that found it absent (fenced) drops it, like a failure.

Merchants' sub-accounts are left out: a hot merchant is credited by
hundreds of concurrent payments, and the search for the subset each read
saw is exactly what explodes. The ledger checker (`checks.transfers`) holds
every account, merchants included, against the final balances.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from checks.history import Event, Operation, pair_operations
from checks.lin import check_operations
from checks.lin.checker import check_parts
from checks.lin.models.accounts import LedgerModel
from checks.lin.models.wallets import project as project_on_wallets
from checks.lin.models.wallets import wallet_parts
from checks.parallel import forks, run_checks
from checks.verdict import Verdict

__all__ = ["check_wallets_linearizable", "project", "share_of", "wallet_operations"]

# Wall time for the whole search: a budget that runs out says "unknown",
# never wrong but telling nothing, and on a loaded machine wall time runs
# several times the CPU time the search needs.
TIMEOUT_S = 300.0
SHARES = 2  # processes the wallets are checked in, on a long history (one a core here)


def wallet_operations(history: Sequence[Event], share: tuple[int, int] = (0, 1)) -> list[Operation]:
    """The history projected on each user's wallet (see the module docstring).

    `share` (k, n): only the wallets of the k-th of n shares (`share_of`).
    """
    return project(pair_operations(list(history)), share)


def project(ops: list[Operation], share: tuple[int, int] = (0, 1)) -> list[Operation]:
    """`wallet_operations` of the history's operations, paired already: the
    projection of `checks.lin.models.wallets`, on the users' wallets (`u...`)
    of one share."""
    return project_on_wallets(ops, _in_share(share))


def _in_share(share: tuple[int, int]) -> Callable[[str], bool]:
    """Is an account a user's wallet (`u...`) of the k-th of n shares?"""
    k, n = share
    return lambda a: a.startswith("u") and share_of(a, n) == k


def share_of(wallet: str, shares: int) -> int:
    """Which of `shares` shares a wallet is checked in (the same in every process)."""
    return zlib.crc32(wallet.encode()) % shares


def check_wallets_linearizable(
    history: Sequence[Event],
    initial: Mapping[str, int],
    timeout_s: float = TIMEOUT_S,
    shares: int = SHARES,
) -> Verdict:
    """`checks.lin` with the ledger model, on every wallet's projection.

    Wallets are independent, so on a long history they are checked in
    `shares` forked processes, each its own share of the wallets
    (`checks.parallel`). Every wallet linearizable in every share is the
    verdict of the whole. Anything else is judged again here, whole, so a
    failure names the same wallet, with the same witness, as it always did.
    """
    ops = pair_operations(list(history))  # once: the shares inherit it
    if forks(len(history), shares):
        checks = {
            f"share {k}": functools.partial(_check_share, ops, initial, timeout_s, (k, shares))
            for k in range(shares)
        }
        done = run_checks(checks, len(history))
        if all(v.valid is True for v in done.values()):
            return _linearizable(
                sum(v.details["wallets"] for v in done.values()),
                sum(v.details["operations"] for v in done.values()),
                max(v.details["elapsed_s"] for v in done.values()),
            )
    return _check_share(ops, initial, timeout_s, (0, 1))


def _linearizable(wallets: int, operations: int, elapsed_s: float) -> Verdict:
    details = {"model": "ledger", "wallets": wallets, "operations": operations}
    return Verdict(
        "lin", True,
        f"Every wallet's history is linearizable ({wallets} wallets, "
        f"{operations} operations): each read saw every payment acknowledged before it.",
        {**details, "elapsed_s": elapsed_s},
    )  # fmt: skip


def _check_share(
    paired: list[Operation],
    initial: Mapping[str, int],
    timeout_s: float,
    share: tuple[int, int],
) -> Verdict:
    """The check on the wallets of one share ((0, 1): all of them).

    The wallets' parts are first made straight from the history
    (`wallet_parts`: the parts the projection would give, without its
    operations, most of the time of the check); every one linearizable is
    the verdict. Anything else is judged again through the projection,
    which names the wallet and its operations, as it always did (and has a
    time budget of its own).
    """
    wallets = {str(a) for a in initial if str(a).startswith("u")}
    model = LedgerModel({a: initial[a] for a in wallets})
    made = wallet_parts(paired, _in_share(share), model)
    if made is not None and made[1] > 0:
        parts, operations = made
        quick = check_parts(parts, model, timeout_s)
        if quick.valid is True:
            return _linearizable(len(parts), operations, round(quick.elapsed_s, 3))
    ops = project(paired, share)
    result = check_operations(ops, model, timeout_s)
    details: dict[str, Any] = {
        "model": "ledger",
        "wallets": len(result.parts),
        "operations": len(ops),
        "elapsed_s": round(result.elapsed_s, 3),
    }
    if result.valid is True:
        return _linearizable(len(result.parts), len(ops), round(result.elapsed_s, 3))
    if result.valid == "unknown":
        return Verdict("lin", "unknown", f"Undecided: {result.reason}.", details)
    part = result.failing
    assert part is not None
    witness = [_describe(result.model, c) for c in part.calls][:40]
    return Verdict(
        "lin", False,
        f"The history of wallet {part.key[0]} is not linearizable: no order of its "
        "payments and reads explains what the reads saw.",
        details, witness,
    )  # fmt: skip


def _describe(model: Any, call: Any) -> dict[str, Any]:
    return {
        "what": model.describe_call(call),
        "invoked_ms": round(call.op.invoke.time_ms, 3),
        "completed_ms": None
        if call.op.completion is None
        else round(call.op.completion.time_ms, 3),
    }
