"""What chapter 4 measures and checks beyond the history's checkers.

- `recovery_figures`: after a city is lost (crashed or cut off), how long
  until the uid range it served commits a payment again, and when its
  groups' new leaders were elected and its uid ranges moved. This is the
  time-to-recover the chapter reports (RTO); the checkers prove RPO = 0.
- `double_entry_check`: reads the final state of every ledger replica. Each
  ledger must pass its full audit (every balance recomputed from the stored
  transfers; all debits equal all credits), and replicas of one group that
  applied the same prefix of the log must hold exactly the same ledger.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Protocol

from checks.history import Event, pair_operations
from checks.verdict import Verdict
from reference.ledger import CreateTransfers, LedgerInvariantError
from reference.ledger.directory import transfer_id
from reference.ledger.service import LedgerReplica
from reference.paxos.messages import Batch
from reference.payment.accounts import parse_account

if TYPE_CHECKING:
    from chapters.ch4_paxos.group import GroupPlan
    from chapters.stage import Runtime
    from reference.ledger.directory import Directory
    from reference.net.topology import Topology

__all__ = ["PaxosDeploymentLike", "double_entry_check", "lost_payments_check", "recovery_figures"]


class PaxosDeploymentLike(Protocol):
    """What these checks read of chapter 4's deployment (`stage.PaxosDeployment`),
    named here so that this file needs nothing from the stage that uses it."""

    rt: Runtime
    topology: Topology
    history: list[Event]
    groups: dict[str, GroupPlan]
    cell_city: dict[str, str]
    directory: Directory | None
    lost_cities: list[tuple[float, str]]


def _cuts(dep: PaxosDeploymentLike) -> list[tuple[float, str]]:
    """(time, city) of every city loss: the stage's scenarios and the harness's nemesis."""
    cuts = {(round(t_ms, 3), city) for t_ms, city in dep.lost_cities}
    cities = set(dep.cell_city.values())
    for ev in dep.history:  # without telemetry, the nemesis events say it too
        is_isolation = ev.process == "nemesis" and ev.f == "isolate"
        if is_isolation and isinstance(ev.value, dict) and ev.value.get("target") in cities:
            cuts.add((round(ev.time_ms, 3), str(ev.value["target"])))
    return sorted(cuts)


# --8<-- [start:time-to-recover]
def recovery_figures(dep: PaxosDeploymentLike) -> dict[str, Any]:
    """For each city loss: cut -> first new leader, uid ranges moved, first payment."""
    cuts = _cuts(dep)
    if not cuts or dep.directory is None:
        return {}
    ops = [op for op in pair_operations(list(dep.history)) if op.f == "transfer"]
    telemetry = getattr(dep.rt, "telemetry", None)
    losses = []
    for at_ms, city in cuts:
        cells = {c for c, home in dep.cell_city.items() if home == city}
        members = {m for c in cells for m in dep.groups[c].replicas}

        def affected(value: Any, cells: set[str] = cells) -> bool:
            buyer = value.get("from", "") if isinstance(value, dict) else ""
            return parse_account(buyer)[0] == "user" and dep.directory.group_of(buyer) in cells  # type: ignore[union-attr]

        firsts = [
            op.completion.time_ms
            for op in ops
            if op.completion is not None
            and op.completion.type == "ok"
            and op.invoke.time_ms >= at_ms
            and affected(op.invoke.value)
        ]
        entry: dict[str, Any] = {"city": city, "at_ms": round(at_ms, 3), "cells": sorted(cells)}
        entry["recovered_ms"] = round(min(firsts) - at_ms, 3) if firsts else None
        if telemetry is not None:
            leaders = [
                e.time_ms
                for e in telemetry.find(kind="paxos.leader")
                if e.time_ms >= at_ms and e.node in members and dep.topology.city_of(e.node) != city
            ]
            entry["leader_elected_ms"] = round(min(leaders) - at_ms, 3) if leaders else None
            moved = [
                e.time_ms
                for e in telemetry.find(kind="failover-complete")
                if e.time_ms >= at_ms and e.fields.get("cell") in cells
            ]
            entry["rules_moved_ms"] = round(min(moved) - at_ms, 3) if moved else None
        losses.append(entry)
    recovered = [e["recovered_ms"] for e in losses if e["recovered_ms"] is not None]
    return {
        "city_losses": losses,
        "time_to_recover_ms": max(recovered) if len(recovered) == len(losses) else None,
    }


# --8<-- [end:time-to-recover]


def double_entry_check(dep: PaxosDeploymentLike) -> Verdict:
    """Audit every live ledger replica; same log prefix, same ledger."""
    problems: list[str] = []
    audited = 0
    groups: dict[str, dict[str, int]] = {}
    for cell, plan in sorted(dep.groups.items()):
        by_index: dict[int, tuple[str, Any]] = {}
        groups[cell] = {}
        for replica_id in plan.replicas:
            node = dep.rt.node(replica_id) if dep.rt.status(replica_id) == "up" else None  # type: ignore[attr-defined]
            if not isinstance(node, LedgerReplica):
                continue
            ledger = node.machine.ledger
            try:
                ledger.check_invariants()
            except LedgerInvariantError as exc:
                problems.append(f"{replica_id}: {exc}")
            dp, dpo, cp, cpo = ledger.totals()
            if dp != cp or dpo != cpo:
                problems.append(f"{replica_id}: debits {dp}+{dpo} != credits {cp}+{cpo}")
            audited += 1
            index = node.commit_index
            groups[cell][replica_id] = index
            snapshot = ledger.snapshot()
            if index in by_index and by_index[index][1] != snapshot:
                problems.append(
                    f"{replica_id} and {by_index[index][0]} applied slots 1..{index} "
                    "and hold different ledgers"
                )
            by_index.setdefault(index, (replica_id, snapshot))
    details = {"replicas_audited": audited, "applied_index": groups, "problems": problems[:20]}
    if problems:
        return Verdict("double-entry", False, f"{len(problems)} problem(s): {problems[0]}", details)
    if audited == 0:
        return Verdict("double-entry", "unknown", "No ledger replica was up to audit.", details)
    return Verdict(
        "double-entry",
        True,
        f"{audited} ledger replicas audited: debits equal credits, every balance matches "
        "its transfers, and replicas at the same log index hold the same ledger.",
        details,
    )


def _logged(batches: list[Batch]) -> set[int]:
    """The transfer ids a replica's log holds, chosen or accepted, not yet applied.

    By what the commands carry, not by request id: a payment's request is
    "pay:<id>", but a settlement consumer's (the capstone's pipeline) names
    its node and call, and a settle acknowledged while a follower held it only
    in its log was counted as held by the leader alone (a false "lost" in the
    TUI's live view, mid-run).
    """
    return {
        t.id
        for batch in batches
        for _, command in batch
        if isinstance(command, CreateTransfers)
        for t in command.transfers
    }


# --8<-- [start:lost-payments]
def lost_payments_check(dep: PaxosDeploymentLike, history: list[Event]) -> Verdict:
    """Chapter 3's "lost-payments", asked of the Paxos groups themselves.

    Every payment a client saw acknowledged must still be held by a phase-2
    quorum of its group's current membership: two of three replicas, both
    replicas of a 2+arbiter group, or the survivor of a degraded one. That is
    what RPO = 0 means, and what the commit promised before the client heard
    "paid". A replica holds it once it is in its ledger, or in its log still
    waiting to be applied (a group can stall with chosen slots unapplied;
    that costs availability, not the payment).
    """
    assert dep.directory is not None
    acked = [
        op.invoke.value
        for op in pair_operations(list(history))
        if op.f == "transfer" and op.type == "ok" and isinstance(op.invoke.value, dict)
    ]
    group_of = functools.cache(dep.directory.group_of)  # (two thousand payers, 43,000 payments)
    # (payment, its group, its transfer id) of each acknowledged payment
    where = [(v, group_of(str(v["from"])), transfer_id(str(v["id"]))) for v in acked]
    asked: dict[str, list[int]] = {cell: [] for cell in dep.groups}  # cell -> acked transfer ids
    for _, cell, tid in where:
        asked[cell].append(tid)
    held: dict[str, dict[str, tuple[set[int], set[int]]]] = {}  # cell -> replica -> ids held
    quorum: dict[str, int] = {}
    for cell, plan in dep.groups.items():
        held[cell] = {}
        newest = None
        for replica_id in plan.replicas:
            node = dep.rt.node(replica_id) if dep.rt.status(replica_id) == "up" else None  # type: ignore[attr-defined]
            if not isinstance(node, LedgerReplica):
                continue
            # Which of them its ledger holds: looked up, not read off a
            # snapshot (that would decode every sealed segment of it).
            applied = {t.id for t in node.machine.ledger.lookup_transfers(asked[cell])}
            batches = [b for _, b in node.accepted.values()] + list(node.chosen.values())
            held[cell][replica_id] = (applied, _logged(batches))
            if newest is None or node.membership.epoch > newest.epoch:
                newest = node.membership
        data = set(newest.data) if newest is not None else set(plan.replicas)
        held[cell] = {r: h for r, h in held[cell].items() if r in data}
        quorum[cell] = newest.q2_size() if newest is not None else len(plan.replicas) // 2 + 1
    lost: list[dict[str, Any]] = []
    unapplied = 0
    for value, cell, tid in where:
        in_ledger = sum(tid in applied for applied, _ in held[cell].values())
        holders = sum(tid in applied or tid in logged for applied, logged in held[cell].values())
        unapplied += holders > in_ledger
        if holders < quorum[cell]:
            lost.append({**value, "group": cell, "replicas_holding": holders})
    details = {
        "acknowledged": len(acked),
        "lost": [str(x["id"]) for x in lost][:50],
        "held_in_log_not_yet_applied": unapplied,
        "quorum": quorum,
    }
    # --8<-- [end:lost-payments]
    if lost:
        ids = ", ".join(str(x["id"]) for x in lost[:10])
        return Verdict(
            "lost-payments", False,
            f"{len(lost)} acknowledged payments are not held by a quorum of their group: {ids}.",
            details, lost[:50],
        )  # fmt: skip
    return Verdict(
        "lost-payments", True,
        f"All {len(acked)} acknowledged payments are held by a quorum of their group's "
        "replicas.",
        details,
    )  # fmt: skip
