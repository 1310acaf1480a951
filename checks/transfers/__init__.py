"""The ledger checker: hold every transfer against the balances reads saw.

Jepsen's bank check (`checks.bank`) only asks that reads add up. A ledger must
also apply each acknowledged transfer exactly once, never apply a failed one,
and never let a read see half a transfer. This checker replays the history:
the balances a read returned must equal the initial balances plus the
effects of some set of transfers the read could have seen.

History vocabulary (one operation = an invoke and its completion; amounts
are integer cents; account ids are compared as strings):

    f="init"      ok value {acct: balance_cents, ...}: the starting balances,
                  recorded once by the workload's setup (or pass `initial`).
    f="transfer"  invoke value {"id": str, "from": acct, "to": acct,
                  "amount_cents": int}. The id is chosen by the client and
                  makes the transfer idempotent: a retry reuses it.
                  ok   -> acknowledged: it must take effect exactly once;
                  fail -> it certainly did not take effect (this attempt);
                  info, or no completion -> indefinite: it may have taken
                  effect once, or not at all; the reads decide.
                  An id with any ok attempt is acknowledged; with only fail
                  attempts, failed; otherwise indefinite.
    f="read"      invoke value None (all accounts); ok value
                  {acct: balance_cents, ...}. Reads of some accounts only are
                  checked for negative balances and nothing else.
    f="lookup-transfer"
                  invoke value [id, ...]; ok value {id: "applied" | "absent"}:
                  the ledger's own answer, by idempotent id, through its log
                  (Jepsen's and TigerBeetle's final lookups). "applied": the
                  transfer took effect exactly once, before the lookup ended;
                  "absent": it never took effect, and never will (the lookup
                  fenced the id). Only ok lookups count. A transfer with an
                  "applied" answer is acknowledged from the lookup's end on,
                  one with "absent" is failed; a lookup contradicting the
                  history (an acknowledged transfer "absent", a failed one
                  "applied", two answers that differ) is a violation.

What is checked:

1. Every read of all accounts adds up to the initial total: transfers move
   money, they never make or lose it. A read that does not saw a transfer
   half-applied (the debit without its credit, or the reverse).
2. The final read phase (complete reads invoked after every transfer event)
   resolves the indefinite transfers that no lookup answered: the final balances must be the initial
   balances plus every acknowledged transfer once, plus some subset of the
   indefinite ones. Which subset is reported; if none fits, the checker
   searches for the fewest faults, up to `faults_max` (an acknowledged
   transfer lost or applied twice, a failed one applied, one half-applied)
   that would explain the balances, and says so in words.
3. With `realtime=True` (for stages that claim linearizable reads), every
   read of all accounts is held to the same rule at its own point in time:
   transfers acknowledged before the read began must be visible, transfers
   invoked after it ended must not be.
4. No balance goes below zero, unless `negative_allowed`.

The subset search is bounded (`STATES_MAX` distinct balance vectors); past
it, the checker says "too many to enumerate" and answers "unknown" for that
read rather than guess.

Knowing that a read is wrong is cheap: an account no transfer in flight
touches must already hold its expected balance, so only the accounts those
transfers touch enter the subset search. Explaining why it is wrong may
cost far more, so it runs on its own budget (`explain_steps`, and
`explain_time_ms` of wall time for all explanations of one check); when the
budget runs out the error says the explanation was cut short, and the
verdict itself is unchanged. (Pass `explain_time_ms=None` where the words
must not depend on the machine's load: then only steps bound the search.)

Where each part lives: the history read into transfers and reads
(`checks.transfers.history`), the subset and fault searches over balance
vectors (`.search`), one read held and explained (`.reads`), `check_ledger`
as named steps (`.check`), and the verdict's words (`.verdict`).
"""

from __future__ import annotations

from checks.transfers.check import check_ledger
from checks.transfers.history import ABSENT, APPLIED, LedgerError, Read, Transfer
from checks.transfers.search import (
    EXPLAIN_STEPS,
    EXPLAIN_TIME_MS,
    FAULTS_MAX,
    STATES_MAX,
    WORK_MAX,
    Budget,
    Explanation,
    Fault,
    Vec,
    Ways,
    _Space,
    add,
    effect,
    explain,
    faults,
    reachable,
    sparse,
    sub,
)

__all__ = [
    "ABSENT",
    "APPLIED",
    "EXPLAIN_STEPS",
    "EXPLAIN_TIME_MS",
    "FAULTS_MAX",
    "STATES_MAX",
    "WORK_MAX",
    "Budget",
    "Explanation",
    "Fault",
    "LedgerError",
    "Read",
    "Transfer",
    "Vec",
    "Ways",
    "_Space",
    "add",
    "check_ledger",
    "effect",
    "explain",
    "faults",
    "reachable",
    "sparse",
    "sub",
]
