"""A linearizable bank, simulated: histories valid by construction.

Processes invoke transfers and reads; each operation takes effect at one
point between its invoke and its completion (its linearization point), so
the history is what a correct, linearizable ledger would produce. Transfers
may end `info` (taken effect or not) or `fail` (not taken effect).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from other_builder import History

ACCOUNTS = ("a", "b", "c", "d")
INITIAL_CENTS = 100


@dataclass
class Pending:
    f: str
    value: Any
    applied: bool = False
    result: Any = None


@dataclass
class BankRun:
    history: History
    applied: list[dict[str, Any]] = field(default_factory=list)  # transfers that took effect
    balances: dict[str, int] = field(default_factory=dict)


def simulate(seed: int, ops: int = 20, processes: int = 3, info_rate: float = 0.2) -> BankRun:
    rng = random.Random(seed)
    h = History()
    bal = dict.fromkeys(ACCOUNTS, INITIAL_CENTS)
    h.op("setup", "init", None, dict(bal))
    run = BankRun(h, balances=bal)
    pending: dict[int, Pending] = {}
    started = 0
    next_id = 0
    while started < ops or pending:
        idle = [p for p in range(processes) if p not in pending]
        choice = rng.random()
        if idle and started < ops and choice < 0.4:
            p = rng.choice(idle)
            started += 1
            if rng.random() < 0.6:
                src, dst = rng.sample(ACCOUNTS, 2)
                next_id += 1
                value = {
                    "id": f"t{next_id}",
                    "from": src,
                    "to": dst,
                    "amount_cents": rng.randint(1, 30),
                }
                pending[p] = Pending("transfer", value)
            else:
                pending[p] = Pending("read", None)
            h.invoke(p, pending[p].f, pending[p].value)
            continue
        if not pending:
            continue
        p = rng.choice(sorted(pending))
        op = pending[p]
        if not op.applied and choice < 0.8:
            op.applied = True  # the linearization point
            if op.f == "read":
                op.result = dict(bal)
            elif bal[op.value["from"]] >= op.value["amount_cents"] and rng.random() < 0.9:
                bal[op.value["from"]] -= op.value["amount_cents"]
                bal[op.value["to"]] += op.value["amount_cents"]
                run.applied.append(op.value)
                op.result = "ok"
            else:
                op.result = "fail"
            continue
        del pending[p]
        if op.f == "read":
            if op.applied:
                h.ok(p, "read", op.result)
            else:
                h.fail(p, "read", None)
        elif rng.random() < info_rate:
            h.info(p, "transfer", None)  # the client timed out: applied or not
        elif not op.applied:
            h.fail(p, "transfer", op.value)
        else:
            h.add("ok" if op.result == "ok" else "fail", p, "transfer", op.value)
    h.op("final", "read", None, dict(bal))
    return run
