"""Transactional anomalies by dependency-graph cycles (Adya, after Elle).

Entry point: `check_txn(events, workload=None, realtime=True) -> Verdict`.
Vocabulary of the history: `checks.txn.txns`. What is inferred:
`checks.txn.list_append`, `checks.txn.rw_register`. Cycles:
`checks.txn.graph`. Which models each anomaly rules out: `checks.txn.models`.
"""

from __future__ import annotations

from checks.txn.anomaly import MEANING, Anomaly, Step
from checks.txn.check import check_txn, detect_workload
from checks.txn.models import MODELS, PROHIBITED_BY

__all__ = ["MEANING", "MODELS", "PROHIBITED_BY", "Anomaly", "Step", "check_txn", "detect_workload"]
