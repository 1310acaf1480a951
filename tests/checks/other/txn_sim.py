"""A strict-serializable store, simulated: transactional histories valid by
construction. Each transaction runs atomically at one point between its
invoke and its completion; some end `info` (committed or not) or `fail`."""

from __future__ import annotations

import random
from typing import Any

from other_builder import History

KEYS = ("x", "y", "z", "w")


def simulate_txns(
    seed: int, txns: int = 30, processes: int = 4, workload: str = "list-append"
) -> History:
    rng = random.Random(seed)
    h = History()
    lists: dict[str, list[int]] = {}
    regs: dict[str, int | None] = {}
    fresh = iter(range(1, 1_000_000))
    pending: dict[int, tuple[list[list[Any]], list[list[Any]] | None]] = {}
    started = 0
    while started < txns or pending:
        idle = [p for p in range(processes) if p not in pending]
        if idle and started < txns and rng.random() < 0.4:
            p = rng.choice(idle)
            started += 1
            plan = []
            for _ in range(rng.randint(1, 4)):
                k = rng.choice(KEYS)
                if rng.random() < 0.5:
                    plan.append(["r", k, None])
                else:
                    plan.append(["append" if workload == "list-append" else "w", k, next(fresh)])
            pending[p] = (plan, None)
            h.invoke(p, "txn", plan)
            continue
        if not pending:
            continue
        p = rng.choice(sorted(pending))
        plan, done = pending[p]
        if done is None and rng.random() < 0.7:
            if rng.random() < 0.1:
                pending[p] = (plan, [])  # aborted: no effect
                continue
            result = []
            for f, k, v in plan:  # the atomic step
                if f == "r":
                    got = list(lists.get(k, [])) if workload == "list-append" else regs.get(k)
                    result.append(["r", k, got])
                elif f == "append":
                    lists.setdefault(k, []).append(v)
                    result.append([f, k, v])
                else:
                    regs[k] = v
                    result.append([f, k, v])
            pending[p] = (plan, result)
            continue
        del pending[p]
        if done is None or done == []:
            h.fail(p, "txn", plan)
        elif rng.random() < 0.1:
            h.info(p, "txn", None)  # committed, but the client never heard
        else:
            h.ok(p, "txn", done)
    return h
