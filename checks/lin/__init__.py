"""Linearizability checking: Wing–Gong–Lowe search with P-compositionality.

from checks.lin import check_history, model_named
result = check_history(events, model_named("cas-register"), timeout_s=10)
result.valid  # True, False, or "unknown"
"""

from __future__ import annotations

from checks.lin.checker import LinResult, Part, check_calls, check_history, check_operations
from checks.lin.model import UNKNOWN, Call, Model
from checks.lin.models import MODELS, model_named

__all__ = [
    "MODELS",
    "UNKNOWN",
    "Call",
    "LinResult",
    "Model",
    "Part",
    "check_calls",
    "check_history",
    "check_operations",
    "model_named",
]
