"""Faults and cuts in words for the panels, live or replayed.

A person's fault action and a runtime trace event as one log line
(`_describe`, `_trace_detail`), and which links of the network are cut,
summed up per node (`_cut_state`), per city and cell cut off from the rest
(`_cut_off`), and as "hangzhou ✂ shanghai" lines (`_cut_lines`); what
cutting the failover controller's city does (`control_plane_cut_words`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from reference.net.topology import Topology
    from reference.telemetry import TraceEvent

__all__ = [
    "_cut_lines",
    "_cut_off",
    "_cut_state",
    "_describe",
    "_trace_detail",
    "control_plane_cut_words",
]


def _describe(op: str, params: dict[str, Any]) -> str:
    if op in ("crash", "restart", "pause", "resume"):
        return str(params["node"])
    if op == "skew":
        return f"{params['node']} clock {float(params['skew_ms']):+.0f} ms"
    if op == "isolate":
        return f"{params['target']} cut off from everything"
    if op == "partition":
        return " | ".join(",".join(g) for g in params["groups"])
    if op == "heal":
        return "every link restored"
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _trace_detail(event: TraceEvent) -> str:
    f = event.fields
    if event.kind == "partition":
        if "isolate" in f:
            return f"{f['isolate']} cut off ({len(f.get('nodes', []))} nodes)"
        src, dst = f.get("src", []), f.get("dst", [])
        return f"{_short(src)} ✂ {_short(dst)}{' (one way)' if f.get('one_way') else ''}"
    if event.kind == "heal":
        return "every link restored"
    if event.kind == "clock":
        return " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in f.items())
    return " ".join(f"{k}={v}" for k, v in list(f.items())[:4])


def _short(names: Iterable[str]) -> str:
    names = list(names)
    return ",".join(names) if len(names) <= 3 else f"{','.join(names[:3])}+{len(names) - 3}"


class _Links(Protocol):
    """What the cut summaries read of a network: whether a link is cut."""

    def is_cut(self, src: str, dst: str) -> bool: ...


def _cut_state(net: _Links, nodes: list[str]) -> dict[str, str]:
    """node -> "" | "partial" | "isolated", from which of its links are cut."""
    is_cut: Callable[[str, str], bool] = net.is_cut
    out: dict[str, str] = {}
    for n in nodes:
        others = [o for o in nodes if o != n]
        cut = sum(1 for o in others if is_cut(n, o) or is_cut(o, n))
        out[n] = "" if cut == 0 else ("isolated" if cut == len(others) else "partial")
    return out


def _cut_off(net: _Links, topology: Topology) -> list[str]:
    """Cities and cells whose every link to the rest of the system is cut."""
    is_cut: Callable[[str, str], bool] = net.is_cut
    everyone = set(topology.nodes())
    out: list[str] = []
    for name in [*topology.cities(), *topology.cells()]:
        inside = set(topology.nodes_in(name))
        outside = everyone - inside
        if (
            inside
            and outside
            and all(is_cut(a, b) or is_cut(b, a) for a in inside for b in outside)
        ):
            out.append(name)
    return out


def _cut_lines(net: _Links, topology: Topology) -> list[str]:
    """Cut links summed up by city, then by cell: "hangzhou ✂ shanghai"."""
    is_cut: Callable[[str, str], bool] = net.is_cut

    def between(names: list[str]) -> Iterator[str]:
        """One line per pair of `names` with a link cut between them, in order."""
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                pairs = [(x, y) for x in topology.nodes_in(a) for y in topology.nodes_in(b)]
                cut = sum(1 for x, y in pairs if is_cut(x, y) or is_cut(y, x))
                if cut and cut == len(pairs):
                    yield f"{a} ✂ {b}"
                elif cut:
                    yield f"{a} ⋯ {b} ({cut}/{len(pairs)} links cut)"

    cities = topology.cities()
    lines = list(between(cities))
    for city in cities:
        lines.extend(between(topology.cells(city)))
    return lines


def control_plane_cut_words(
    target: str, control: list[str], standby: list[str], lost_cities: list[str]
) -> str:
    """The event line when a cut takes the failover controller (`control`) with it.

    `standby`: "failover-2 in shanghai", the controllers outside the cut (the
    capstone's); `lost_cities`: the cities the chapter's crash scenario loses.
    Chapter 4's lone controller, cut off, finds the other cities' cells silent and
    fails over those whose standby it still reaches, healthy as they are: no witness
    tells it otherwise (the capstone's CZones are witnesses, book ch8 "Witnesses").
    Seen in `d11 tui ch4`: the line said "no failover for its own cells" while
    the controller failed the healthy sz-1 over 0.4 s after the cut. (It also
    failed sh-1 over after the heal, on the declaration made in the cut; a cell
    that answers again now cancels that, `reference.cells.failover`.)
    """
    names = ", ".join(control)
    if standby:
        return (
            f"{target} holds the failover controller ({names}); the standby outside the cut "
            f"({', '.join(standby)}) fails {target}'s cells over: they pay again without "
            f"waiting for h"
        )
    scenario = (
        f" (the crash scenario loses {', '.join(lost_cities)} instead)" if lost_cities else ""
    )
    return (
        f"{target} holds the failover controller ({names}), the rules' only writer: cut "
        f"off, it finds the other cities' cells silent and fails over those whose standby "
        f"is in {target}, healthy as they are (no witnesses here; the capstone's CZones "
        f"are: book ch8, Witnesses). Nothing fails {target}'s own cells over: they pay "
        f"again after h heals the cut{scenario}"
    )
