"""The transactional checker: infer dependencies, find cycles, name models.

`check_txn(events)` reads the f="txn" operations (vocabulary in
`checks.txn.txns`), infers the dependency graph for list-append or
rw-register histories, reports each anomaly with its story in words, and
names the weakest consistency models the history violates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

from checks.history import Event, HistoryError
from checks.txn.anomaly import MEANING, Anomaly
from checks.txn.graph import add_realtime, find_cycles
from checks.txn.list_append import infer as infer_list_append
from checks.txn.models import MODELS, violated, weakest
from checks.txn.rw_register import infer as infer_rw_register
from checks.txn.txns import Txn, read_txns
from checks.verdict import Verdict, has_client_operations, no_client_operations

Workload = Literal["list-append", "rw-register"]


def detect_workload(txns: Sequence[Txn]) -> Workload:
    """list-append if any append (or list-valued read), rw-register if any write."""
    fs = {m.f for t in txns for m in t.mops}
    if "append" in fs and "w" in fs:
        raise HistoryError("the history mixes appends and writes: pick one workload")
    if "append" in fs:
        return "list-append"
    if "w" in fs:
        return "rw-register"
    lists = any(isinstance(m.value, tuple) for t in txns for m in t.mops if m.f == "r")
    return "list-append" if lists else "rw-register"


def check_txn(
    events: Sequence[Event], *, workload: Workload | None = None, realtime: bool = True
) -> Verdict:
    """Judge a transactional history. `realtime`: also add real-time edges,
    so cycles through them show violations of strict serializability."""
    if not has_client_operations(events):
        return no_client_operations("txn")
    txns = read_txns(events)
    if not txns:
        return Verdict("txn", "unknown", "No f='txn' operations in the history.", {})
    kind = workload or detect_workload(txns)
    infer = infer_list_append if kind == "list-append" else infer_rw_register
    graph, anomalies, committed = infer(txns)
    if realtime:
        add_realtime(graph, committed)
    anomalies = [*anomalies, *find_cycles(graph, realtime=realtime)]
    return _verdict(kind, txns, committed, graph.edge_count(), anomalies, realtime)


def _verdict(
    kind: str,
    txns: list[Txn],
    committed: list[Txn],
    edges: dict[str, int],
    anomalies: list[Anomaly],
    realtime: bool,
) -> Verdict:
    counts = Counter(a.kind for a in anomalies)
    broken = violated(counts)
    details: dict[str, Any] = {
        "workload": kind,
        "txns": len(txns),
        "committed": len(committed),
        "statuses": dict(Counter(t.status for t in txns)),
        "edges": edges,
        "realtime": realtime,
        "anomaly_types": sorted(counts),
        "anomaly_counts": dict(counts),
        "not": [m for m in MODELS if m in broken],
        "weakest_violated": weakest(broken),
        "txn_index": _involved(txns, anomalies),
    }
    witness = [a.to_json() for a in anomalies]
    if not anomalies:
        return Verdict(
            "txn",
            True,
            f"No anomaly in {len(txns)} {kind} transactions ({len(committed)} committed; "
            f"{sum(edges.values())} dependency edges, no cycle): consistent with "
            f"{'strict serializability' if realtime else 'serializability'}.",
            details,
        )
    first = anomalies[0]
    names = ", ".join(f"{k} x{n}" for k, n in sorted(counts.items()))
    weakest_names = " nor ".join(details["weakest_violated"])
    stronger = "" if weakest_names == "strict serializable" else " (nor anything stronger)"
    summary = (
        f"Not {weakest_names}{stronger}: "
        f"{names}. First, {first.kind} ({MEANING[first.kind]}): {first.explanation}"
    )
    return Verdict("txn", False, summary, details, witness)


def _involved(txns: list[Txn], anomalies: list[Anomaly]) -> dict[str, Any]:
    """The transactions an anomaly names, as recorded, so a reader can find them."""
    named = {n for a in anomalies for n in a.txns}
    return {t.name: t.to_json() for t in txns if t.name in named}
