"""The dependency graph of transactions, and its shortest cycles.

Nodes are committed transactions. An edge T1 -> T2 says T1 must come before
T2 in any serial order, for one of these reasons (Adya's dependencies):

    ww  T2 wrote the version of a key right after T1's (write-write)
    wr  T2 read a version T1 wrote (write-read)
    rw  T1 read a version of a key and T2 wrote a later one (read-write,
        an anti-dependency: T1 did not see T2's write)
    rt  T1 completed before T2 began (real time; for strict serializability)

A cycle means no serial order exists; which edges it needs says how bad
that is (see `checks.txn.models`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

import networkx as nx

from checks.txn.anomaly import Anomaly, Step
from checks.txn.txns import Txn

KINDS = ("ww", "wr", "rt", "rw")  # the order we prefer when an edge has several
SEARCH_HEADS_MAX = 500  # BFS roots tried per strongly connected component and class
CYCLES_PER_CLASS_MAX = 3  # cycles reported per anomaly class


class DepGraph:
    """A DiGraph of transaction numbers; each edge holds {kind: why}."""

    def __init__(self) -> None:
        self.g: nx.DiGraph = nx.DiGraph()
        self.names: dict[int, str] = {}

    def add(self, a: Txn, b: Txn, kind: str, why: str) -> None:
        assert kind in KINDS, kind
        if a.n == b.n:
            return  # a transaction's dependency on itself orders nothing
        self.names[a.n], self.names[b.n] = a.name, b.name
        if not self.g.has_edge(a.n, b.n):
            self.g.add_edge(a.n, b.n, kinds={})
        self.g.edges[a.n, b.n]["kinds"].setdefault(kind, why)

    def kinds(self, a: int, b: int) -> dict[str, str]:
        return self.g.edges[a, b]["kinds"]

    def edge_count(self) -> dict[str, int]:
        out = dict.fromkeys(KINDS, 0)
        for _, _, data in self.g.edges(data=True):
            for k in data["kinds"]:
                out[k] += 1
        return out


def add_realtime(graph: DepGraph, committed: Iterable[Txn]) -> None:
    """rt edges, transitively reduced: T1 -> T2 when T1 completed before T2
    was invoked, leaving out those implied through a third transaction.

    Sweep the history in order, keeping the frontier: completed transactions
    not yet known to precede another completed one. An invoke gets an edge
    from each frontier member; a completion replaces its own predecessors in
    the frontier, since anything invoked later follows them through it.
    """
    marks: list[tuple[int, int, Txn]] = []  # (history index, 0 complete / 1 invoke, txn)
    for t in committed:
        marks.append((t.invoke_index, 1, t))
        if t.complete_index is not None:
            marks.append((t.complete_index, 0, t))
    marks.sort(key=lambda m: (m[0], m[1]))
    frontier: dict[int, Txn] = {}
    preds: dict[int, list[int]] = {}
    for _, is_invoke, t in marks:
        if is_invoke:
            preds[t.n] = list(frontier)
            for p in frontier.values():
                graph.add(
                    p,
                    t,
                    "rt",
                    f"{p.name} completed (index {p.complete_index}) before {t.name} "
                    f"began (index {t.invoke_index})",
                )
        else:
            for n in preds.get(t.n, []):
                frontier.pop(n, None)
            frontier[t.n] = t


@dataclass(frozen=True, slots=True)
class CycleClass:
    """How to look for one anomaly class: a designated edge of kind `via`,
    closed by a shortest path back over edges of the `back` kinds."""

    name: str
    via: str
    back: frozenset[str]


# --8<-- [start:txn-cycles]
CLASSES = (
    CycleClass("G0", "ww", frozenset({"ww"})),
    CycleClass("G1c", "wr", frozenset({"ww", "wr"})),
    CycleClass("G-single", "rw", frozenset({"ww", "wr"})),
    CycleClass("G2-item", "rw", frozenset({"ww", "wr", "rw"})),
)
REALTIME = CycleClass("realtime", "rt", frozenset(KINDS))


def find_cycles(graph: DepGraph, *, realtime: bool) -> list[Anomaly]:
    """The shortest cycle of each class in each strongly connected component.

    Searching each class on its own subgraph (only the edge kinds the class
    allows) keeps the cycles small and their class exact: a BFS from the head
    of each designated edge back to its tail gives the shortest cycle through
    that edge.
    """
    found: list[Anomaly] = []
    for cls in (*CLASSES, REALTIME) if realtime else CLASSES:
        cycles = [c for c in _class_cycles(graph, cls) if c is not None]
        cycles.sort(key=lambda c: len(c.steps))
        found.extend(cycles[:CYCLES_PER_CLASS_MAX])
    return found


def _class_cycles(graph: DepGraph, cls: CycleClass) -> list[Anomaly | None]:
    allowed = cls.back | {cls.via}
    sub = nx.subgraph_view(
        graph.g, filter_edge=lambda a, b: bool(allowed & graph.kinds(a, b).keys())
    )
    out: list[Anomaly | None] = []
    for scc in nx.strongly_connected_components(sub):
        if len(scc) < 2:
            continue
        back = nx.subgraph_view(
            graph.g,
            filter_node=scc.__contains__,
            filter_edge=lambda a, b: bool(cls.back & graph.kinds(a, b).keys()),
        )
        heads: dict[int, list[int]] = {}  # v -> [u] for designated edges u -> v
        for u, v in sub.edges(scc):
            if v in scc and cls.via in graph.kinds(u, v):
                heads.setdefault(v, []).append(u)
        best: Anomaly | None = None
        for v in list(heads)[:SEARCH_HEADS_MAX]:
            paths = nx.single_source_shortest_path(back, v)
            for u in heads[v]:
                if u not in paths:
                    continue
                cycle = _classify(graph, cls, [u, *paths[u]])
                if cycle is not None and (best is None or len(cycle.steps) < len(best.steps)):
                    best = cycle
            if best is not None and len(best.steps) == 2:
                break  # no cycle is shorter
        out.append(best)
    return out


def _classify(graph: DepGraph, cls: CycleClass, nodes: list[int]) -> Anomaly | None:
    """Name the cycle u -> v -> ... -> u, choosing for each edge the kind
    that makes the weakest claim (rw last); the first edge is `cls.via`,
    except for real-time cycles, which must need an rt edge somewhere."""
    assert nodes[0] == nodes[-1] and len(nodes) >= 3, nodes
    steps: list[Step] = []
    for i, (a, b) in enumerate(itertools.pairwise(nodes)):
        kinds = graph.kinds(a, b)
        if i == 0 and cls is not REALTIME:
            kind = cls.via
        else:
            kind = next(k for k in KINDS if k in kinds and k in cls.back)
        steps.append(Step(graph.names[a], graph.names[b], kind, kinds[kind]))
    used = [s.kind for s in steps]
    rw = used.count("rw")
    if cls.name == "G2-item" and rw < 2:
        return None  # a single anti-dependency: reported as G-single
    if cls is REALTIME:
        if "rt" not in used:
            return None  # not a real-time cycle: its own class reports it
        if rw >= 2:
            name = "G2-item-realtime"
        elif rw == 1:
            name = "G-single-realtime"
        elif "wr" in used:
            name = "G1c-realtime"
        else:
            name = "G0-realtime"
    else:
        name = cls.name
    return Anomaly(name, _words(steps), tuple(s.source for s in steps), tuple(steps))


# --8<-- [end:txn-cycles]


def _words(steps: list[Step]) -> str:
    first = steps[0].source
    story = " ".join(f"{s.source} before {s.target} ({s.kind}): {s.why}." for s in steps)
    return f"{story} So {first} must come before itself: no serial order exists."
