"""Which acknowledged payments are missing from the final state, by id.

The ledger checker (`checks.transfers`) sees that the final balances are short,
and names the lost transfers when one or two explain it. After a failover
with asynchronous replication, a whole window of payments is gone at once,
and the learner wants the list. This check reads it off the history: the
final `read-payments` operation returns the ids each store holds as applied
(a cross-cell payment applies as two legs, `<id>:debit` and `<id>:credit`),
and every transfer the system acknowledged must be there.

History vocabulary: f="transfer" (ok = acknowledged; value has "id");
f="read-payments" ok value [applied id, ...], with extra.final = True.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from checks.history import Event, pair_operations
from checks.verdict import Verdict

__all__ = ["check_lost_payments"]

WITNESS_MAX = 50


# --8<-- [start:lost-payments]
def check_lost_payments(events: Sequence[Event]) -> Verdict:
    ops = pair_operations(list(events))
    acked: dict[str, dict[str, Any]] = {}
    for op in ops:
        if op.f == "transfer" and op.type == "ok":
            acked.setdefault(str(op.invoke.value["id"]), op.invoke.value | {"acked_ms": 0.0})
            assert op.completion is not None
            acked[str(op.invoke.value["id"])]["acked_ms"] = op.completion.time_ms
    finals = [
        op for op in ops
        if op.f == "read-payments" and op.type == "ok" and op.completion is not None
        and op.completion.extra.get("final")
    ]  # fmt: skip
    if not finals:
        return Verdict(
            "lost-payments", "unknown",
            "No final read of the stores' payments: cannot tell which payments survived.",
            {"acknowledged": len(acked)},
        )  # fmt: skip
    held = set(map(str, finals[-1].completion.value))  # type: ignore[union-attr]
    lost, half = [], []
    # --8<-- [start:lost-classify]
    for pid, value in acked.items():
        legs = {f"{pid}:debit", f"{pid}:credit"} & held
        if pid in held or len(legs) == 2:
            continue
        (half if legs else lost).append({"id": pid, **value, "legs_held": sorted(legs)})
    # --8<-- [end:lost-classify]
    # --8<-- [end:lost-payments]
    details = {
        "acknowledged": len(acked),
        "lost": [x["id"] for x in lost],
        "half_applied": [x["id"] for x in half],
        "lost_cents": sum(int(x.get("amount_cents", 0)) for x in lost),
    }
    if not lost and not half:
        return Verdict(
            "lost-payments", True,
            f"All {len(acked)} acknowledged payments are in the final state.", details,
        )  # fmt: skip
    ids = ", ".join(x["id"] for x in (lost + half)[:10])
    more = "" if len(lost) + len(half) <= 10 else f" and {len(lost) + len(half) - 10} more"
    return Verdict(
        "lost-payments",
        False,
        (
            f"{len(lost)} acknowledged payment is gone from the final state"
            if len(lost) == 1
            else f"{len(lost)} acknowledged payments are gone from the final state"
        )
        + (f" and {len(half)} half there" if half else "")
        + f": {ids}{more}.",
        details,
        (lost + half)[:WITNESS_MAX],
    )
