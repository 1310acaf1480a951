"""A linearizability result as the shared `Verdict`, and as words."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from checks.explain.witness import Explanation
from checks.lin.checker import LinResult
from checks.lin.model import UNKNOWN
from checks.verdict import Verdict


def summary(result: LinResult) -> str:
    """One sentence a person reads first."""
    n_calls = sum(len(p.calls) for p in result.parts)
    where = f"{n_calls} operations in {len(result.parts)} part(s)"
    if result.valid is True:
        return f"linearizable ({where}, model {result.model.name})"
    if result.valid is False:
        assert result.failing is not None
        if result.failing.key is None and len(result.parts) == 1:
            return (
                f"not linearizable: no linearization of the {n_calls} operations "
                f"under model {result.model.name}"
            )
        return (
            f"not linearizable: part {result.failing.key!r} of {where} has no "
            f"linearization under model {result.model.name}"
        )
    return f"unknown: {result.reason} ({where}); this is not a verdict either way"


def lin_verdict(
    result: LinResult,
    ex: Explanation | None = None,
    at: Callable[[int], str] | None = None,
    **extra: Any,
) -> Verdict:
    """The shared verdict for `d11 check lin --json` and the harness."""
    finished = [p for p in result.parts if p.result is not None]
    details: dict[str, Any] = {
        "model": result.model.name,
        "operations": sum(len(p.calls) for p in result.parts),
        "operations_left_out": result.calls_dropped,
        "parts": len(result.parts),
        "parts_finished": len(finished),
        "elapsed_s": round(result.elapsed_s, 6),
        "search_steps": result.stats.steps,
        "cache_entries": result.stats.cache_entries,
        "cache_full": result.stats.cache_full,
    }
    if result.reason:
        details["reason"] = result.reason
    details.update(extra)
    witness = None
    if result.failing is not None:
        details["failing_part"] = result.failing.key
    if ex is not None:
        model = result.model
        details["explanation"] = ex.lines(model, at)
        details["explain_complete"] = ex.complete
        details["explain_s"] = round(ex.elapsed_s, 6)
        details["shortest_failing_prefix"] = len(ex.calls)
        details["longest_linearization"] = [
            {
                "process": ex.calls[i].process,
                "op": model.describe_call(ex.calls[i]),
                "state_after": model.describe_state(s),
            }
            for i, s in zip(ex.order, ex.states, strict=True)
        ]
        shown = sorted(set(ex.witness) | set(ex.weakened), key=lambda i: ex.calls[i].call)
        witness = {
            "part": ex.part_key,
            "operations": [_call_json(ex, i, model) for i in shown],
            "cannot_linearize": None if ex.stuck is None else _call_json(ex, ex.stuck, model),
        }
    return Verdict("lin", result.valid, summary(result), details, witness)


def _call_json(ex: Explanation, i: int, model: Any) -> dict[str, Any]:
    c = ex.calls[i]
    return {
        "process": c.process,
        "op": model.describe_call(c),
        "f": c.f,
        "invoke_index": c.call,
        "complete_index": c.ret,
        "outcome_known": c.output is not UNKNOWN and i not in ex.weakened,
    }
