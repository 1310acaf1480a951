"""The elastic cell: a uid range moved to a cell started for the peak, and back.

Before midnight the operator starts `el-1` (a gateway and a ledger front, no
range of its own: chapter 4's `spare_cells`) and moves half of a cell's range
to it (the first cell of the city neither lost nor hosting `el-1`); after the
peak the range goes back (to wherever its cell's data is by then, should it
have been failed over meanwhile). Each move is
the next version of the routing rules, written by the failover controllers
(`MoveRange`); the gateways hand the range over by `reference.gateway.handover`.

The accounts do not move: they live in their Paxos group, which every front
reaches. What moves is who *serves* the range (the gateway and front its
payments go through, the capacity rented for the peak), and that is what can
go wrong: two cells serving one range at once. The checker below reads the
handover's events from the history; money is chapter 4's checkers on the
same run (bank, ledger, lost-payments, double-entry: nothing lost, nothing
applied twice).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from checks.history import NEMESIS, Event
from checks.verdict import Verdict
from reference.gateway.handover import parse_buckets

__all__ = [
    "ELASTIC_CELL",
    "HANDOVER_EVENTS",
    "check_owners",
    "handover_figures",
]

ELASTIC_CELL = "el-1"
HANDOVER_EVENTS = ("range-move", "range-released", "range-taken", "owner-accept")


def _events(history: list[Event]) -> list[Event]:
    return [e for e in history if e.process == NEMESIS and e.f in HANDOVER_EVENTS]


# --8<-- [start:check-owners]
def check_owners(history: list[Event]) -> Verdict:
    """One owner per range per epoch, from the history's handover events.

    An epoch of a bucket is a rules version. Invalid if (1) two cells accepted
    payments of one bucket in one version, (2) a cell accepted a bucket in a
    version at or after the one it released it in, or (3) the new owner of a
    bucket accepted it before the old owner released it (both held payments of
    the range at once: the old owner's were still in flight). A range taken
    after the release timed out is not held to (3): its old owner, cut off,
    was still on the previous version, the previous epoch's only owner.
    """
    events = _events(history)
    owners: dict[tuple[int, int], dict[str, float]] = defaultdict(dict)  # (b, v) -> cell -> t
    releases: list[tuple[int, int, str, str, float]] = []  # (b, v, from, to, t)
    assigned: dict[int, dict[int, str]] = defaultdict(dict)  # b -> version -> its owner
    taken: dict[str, int] = defaultdict(int)
    how: dict[tuple[int, int, str], str] = {}  # (b, v, new owner) -> how it took b
    for e in events:
        v = e.value
        if e.f == "owner-accept":
            owners[(int(v["bucket"]), int(v["version"]))].setdefault(str(v["cell"]), e.time_ms)
        elif e.f == "range-released":
            ver, old, new = int(v["version"]), str(v["cell"]), str(v["to"])
            for b in parse_buckets(v["buckets"]):
                releases.append((int(b), ver, old, new, e.time_ms))
                assigned[int(b)][ver] = new
        elif e.f == "range-taken":
            taken[str(v["how"])] += len(parse_buckets(v["buckets"]))
            for b in parse_buckets(v["buckets"]):
                assigned[int(b)][int(v["version"])] = str(v["cell"])
                how[(int(b), int(v["version"]), str(v["cell"]))] = str(v["how"])
    violations: list[str] = []
    for (b, ver), cells in sorted(owners.items()):
        if len(cells) > 1:
            violations.append(f"bucket {b}, version {ver}: two owners {sorted(cells)}")
        moved = [w for w in assigned.get(b, {}) if w <= ver]
        owner = assigned[b][max(moved)] if moved else None
        for cell in sorted(cells):
            if owner is not None and cell != owner:
                violations.append(f"bucket {b}, version {ver}: {cell} served it, {owner} owns it")
    for b, ver, old, new, t_rel in releases:
        if how.get((b, ver, new)) in ("timeout", "dead"):
            continue  # taken without the release (the old owner was cut off or dead)
        later = [w for w in assigned.get(b, {}) if w > ver]
        until = min(later, default=1 << 62)
        for (b2, v2), cells in owners.items():
            t_new = cells.get(new)
            if b2 == b and ver <= v2 < until and t_new is not None and t_new < t_rel:
                violations.append(
                    f"bucket {b}, version {ver}: {new} served it at {t_new:.1f} ms, before "
                    f"{old} released it at {t_rel:.1f} ms (two owners at once)"
                )
    details: dict[str, Any] = {
        "moves": len({e.value["version"] for e in events if e.f == "range-move"}),
        "releases": len(releases),
        "taken": dict(taken),
        "epochs": len(owners),
        "violations": violations[:20],
        "violation_count": len(violations),
    }
    if violations:
        return Verdict(
            "one-owner", False, f"{len(violations)} times a range had two owners", details
        )
    return Verdict(
        "one-owner",
        True,
        f"one owner per range per epoch: {len(owners)} (bucket, version) epochs, "
        f"{len(releases)} buckets released before their new owner served them",
        details,
    )


# --8<-- [end:check-owners]


def handover_figures(history: list[Event]) -> list[dict[str, Any]]:
    """Each move: when the rules were written, and how long until the new owner held
    every bucket of it (released by the old owner, or taken from a dead one)."""
    events = _events(history)
    out = []
    # Both controllers write the same move (the same version): one move per version.
    by_version: dict[int, Event] = {}
    for e in events:
        if e.f == "range-move":
            by_version.setdefault(int(e.value["version"]), e)
    moves = sorted(by_version.values(), key=lambda e: e.time_ms)
    for i, move in enumerate(moves):
        until = moves[i + 1].time_ms if i + 1 < len(moves) else float("inf")
        version, to = int(move.value["version"]), str(move.value["to"])
        want = set(parse_buckets(move.value["buckets"]))
        got: set[int] = set()
        done_ms: float | None = None
        hows: set[str] = set()
        for e in events:
            if e.f != "range-taken" or not move.time_ms <= e.time_ms < until:
                continue
            if int(e.value["version"]) == version and str(e.value["cell"]) == to:
                got |= set(parse_buckets(e.value["buckets"]))
                hows.add(str(e.value["how"]))
                if got >= want:
                    done_ms = e.time_ms
                    break
        out.append(
            {
                "at_ms": round(move.time_ms, 3),
                "to": to,
                "version": version,
                "buckets": len(want),
                "handover_ms": None if done_ms is None else round(done_ms - move.time_ms, 3),
                "how": sorted(hows),
            }
        )
    return out
