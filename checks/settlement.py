"""Events held against the ledger: every committed payment settled exactly once.

The delivery checker (`checks.delivery`) judges the broker from the
consumers' side. This one asks the question a merchant asks: was I paid,
once, for every payment, and for nothing else? It reads two things from the
history:

- the *final read* of every balance (f="read", ok, extra final=True). Each
  merchant has an escrow account where payments land and a settled account
  where settlement moves them. Once every event has been consumed, an escrow
  balance is zero exactly when the payments into it and the settlements out
  of it add up: positive means a committed payment was never settled (its
  event lost), negative means a settlement with no payment behind it (a
  declined payment announced) or a payment settled twice;
- per payment, the producer's account of its local transaction (f="commit"
  ok / f="rollback" ok, value {"id": payment id}) and the settlement
  consumer's transfers (f="settle", value {"payment": id, "result": code}).
  A settlement the ledger applied (`ok`) more than once, or for a payment
  rolled back, names the payment at fault. (`exists` means an earlier
  delivery's transfer holds the id: the same effect, not a second one.)

Run it after the consumers drained, or payments still in flight read as lost.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from checks.history import Event, pair_operations
from checks.verdict import Verdict

__all__ = ["check_settlement"]

WITNESS_MAX = 20


# --8<-- [start:settlement-check]
def check_settlement(events: Sequence[Event], *, escrow_accounts: Iterable[str]) -> Verdict:
    ops = pair_operations(list(events))
    committed: set[str] = set()
    rolled_back: set[str] = set()
    applied: Counter[str] = Counter()  # payment id -> settlements the ledger applied anew
    seen: set[str] = set()  # payments with any settlement answer (ok or exists)
    final: dict[str, Any] | None = None
    for op in ops:
        if op.type != "ok" or op.completion is None:
            continue
        value = op.completion.value if isinstance(op.completion.value, dict) else {}
        if op.f == "commit":
            committed.add(str(value["id"]))
        elif op.f == "rollback":
            rolled_back.add(str(value["id"]))
        elif op.f == "settle":
            payment = str(value["payment"])
            seen.add(payment)
            if value.get("result") == "ok":
                applied[payment] += 1
        elif op.f == "read" and op.completion.extra.get("final"):
            final = dict(value)
    problems: list[dict[str, Any]] = []
    for payment, n in sorted(applied.items()):
        if n > 1:
            problems.append({"kind": "settled-twice", "payment": payment, "times": n})
        if payment in rolled_back:
            problems.append({"kind": "settled-not-paid", "payment": payment})
    escrows = sorted(escrow_accounts)
    if final is None:
        return Verdict(
            "settlement",
            "unknown" if not problems else False,
            "No final read of the balances: escrow accounts not judged."
            + (f" {len(problems)} per-payment problems." if problems else ""),
            {"committed": len(committed), "settled": len(seen)},
            problems[:WITNESS_MAX] or None,
        )
    for account in escrows:
        balance = int(final.get(account, 0))
        if balance > 0:
            problems.append({"kind": "unsettled", "account": account, "cents": balance})
        elif balance < 0:
            problems.append({"kind": "over-settled", "account": account, "cents": balance})
    unsettled = sorted(committed - seen - rolled_back)
    details = {
        "committed": len(committed),
        "rolled_back": len(rolled_back),
        "settled": len(seen),
        "committed_without_settlement": len(unsettled),
        "problems": dict(Counter(p["kind"] for p in problems)),
    }
    if not problems:
        return Verdict(
            "settlement",
            True,
            f"Every escrow account is back to zero: the {len(committed)} committed payments "
            "were settled exactly once, and nothing else was.",
            details,
        )
    for payment in unsettled[:WITNESS_MAX]:
        problems.append({"kind": "no-settlement-event", "payment": payment})
    kinds = ", ".join(f"{k} x{n}" for k, n in Counter(p["kind"] for p in problems).items())
    return Verdict(
        "settlement",
        False,
        f"Settlement does not match the ledger ({kinds}). First: {_said(problems[0])}.",
        details,
        problems[:WITNESS_MAX],
    )


# --8<-- [end:settlement-check]


def _said(problem: dict[str, object]) -> str:
    """One problem as a reader reads it: "unsettled: account m3@pay, cents 1200"
    (it was printed as a Python dict)."""
    rest = ", ".join(f"{k} {v}" for k, v in problem.items() if k != "kind")
    return f"{problem['kind']}: {rest}" if rest else str(problem["kind"])
