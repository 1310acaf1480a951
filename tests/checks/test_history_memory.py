"""Bounded inputs: reading and checking a history holds at most 4x its file size
(5x for EDN, which says the same in fewer bytes).

Measured with tracemalloc (memory, not time: nothing here depends on the
machine's speed) on a generated bank history of a few megabytes. Before
histories were read a line at a time, the same file peaked at about 9x.
"""

from __future__ import annotations

import json
import random
import tracemalloc
from pathlib import Path

import pytest

from checks.bank import check_bank
from checks.formats import load_history

PEAK_PER_FILE_BYTE_MAX = {"jsonl": 4.0, "edn": 5.0}  # EDN says the same in 15% fewer bytes


def edn(x: object) -> str:
    if x is None:
        return "nil"
    if isinstance(x, dict):
        return "{" + ", ".join(f":{k} {edn(v)}" for k, v in x.items()) + "}"
    return json.dumps(x)


def bank_history(path: Path, target_bytes: int, seed: int = 11) -> None:
    """Transfers and reads of five accounts, one event a line, as the harness writes them."""
    rng = random.Random(seed)
    accounts = [f"acct-{i}" for i in range(5)]
    balance = dict.fromkeys(accounts, 1_000)
    lines: list[str] = []
    size, t_ms, n = 0, 0.0, 0
    while size < target_bytes:
        process, t_ms, n = n % 8, t_ms + 0.5, n + 1
        if rng.random() < 0.5:
            src, dst = rng.sample(accounts, 2)
            amount = rng.randint(1, 9)
            value: object = {"from": src, "to": dst, "amount": amount}
            if balance[src] >= amount:
                balance[src] -= amount
                balance[dst] += amount
            pair = [("invoke", "transfer", value), ("ok", "transfer", value)]
        else:
            pair = [("invoke", "read", None), ("ok", "read", dict(balance))]
        for kind, f, v in pair:
            event = {"type": kind, "process": process, "f": f, "value": v, "time_ms": t_ms}
            if path.suffix == ".edn":  # as Jepsen writes history.edn: one map a line
                event = {**event, "type": f":{kind}", "f": f":{f}", "time": int(t_ms * 1e6)}
                del event["time_ms"]
                lines.append(
                    "{" + ", ".join(f":{k} {edn_field(v)}" for k, v in event.items()) + "}"
                )
            else:
                lines.append(json.dumps(event))
            size += len(lines[-1]) + 1
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def edn_field(v: object) -> str:
    return v if isinstance(v, str) and v.startswith(":") else edn(v)


@pytest.mark.parametrize("fmt", ["jsonl", "edn"])
def test_reading_and_checking_holds_at_most_4x_the_file(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"bank.{fmt}"
    bank_history(path, 1_500_000)
    size = path.stat().st_size
    tracemalloc.start()
    try:
        loaded = load_history(path)
        verdict = check_bank(loaded.events)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert verdict.valid is True, verdict.summary
    assert len(loaded.events) > 10_000
    print(f"peak {peak / size:.2f}x the file size ({size} bytes)")
    assert peak <= PEAK_PER_FILE_BYTE_MAX[fmt] * size, f"peak {peak / size:.2f}x the file's size"
