"""What list-append histories let us infer (after Elle).

Every append writes a fresh value, so a read of a list names, element by
element, the transactions that appended to it, in the order the database
applied them. The longest read of a key is its version order; every other
read must be a prefix of it. From that:

    ww  the writer of element i -> the writer of element i+1
    wr  the writer of a read's last element -> the reader
    rw  the reader -> the writer of the element right after what it read
"""

from __future__ import annotations

import itertools
from collections import defaultdict

from checks.history import HistoryError
from checks.txn.anomaly import Anomaly, cap_per_kind
from checks.txn.graph import DepGraph
from checks.txn.txns import Key, LastWrites, Txn, Value, Writers, show_value

# A read before the transaction's own appends to the key: (reader, key, the list it saw).
ListRead = tuple[Txn, Key, tuple[Value, ...]]


def infer(txns: list[Txn]) -> tuple[DepGraph, list[Anomaly], list[Txn]]:
    """The dependency graph, the anomalies found without it, and the
    transactions known to have committed."""
    writer, last_append = _appends(txns)
    ok = [t for t in txns if t.status == "ok"]
    _refuse_non_list_reads(ok)
    reads = [(t, m.key, m.value or ()) for t in ok for m in t.mops if m.f == "r"]
    external = _external_reads(ok)
    anomalies: list[Anomaly] = []
    _internal(ok, anomalies)
    values = _read_values(reads)
    # Writers seen by a read committed, even if their client never heard back.
    seen = {writer[(k, v)].n for k, vals in values.items() for v in vals if (k, v) in writer}
    committed = [t for t in txns if t.status == "ok" or (t.status == "info" and t.n in seen)]
    committed_ns = {t.n for t in committed}
    orders = _version_orders(reads, anomalies)
    _reads_of_no_committed_append(values, reads, writer, anomalies)
    graph = DepGraph()
    _append_order_edges(orders, writer, committed_ns, graph)
    _read_edges(external, orders, writer, last_append, committed_ns, graph, anomalies)
    _after_every_read(orders, writer, committed, external, graph)
    _lost_updates(ok, external, anomalies)
    return graph, cap_per_kind(anomalies), committed


def _appends(txns: list[Txn]) -> tuple[Writers, LastWrites]:
    """(key, value) -> the transaction that appended it, and (txn, key) -> its last append.

    `HistoryError` on a value appended twice to one key, or on a write.
    """
    writer: Writers = {}
    last_append: LastWrites = {}
    for t in txns:
        for m in t.mops:
            if m.f == "append":
                if (m.key, m.value) in writer:
                    raise HistoryError(
                        f"event {t.at}: {t.name} and {writer[(m.key, m.value)].name} both append "
                        f"{m.value!r} to {m.key}: list-append needs unique values per key"
                    )
                writer[(m.key, m.value)] = t
                last_append[(t.n, m.key)] = m.value
            elif m.f == "w":
                raise HistoryError(f"event {t.at}: {t.name}: a write in a list-append history")
    return writer, last_append


def _refuse_non_list_reads(ok: list[Txn]) -> None:
    for t in ok:
        for m in t.mops:
            if m.f == "r" and not (m.value is None or isinstance(m.value, tuple)):
                raise HistoryError(
                    f"event {t.at}: {t.name} reads {m.key} = {m.value!r}: "
                    "a list-append read is a list or nil"
                )


def _read_values(reads: list[ListRead]) -> dict[Key, dict[Value, None]]:
    """Each value any read returned, once, in the order reads first show it."""
    values: dict[Key, dict[Value, None]] = defaultdict(dict)
    for k, vs in dict.fromkeys((k, vs) for _, k, vs in reads):
        values[k].update(dict.fromkeys(vs))
    return values


def _reads_of_no_committed_append(
    values: dict[Key, dict[Value, None]],
    reads: list[ListRead],
    writer: Writers,
    anomalies: list[Anomaly],
) -> None:
    """A read of a value no one appended (garbage), or one an aborted transaction did (G1a)."""
    for k, vals in values.items():
        for v in vals:
            w = writer.get((k, v))
            if w is not None and w.status != "fail":
                continue
            t, vs = next((t, vs) for t, key, vs in reads if key == k and v in vs)
            if w is None:
                anomalies.append(
                    Anomaly(
                        "garbage-read",
                        f"{t.name} read {k} = {show_value(vs)}, but no transaction appended {v!r}",
                        (t.name,),
                    )
                )
            else:
                anomalies.append(
                    Anomaly(
                        "G1a",
                        f"{t.name} read {k} = {show_value(vs)}, which includes {v!r}, "
                        f"appended by {w.name}, which aborted",
                        (t.name, w.name),
                    )
                )


def _append_order_edges(
    orders: dict[Key, tuple[Value, ...]],
    writer: Writers,
    committed_ns: set[int],
    graph: DepGraph,
) -> None:
    """ww: the writer of each element -> the writer of the next, both committed."""
    for k, order in orders.items():
        for a, b in itertools.pairwise(order):
            wa, wb = writer.get((k, a)), writer.get((k, b))
            if wa and wb and wa.n in committed_ns and wb.n in committed_ns:
                graph.add(
                    wa, wb, "ww", f"{wb.name} appended {b!r} to {k} after {wa.name} appended {a!r}"
                )


def _read_edges(
    external: list[ListRead],
    orders: dict[Key, tuple[Value, ...]],
    writer: Writers,
    last_append: LastWrites,
    committed_ns: set[int],
    graph: DepGraph,
    anomalies: list[Anomaly],
) -> None:
    """For each read: wr from the writer of its last element (G1b if that was not
    the writer's last append), and rw to the writer of the element after it."""
    for t, k, vs in external:
        if vs:
            w = writer.get((k, vs[-1]))
            if w is not None and w.n in committed_ns and w.n != t.n:
                graph.add(
                    w,
                    t,
                    "wr",
                    f"{t.name} read {k} = {show_value(vs)}, seeing {w.name}'s append of {vs[-1]!r}",
                )
                if last_append[(w.n, k)] != vs[-1]:
                    anomalies.append(
                        Anomaly(
                            "G1b",
                            f"{t.name} read {k} = {show_value(vs)}, ending in {vs[-1]!r}, an "
                            f"intermediate append of {w.name}, which went on to append "
                            f"{last_append[(w.n, k)]!r}",
                            (t.name, w.name),
                        )
                    )
        order = orders.get(k)
        if order is not None and len(vs) < len(order):
            nxt = order[len(vs)]
            after = writer.get((k, nxt))
            last = writer.get((k, vs[-1])) if vs else None
            # Reading the middle of one transaction's appends is G1b, not a
            # read that missed a later transaction: no rw edge back to it.
            if after is not None and after.n in committed_ns and after is not last:
                graph.add(
                    t,
                    after,
                    "rw",
                    f"{t.name} read {k} = {show_value(vs)} without {nxt!r}, which {after.name} "
                    "appended next",
                )


def _after_every_read(
    orders: dict[Key, tuple[Value, ...]],
    writer: Writers,
    committed: list[Txn],
    external: list[ListRead],
    graph: DepGraph,
) -> None:
    """A committed append no read saw comes after every element any read
    saw (else the longest read would hold it): its writer follows the writer
    of the last element (ww) and every reader of the whole list (rw)."""
    committed_ns = {t.n for t in committed}
    whole: dict[Key, list[Txn]] = defaultdict(list)  # key -> readers of its whole list
    for t, k, vs in external:
        if k in orders and len(vs) == len(orders[k]):
            whole[k].append(t)
    for (k, v), w in writer.items():
        order = orders.get(k)
        if w.n not in committed_ns or order is None or v in order:
            continue
        if order:
            last = writer.get((k, order[-1]))
            if last is not None and last.n in committed_ns:
                graph.add(
                    last,
                    w,
                    "ww",
                    f"{w.name} appended {v!r} to {k}, which no read saw, so after "
                    f"{last.name}'s {order[-1]!r}, the last element any read saw",
                )
        for t in whole[k]:
            graph.add(
                t,
                w,
                "rw",
                f"{t.name} read {k} = {show_value(order)} without {v!r}, which {w.name} "
                "appended (and committed)",
            )


def _external_reads(ok: list[Txn]) -> list[ListRead]:
    """Reads of a key before the transaction's own first write to it: they
    show the database's state, not the transaction's."""
    out = []
    for t in ok:
        touched: set[Key] = set()
        for m in t.mops:
            if m.f == "r" and m.key not in touched:
                out.append((t, m.key, m.value or ()))
            touched.add(m.key)
    return out


def _internal(ok: list[Txn], anomalies: list[Anomaly]) -> None:
    """Within a transaction, a read must show its earlier reads and appends."""
    for t in ok:
        known: dict[Key, tuple[Value, ...]] = {}  # key -> the list as this txn knows it
        suffix: dict[Key, tuple[Value, ...]] = {}  # key -> own appends before any read
        for m in t.mops:
            if m.f == "append":
                if m.key in known:
                    known[m.key] = (*known[m.key], m.value)
                else:
                    suffix[m.key] = (*suffix.get(m.key, ()), m.value)
                continue
            got = m.value or ()
            if m.key in known and got != known[m.key]:
                want = f"expected {show_value(known[m.key])}"
            elif m.key in suffix and got[len(got) - len(suffix[m.key]) :] != suffix[m.key]:
                want = f"expected it to end with its own appends {show_value(suffix[m.key])}"
            else:
                known[m.key] = got
                suffix.pop(m.key, None)
                continue
            anomalies.append(
                Anomaly(
                    "internal",
                    f"{t.name} read {m.key} = {show_value(got)}; {want}",
                    (t.name,),
                )
            )
            known[m.key] = got
            suffix.pop(m.key, None)


def _version_orders(
    reads: list[ListRead], anomalies: list[Anomaly]
) -> dict[Key, tuple[Value, ...]]:
    """Each key's longest read, if every read of it is a prefix of that."""
    by_key: dict[Key, list[tuple[Txn, tuple[Value, ...]]]] = defaultdict(list)
    for t, k, vs in reads:
        if len(set(vs)) != len(vs):
            dup = next(v for v in vs if vs.count(v) > 1)
            anomalies.append(
                Anomaly(
                    "duplicate-elements",
                    f"{t.name} read {k} = {show_value(vs)}, in which {dup!r} appears twice",
                    (t.name,),
                )
            )
            continue
        by_key[k].append((t, vs))
    orders: dict[Key, tuple[Value, ...]] = {}
    for k, seen in by_key.items():
        longest_t, longest = max(seen, key=lambda tv: len(tv[1]))
        bad = next(((t, vs) for t, vs in seen if longest[: len(vs)] != vs), None)
        if bad is not None:
            anomalies.append(
                Anomaly(
                    "incompatible-order",
                    f"{bad[0].name} read {k} = {show_value(bad[1])} but {longest_t.name} read "
                    f"{k} = {show_value(longest)}: neither is a prefix of the other",
                    (bad[0].name, longest_t.name),
                )
            )
            continue
        orders[k] = longest
    return orders


def _lost_updates(ok: list[Txn], external: list[ListRead], anomalies: list[Anomaly]) -> None:
    """Two committed transactions that read the same version of a key and
    both appended to it: each wrote without seeing the other's write."""
    appends = {(t.n, m.key) for t in ok for m in t.mops if m.f == "append"}
    groups: dict[tuple[Key, tuple[Value, ...]], list[Txn]] = defaultdict(list)
    for t, k, vs in external:
        if (t.n, k) in appends:
            groups[(k, vs)].append(t)
    for (k, vs), ts in groups.items():
        if len(ts) > 1:
            names = tuple(t.name for t in ts)
            anomalies.append(
                Anomaly(
                    "lost-update",
                    f"{' and '.join(names)} all read {k} = {show_value(vs)} and then appended to "
                    f"{k}: each wrote without seeing the others' appends",
                    names,
                )
            )
