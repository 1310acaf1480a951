"""Linearizability of every user's wallet: the ledger model, one account at a time.

Chapter 4's reads are lease reads, so it claims what chapters 1-3 could
not: every read of a wallet shows every payment from it acknowledged before
the read began, and none invoked after it ended. `checks.lin` decides that
with Wing-Gong-Lowe search over the ledger model (`checks.lin.models.ledger`),
but one search over every account at once is hopeless: each full read ties
two thousand accounts together. Linearizability is *local* (Herlihy and
Wing): a history is linearizable iff its projection on each object is. So
the check projects the history on each user's wallet and searches each
projection alone, a handful of operations each.

The projection, per wallet `u`:

- a payment from `u` becomes a transfer from `u` to a sink of its own
  (`u>out`), so the model still refuses an acknowledged payment that
  overdraws the wallet; its attempts (a client retries, a reconciliation
  asks again, all under one payment id) are one operation, from the first
  invoke to the first `ok` (indefinite if none, dropped if all failed);
- every full read becomes a read of `u` alone, with `u`'s balance.

Merchants' sub-accounts are left out: a hot merchant is credited by
hundreds of concurrent payments, and the search for the subset each read
saw is exactly what explodes. The ledger checker (`checks.ledger`) holds
every account, merchants included, against the final balances.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from checks.history import Event, Operation, pair_operations
from checks.lin import check_operations
from checks.lin.models.ledger import LedgerModel
from checks.verdict import Verdict

__all__ = ["check_wallets_linearizable", "wallet_operations"]

TIMEOUT_S = 30.0


# --8<-- [start:wallet-projection]
def wallet_operations(history: Sequence[Event]) -> list[Operation]:
    """The history projected on each user's wallet (see the module docstring)."""
    ops = pair_operations(list(history))
    payments: dict[str, list[Operation]] = {}
    out: list[Operation] = []
    for op in ops:
        value = op.invoke.value
        if op.f == "transfer" and isinstance(value, dict) and str(value["from"]).startswith("u"):
            payments.setdefault(str(value["id"]), []).append(op)
        elif op.f == "read" and op.invoke.value is None and op.type == "ok":
            done = op.completion
            assert done is not None
            for account, cents in done.value.items():
                if str(account).startswith("u"):
                    process = f"{op.process}/{account}"
                    invoke = Event("invoke", process, "read", [account], op.invoke.time_ms,
                                   op.invoke.index)  # fmt: skip
                    ok = Event("ok", process, "read", {account: cents}, done.time_ms, done.index)
                    out.append(Operation(process, "read", invoke, ok))
    for pid, attempts in payments.items():
        first = attempts[0].invoke
        oks = [a.completion for a in attempts if a.type == "ok" and a.completion is not None]
        if not oks and all(a.type == "fail" for a in attempts):
            continue  # certainly never applied: no operation at all
        wallet = str(first.value["from"])
        value = {"from": wallet, "to": f"{wallet}>out", "amount": first.value["amount_cents"]}
        process = f"{pid}/{wallet}"
        invoke = Event("invoke", process, "transfer", value, first.time_ms, first.index)
        done = (
            Event("ok", process, "transfer", value, oks[0].time_ms, oks[0].index) if oks else None
        )
        out.append(Operation(process, "transfer", invoke, done))
    return out


# --8<-- [end:wallet-projection]


def check_wallets_linearizable(
    history: Sequence[Event], initial: Mapping[str, int], timeout_s: float = TIMEOUT_S
) -> Verdict:
    """`checks.lin` with the ledger model, on every wallet's projection."""
    ops = wallet_operations(history)
    wallets = {str(a) for a in initial if str(a).startswith("u")}
    result = check_operations(ops, LedgerModel({a: initial[a] for a in wallets}), timeout_s)
    details: dict[str, Any] = {
        "model": "ledger",
        "wallets": len(result.parts),
        "operations": len(ops),
        "elapsed_s": round(result.elapsed_s, 3),
    }
    if result.valid is True:
        return Verdict(
            "lin", True,
            f"Every wallet's history is linearizable ({len(result.parts)} wallets, "
            f"{len(ops)} operations): each read saw every payment acknowledged before it.",
            details,
        )  # fmt: skip
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
