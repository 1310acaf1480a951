"""What read-write-register histories let us infer, soundly (after Elle).

A register keeps only its last value, so reads do not reveal the version
order the way list reads do. With unique values per key we still know:

    wr  the writer of the value a read returned -> the reader
    and these version orders, each giving ww and rw edges:
    - the initial state (nil) comes before every written value, so a read
      of nil precedes (rw) every committed writer of that key;
    - a transaction that read v1 from a key and then wrote v2 to it put v2
      after v1 (writes follow reads: a committed write is installed after
      the version its transaction read).

An order v1 < v2 need not be immediate: there may be versions between.
The rw edge reader(v1) -> writer(v2) then stands for a path through the
writers in between, with the same number of anti-dependencies, so cycles
and their classes are unchanged.
"""

from __future__ import annotations

from collections import defaultdict

from checks.history import HistoryError
from checks.txn.anomaly import Anomaly, cap_per_kind
from checks.txn.graph import DepGraph
from checks.txn.txns import Key, LastWrites, Txn, Value, Writers, show_value

# A read before the transaction's own write to the key: (reader, key, the value it saw).
RegisterRead = tuple[Txn, Key, Value]


def infer(txns: list[Txn]) -> tuple[DepGraph, list[Anomaly], list[Txn]]:
    """The dependency graph, the anomalies found without it, and the
    transactions known to have committed."""
    writer, last_write = _writes(txns)
    anomalies: list[Anomaly] = []
    ok = [t for t in txns if t.status == "ok"]
    external: list[RegisterRead] = []  # reads before any own write to the key
    for t in ok:
        _internal(t, anomalies)
        touched: set[Key] = set()
        for m in t.mops:
            if m.f == "r" and m.key not in touched:
                external.append((t, m.key, m.value))
            touched.add(m.key)

    seen = {writer[(k, v)].n for _, k, v in external if (k, v) in writer}
    committed = [t for t in txns if t.status == "ok" or (t.status == "info" and t.n in seen)]
    committed_ns = {t.n for t in committed}
    graph = DepGraph()
    _read_edges(external, writer, last_write, graph, anomalies)
    _version_order_edges(external, writer, last_write, committed_ns, graph)
    _lost_updates(external, last_write, anomalies)
    return graph, cap_per_kind(anomalies), committed


def _writes(txns: list[Txn]) -> tuple[Writers, LastWrites]:
    """(key, value) -> the transaction that wrote it, and (txn, key) -> its last write.

    `HistoryError` on a nil or repeated write, an append, or a read of a list.
    """
    writer: Writers = {}
    last_write: LastWrites = {}
    for t in txns:
        for m in t.mops:
            if m.f == "w":
                if m.value is None:
                    raise HistoryError(
                        f"event {t.at}: {t.name} writes nil to {m.key}: nil is the initial state"
                    )
                if (m.key, m.value) in writer and writer[(m.key, m.value)].n != t.n:
                    raise HistoryError(
                        f"event {t.at}: {t.name} and {writer[(m.key, m.value)].name} both write "
                        f"{m.value!r} to {m.key}: rw-register needs unique values per key"
                    )
                writer[(m.key, m.value)] = t
                last_write[(t.n, m.key)] = m.value
            elif m.f == "append":
                raise HistoryError(f"event {t.at}: {t.name}: an append in a rw-register history")
            elif isinstance(m.value, tuple):
                raise HistoryError(
                    f"event {t.at}: {t.name} reads {m.key} = {show_value(m.value)}: "
                    "a register read is one value"
                )
    return writer, last_write


def _read_edges(
    external: list[RegisterRead],
    writer: Writers,
    last_write: LastWrites,
    graph: DepGraph,
    anomalies: list[Anomaly],
) -> None:
    """wr from the writer of each value read; a value no one wrote is garbage, one an
    aborted transaction wrote is G1a, one its writer overwrote is G1b."""
    for t, k, v in external:
        if v is None:
            continue
        w = writer.get((k, v))
        if w is None:
            anomalies.append(
                Anomaly(
                    "garbage-read",
                    f"{t.name} read {k} = {v!r}, but no transaction wrote it",
                    (t.name,),
                )
            )
        elif w.status == "fail":
            anomalies.append(
                Anomaly(
                    "G1a",
                    f"{t.name} read {k} = {v!r}, written by {w.name}, which aborted",
                    (t.name, w.name),
                )
            )
        elif w.n != t.n:
            graph.add(w, t, "wr", f"{t.name} read {k} = {v!r}, which {w.name} wrote")
            if last_write[(w.n, k)] != v:
                anomalies.append(
                    Anomaly(
                        "G1b",
                        f"{t.name} read {k} = {v!r}, an intermediate write of {w.name}, "
                        f"which went on to write {last_write[(w.n, k)]!r}",
                        (t.name, w.name),
                    )
                )


def _version_order_edges(
    external: list[RegisterRead],
    writer: Writers,
    last_write: LastWrites,
    committed_ns: set[int],
    graph: DepGraph,
) -> None:
    """The version orders v1 < v2 we know (see the module docstring), each giving
    ww from the writer of v1 and rw from every reader of v1 to the writer of v2."""
    readers: dict[tuple[Key, Value], list[Txn]] = defaultdict(list)
    for t, k, v in external:
        readers[(k, v)].append(t)
    # Version orders v1 < v2 per key; v1 None is the initial state.
    before: set[tuple[Key, Value, Value]] = set()
    for (_, k), v in last_write.items():
        if (k, v) in writer and writer[(k, v)].n in committed_ns:
            before.add((k, None, v))
    for t, k, v in external:
        if (t.n, k) in last_write:
            before.add((k, v, last_write[(t.n, k)]))
    for k, v1, v2 in sorted(before, key=repr):
        w2 = writer[(k, v2)]
        if w2.n not in committed_ns:
            continue
        w1 = writer.get((k, v1)) if v1 is not None else None
        if w1 is not None and w1.n in committed_ns:
            graph.add(
                w1,
                w2,
                "ww",
                f"{w2.name} read {k} = {v1!r} ({w1.name}'s write) and then wrote {v2!r}, "
                f"so {v2!r} came after {v1!r}",
            )
        for r in readers.get((k, v1), []):
            what = "the initial nil" if v1 is None else repr(v1)
            graph.add(
                r,
                w2,
                "rw",
                f"{r.name} read {k} = {what}, a version before {w2.name}'s write of {v2!r}",
            )


def _internal(t: Txn, anomalies: list[Anomaly]) -> None:
    """Within a transaction, a read returns its own last write or last read."""
    known: dict[Key, tuple[Value, str]] = {}  # key -> (value, "written" | "read")
    for m in t.mops:
        if m.f == "w":
            known[m.key] = (m.value, "written")
            continue
        if m.key in known and m.value != known[m.key][0]:
            value, how = known[m.key]
            anomalies.append(
                Anomaly(
                    "internal",
                    f"{t.name} read {m.key} = {show_value(m.value)} after it had {how} "
                    f"{show_value(value)}",
                    (t.name,),
                )
            )
        known[m.key] = (m.value, "read")


def _lost_updates(
    external: list[RegisterRead],
    last_write: LastWrites,
    anomalies: list[Anomaly],
) -> None:
    groups: dict[tuple[Key, Value], list[Txn]] = defaultdict(list)
    for t, k, v in external:
        if (t.n, k) in last_write:
            groups[(k, v)].append(t)
    for (k, v), ts in groups.items():
        if len(ts) > 1:
            names = tuple(t.name for t in ts)
            writes = ", ".join(f"{t.name} wrote {last_write[(t.n, k)]!r}" for t in ts)
            anomalies.append(
                Anomaly(
                    "lost-update",
                    f"{' and '.join(names)} all read {k} = {show_value(v)} and then wrote it "
                    f"({writes}): all but one of those writes was lost",
                    names,
                )
            )
