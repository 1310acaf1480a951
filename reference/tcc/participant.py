"""A TCC participant: the shard side of a cross-shard payment.

The business actions are the payment's two halves. The debit freezes the
buyer's money at try (it stays the buyer's, but cannot be spent twice), then
confirm drops the hold and cancel releases it. The credit checks the account
at try, adds the money at confirm, and has nothing to undo at cancel. Each
runs inside the fence (`fence.py`), in the same local transaction.
"""

from __future__ import annotations

from collections.abc import Callable

from reference.sqlstore import Abort, Call, Procedure, Txn
from reference.tcc.fence import FenceRefused, fence_commit, fence_prepare, fence_rollback
from reference.tcc.messages import TccPhase2, TccPhase2Reply, TccTry, TccTryReply

__all__ = ["TCC_PROCEDURES"]

BusinessAction = Callable[[Txn, str, int], None]


# --8<-- [start:tcc-actions]
def _try_debit(txn: Txn, account: str, amount_cents: int) -> None:
    changed = txn.execute(
        "UPDATE accounts SET balance_cents = balance_cents - ?, frozen_cents = frozen_cents + ? "
        "WHERE id = ? AND balance_cents >= ?",
        (amount_cents, amount_cents, account, amount_cents),
    )
    if changed == 0:
        raise FenceRefused("insufficient-funds")


def _confirm_debit(txn: Txn, account: str, amount_cents: int) -> None:
    txn.execute(
        "UPDATE accounts SET frozen_cents = frozen_cents - ? WHERE id = ?", (amount_cents, account)
    )


def _cancel_debit(txn: Txn, account: str, amount_cents: int) -> None:
    txn.execute(
        "UPDATE accounts SET frozen_cents = frozen_cents - ?, balance_cents = balance_cents + ? "
        "WHERE id = ?",
        (amount_cents, amount_cents, account),
    )


def _try_credit(txn: Txn, account: str, amount_cents: int) -> None:
    if txn.one("SELECT 1 FROM accounts WHERE id = ?", (account,)) is None:
        raise FenceRefused("no-account")


def _confirm_credit(txn: Txn, account: str, amount_cents: int) -> None:
    txn.execute(
        "UPDATE accounts SET balance_cents = balance_cents + ? WHERE id = ?",
        (amount_cents, account),
    )


def _cancel_credit(txn: Txn, account: str, amount_cents: int) -> None:
    """Nothing to undo: the try did not touch the money."""


# --8<-- [end:tcc-actions]

# action -> (try, confirm, cancel)
ACTIONS: dict[str, tuple[BusinessAction, BusinessAction, BusinessAction]] = {
    "debit": (_try_debit, _confirm_debit, _cancel_debit),
    "credit": (_try_credit, _confirm_credit, _cancel_credit),
}


# --8<-- [start:tcc-participant]
def tcc_try(txn: Txn, req: TccTry, call: Call) -> TccTryReply:
    try_, _confirm, _cancel = ACTIONS[req.action]
    try:
        fence_prepare(
            txn, req.xid, req.branch_id, req.action,
            lambda t: try_(t, req.account, req.amount_cents),
        )  # fmt: skip
    except FenceRefused as refused:  # roll back the fence row with the business try
        raise Abort(
            TccTryReply(req.req_id, req.xid, req.branch_id, False, refused.reason, call.node_id)
        ) from None
    return TccTryReply(req.req_id, req.xid, req.branch_id, True, "", call.node_id)


def tcc_phase2(txn: Txn, req: TccPhase2, call: Call) -> TccPhase2Reply:
    _try, confirm, cancel = ACTIONS[req.action]
    try:
        if req.commit:
            ok = fence_commit(
                txn, req.xid, req.branch_id, lambda t: confirm(t, req.account, req.amount_cents)
            )
            if ok:  # the applied leg, for reads of which payments this store holds
                _record_leg(txn, req)
        else:
            ok = fence_rollback(
                txn, req.xid, req.branch_id, req.action,
                lambda t: cancel(t, req.account, req.amount_cents),
            )  # fmt: skip
    except FenceRefused as refused:
        raise Abort(
            TccPhase2Reply(
                req.req_id, req.xid, req.branch_id, req.commit, False, refused.reason, call.node_id
            )
        ) from None
    reason = "" if ok else "fence-refused"
    return TccPhase2Reply(req.req_id, req.xid, req.branch_id, req.commit, ok, reason, call.node_id)


# --8<-- [end:tcc-participant]


def _record_leg(txn: Txn, req: TccPhase2) -> None:
    leg_id = f"{req.xid}:{req.branch_id}"
    sign = -1 if req.action == "debit" else 1
    txn.execute(
        "INSERT OR IGNORE INTO legs (id, account, delta_cents, status) VALUES (?, ?, ?, 'applied')",
        (leg_id, req.account, sign * req.amount_cents),
    )


TCC_PROCEDURES: dict[type, Procedure] = {TccTry: tcc_try, TccPhase2: tcc_phase2}
