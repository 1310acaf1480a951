"""lost-payments counts a transfer a replica holds in its log by the transfer's id.

A payment's Paxos request is "pay:<id>", but the capstone's settlement
consumer names its request "settle:<transfer id>:<node>#<incarnation>:<call>".
Matched by request id, a settle acknowledged while the followers held it only
in their logs counted as held by the leader alone: the TUI's live view said
"1 acknowledged payments are not held by a quorum" mid-run, on a healthy night.
"""

from __future__ import annotations

from chapters.ch4_paxos.recovery import _logged
from reference.ledger import CreateTransfers, Transfer


def _transfer(tid: int) -> Transfer:
    return Transfer(
        id=tid, debit_account_id=1, credit_account_id=2, amount_cents=5, ledger=1, code=1
    )


def test_a_settle_in_the_log_is_held_whatever_its_request_id() -> None:
    settle = CreateTransfers(transfers=(_transfer(41), _transfer(42)), timestamp_ms=0)
    pay = CreateTransfers(transfers=(_transfer(7),), timestamp_ms=0)
    batches = [
        (("settle:41:settlement-hz#2:17", settle),),
        (("pay:cells-client-1-3", pay), ("noop", None)),
    ]
    assert _logged(batches) == {41, 42, 7}
    assert _logged([]) == set()
