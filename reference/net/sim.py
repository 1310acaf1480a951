"""The simulated network: latency by distance, loss, duplication, reordering, cuts.

Every ordered pair of nodes that has talked has a *link*: its distance class
in the topology (cell, city, cross-city), whether it is cut, its counters. A
message sent on a link is scheduled on the kernel at `departure + latency`,
where latency is the class latency with uniform jitter of `±jitter_ratio`.
Links are FIFO (like a TCP connection) unless the message is picked for
reordering, in which case it is held back by one to three times the link
latency and may be overtaken.

Faults are probabilities in `NetConfig` (`loss`, `duplicate`, `reorder`) drawn
from the network's own seeded stream, and partitions: a partition is a set of
cut directed links, written in the vocabulary of the topology (isolate a
node, a cell or a city; split into halves; a majorities ring; a bridge).
Cutting a link also loses what was in flight on it, as a pulled cable does.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from heapq import heappush
from typing import TYPE_CHECKING, Any, NamedTuple

from reference.codec import Message
from reference.net.partitions import Partitions
from reference.net.topology import DISTANCE_CLASSES, Topology
from reference.sim.kernel import ARRIVAL, Event

if TYPE_CHECKING:
    from reference.sim.kernel import Kernel

__all__ = ["LinkStats", "NetConfig", "Port", "SimNet"]


def _default_latency_ms() -> dict[str, float]:
    return {"local": 0.01, "cell": 0.2, "city": 1.0, "cross_city": 15.0}


@dataclass
class NetConfig:
    """Network settings; assigning a field on a live network applies at once.

    `latency_ms` maps a distance class to its base one-way latency. Replace
    the dict (`cfg.latency_ms = {...}`) rather than mutating it in place, or
    call `SimNet.reconfigure()` after an in-place change.
    """

    latency_ms: dict[str, float] = field(default_factory=_default_latency_ms)
    jitter_ratio: float = 0.1  # latency is uniform in base * (1 ± jitter_ratio)
    loss: float = 0.0  # probability a message is dropped
    duplicate: float = 0.0  # probability a message is delivered twice
    reorder: float = 0.0  # probability a message skips FIFO and is held back

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        missing = [c for c in DISTANCE_CLASSES if c not in self.latency_ms]
        if missing:
            raise ValueError(f"NetConfig.latency_ms lacks the classes {missing}")
        if any(v < 0 for v in self.latency_ms.values()):
            raise ValueError(f"NetConfig.latency_ms must be >= 0: {self.latency_ms}")
        if not 0.0 <= self.jitter_ratio <= 1.0:
            raise ValueError(f"NetConfig.jitter_ratio must be in [0, 1]: {self.jitter_ratio}")
        for name in ("loss", "duplicate", "reorder"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"NetConfig.{name} is a probability, got {p}")

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        listener = self.__dict__.get("_listener")
        if listener is not None and not name.startswith("_"):
            self.validate()
            listener()


class LinkStats(NamedTuple):
    sent: int
    delivered: int
    dropped: int
    duplicated: int


# A link is a small list describing one directed pair of nodes. What the send
# path reads and writes for every message is NOT in it but in per-source
# rows, one list per field indexed by destination (a "struct of arrays"): a
# node's rows are a few contiguous lists that stay in the CPU cache, where ten
# thousand link lists would not.
L_DST = 0  # the destination endpoint
L_CUT = 1  # True while a partition cuts this link
L_DROPPED = 2  # lost: cut, loss, or the destination crashed
L_DUPLICATED = 3  # extra copies made
L_SRC_ID = 4
L_DST_ID = 5
L_CLASS = 6  # distance class name
L_KEY = 7  # small int naming the link (reports)
L_DST_INDEX = 8  # the destination's index in the source's rows

_DEPARTING_PRUNE = 64  # prune an endpoint's departure list when it grows this long

Link = list[Any]
# An arrival event is `(ARRIVAL, dst_endpoint, msg, src)`, queued at its time; the
# kernel delivers it (see reference.sim.kernel). It does not reference its
# link, so the receiving side touches only the destination.


def _departs(
    departing: list[tuple[float, Event]], depart_ms: float, now_ms: float, event: Event
) -> None:
    """Remember a message that leaves when the sender's work is done (`abort_departures`)."""
    if len(departing) >= _DEPARTING_PRUNE:
        departing[:] = [d for d in departing if d[0] > now_ms]
    departing.append((depart_ms, event))


class _Rows:
    """The per-destination state of one source node, as parallel lists.

    Memory grows as nodes squared (3 list slots per ordered pair): about 24 MB
    for 1,000 nodes, which is far more than any chapter runs.
    """

    __slots__ = ("last_ms", "latency_ms", "sent")

    def __init__(self, width: int) -> None:
        # latency_ms[i] is the link's (lo, span) of its class, or None unless a
        # message to i can take the fast path (the link exists, is not cut, and
        # no loss/dup/reorder is configured): one lookup tells both.
        self.latency_ms: list[tuple[float, float] | None] = [None] * width
        self.last_ms: list[float] = [0.0] * width  # FIFO: last arrival time on the link
        self.sent: list[int] = [0] * width

    def grow(self) -> None:
        self.latency_ms.append(None)
        self.last_ms.append(0.0)
        self.sent.append(0)


class Port:
    """A node's attachment to the network. `Port.send` is `ctx.send`.

    The runtime's context class derives from it. Everything `send` needs is
    bound in slots when the port is made, so the hot path does no lookups
    beyond its own attributes.
    """

    __slots__ = (
        "_due",
        "_endpoint",
        "_endpoints",
        "_kernel",
        "_last_row",
        "_latency_row",
        "_rand",
        "_send_general",
        "_sent_row",
        "_times",
        "node_id",
    )

    def __init__(self, net: SimNet, node_id: str, endpoint: Any) -> None:
        rows = net._rows[node_id]
        self.node_id = node_id
        self._endpoint = endpoint
        self._endpoints = net._endpoints
        self._kernel = net._kernel
        self._times = net._kernel.times
        self._due = net._kernel.due
        self._rand = net._random
        self._latency_row, self._last_row, self._sent_row = rows.latency_ms, rows.last_ms, rows.sent
        self._send_general = net.send_general

    # --8<-- [start:ctx-send]
    def send(self, dst: str, msg: Any) -> None:
        """Hand `msg` to the network, from this node to `dst`."""
        try:
            dst_endpoint = self._endpoints[dst]
        except KeyError:
            self._send_general(self.node_id, dst, msg, self._endpoint)  # the ValueError
            return
        i = dst_endpoint.index
        latency_ms = self._latency_row[i]
        if latency_ms is None or not isinstance(msg, Message):
            # A new link, a cut, faults on, or a TypeError.
            self._send_general(self.node_id, dst, msg, self._endpoint)
            return
        endpoint = self._endpoint
        now_ms = self._kernel.now_ms
        # A node that called work() sends when the work is done, not before.
        depart_ms = endpoint.busy_until_ms
        if depart_ms < now_ms:
            depart_ms = now_ms
        lo_ms, span_ms = latency_ms
        arrive_ms = depart_ms + lo_ms + span_ms * self._rand()
        last_row = self._last_row
        last_ms = last_row[i]
        if arrive_ms < last_ms:
            arrive_ms = last_ms  # FIFO: never overtake the previous message
        last_row[i] = arrive_ms
        self._sent_row[i] += 1
        event = (ARRIVAL, dst_endpoint, msg, self.node_id)
        due = self._due
        if arrive_ms in due:  # a tie (FIFO makes them common): join the line, as Kernel.push
            queued = due[arrive_ms]
            if type(queued) is list:
                queued.append(event)
            else:
                due[arrive_ms] = [queued, event]
        else:
            due[arrive_ms] = event
            heappush(self._times, arrive_ms)
        if depart_ms > now_ms:  # remembered, so a crash before then can take it back
            departing = endpoint.departing
            if len(departing) < _DEPARTING_PRUNE:
                departing.append((depart_ms, event))
            else:
                _departs(departing, depart_ms, now_ms, event)

    # --8<-- [end:ctx-send]


class SimNet(Partitions):
    """Links between attached endpoints; owned and driven by `SimRuntime`.

    The send path (`Port.send`) handles the common case: a link that exists, is
    not cut, with no loss, duplication or reordering configured, from a node
    idle or still busy with work (most senders: a node's handler calls
    `work()` first). Anything else (a first message, a cut, faults on, an
    unknown node) goes through `send_general`. So faults cost nothing when
    they are off.
    """

    def __init__(
        self,
        topology: Topology,
        kernel: Kernel,
        config: NetConfig,
        rng: random.Random,
        trace: Callable[..., None],
    ) -> None:
        self.topology = topology
        self.config = config
        self._kernel = kernel
        self._rng = rng
        self._random = rng.random
        self._deliver = ARRIVAL  # the handler slot marking an arrival event
        self._drop_handler = self._drop  # one bound method, so events can be told by `is`
        self._trace = trace
        self._endpoints: dict[str, Any] = {}
        self._index: dict[str, int] = {}
        self._rows: dict[str, _Rows] = {}  # src -> its per-destination rows
        self._links: dict[str, dict[str, Link]] = {}  # src -> dst -> link
        self._cut: set[tuple[str, str]] = set()
        self._placement: dict[str, tuple[str, str]] = {}  # node -> (cell, city)
        self._faulty = False
        self._class_latency: dict[str, tuple[float, float]] = {}  # class -> (lo, span)
        object.__setattr__(config, "_listener", self.reconfigure)
        self.reconfigure()

    # -- endpoints and links --------------------------------------------------
    def attach(self, node_id: str, endpoint: Any) -> int:
        """Register a node's endpoint; returns its index (the runtime stores
        it as `endpoint.index`). An endpoint has `index`, `busy_until_ms`
        (when its current work ends) and `departing` (a list kept here)."""
        assert node_id not in self._endpoints, f"{node_id!r} attached twice"
        index = len(self._index)
        self._endpoints[node_id] = endpoint
        self._index[node_id] = index
        for rows in self._rows.values():
            rows.grow()
        self._rows[node_id] = _Rows(index + 1)
        self._links[node_id] = {}
        return index

    def link(self, src: str, dst: str) -> Link:
        """The link src -> dst, created on first use; ValueError for unknown ids."""
        table = self._links.get(src)
        if table is None:
            raise ValueError(f"send from {src!r}: no such node in this run")
        found = table.get(dst)
        if found is not None:
            return found
        endpoint = self._endpoints.get(dst)
        if endpoint is None:
            known = ", ".join(sorted(self._endpoints)) or "none"
            raise ValueError(f"{src!r} sent to unknown node {dst!r} (known: {known})")
        klass = self._distance_class(src, dst)
        index = self._index[dst]
        key = self._index[src] * 65_536 + index + 1
        link: Link = [endpoint, (src, dst) in self._cut, 0, 0, src, dst, klass, key, index]
        table[dst] = link
        self._refresh_link(self._rows[src], link)
        return link

    def _distance_class(self, src: str, dst: str) -> str:
        # Placement is looked up once per node, not in networkx per link:
        # a 100-node run creates ~10,000 links.
        place = self._placement
        for node in (src, dst):
            if node not in place:
                place[node] = (self.topology.cell_of(node), self.topology.city_of(node))
        (cell_a, city_a), (cell_b, city_b) = place[src], place[dst]
        if src == dst:
            return "local"
        if cell_a == cell_b:
            return "cell"
        return "city" if city_a == city_b else "cross_city"

    def reconfigure(self) -> None:
        """Apply `self.config` to every link (called when a field is assigned)."""
        self.config.validate()
        cfg = self.config
        self._faulty = cfg.loss > 0 or cfg.duplicate > 0 or cfg.reorder > 0
        # One (lo, span) pair per class, shared by all its links.
        self._class_latency = {
            klass: (base_ms * (1.0 - cfg.jitter_ratio), base_ms * 2.0 * cfg.jitter_ratio)
            for klass, base_ms in cfg.latency_ms.items()
        }
        self._refresh_all()

    def set_message_faults(
        self, loss: float = 0.0, duplicate: float = 0.0, reorder: float = 0.0
    ) -> None:
        """Lose, duplicate, hold back this share of every message (all zeros: none).

        The three `config` fields at once (the real backends' `ProcessNet`
        has the same method, so a nemesis speaks one API). `heal()` does not
        end it; setting zeros does.
        """
        cfg = self.config
        if (cfg.loss, cfg.duplicate, cfg.reorder) == (loss, duplicate, reorder):
            return
        for name, p in (("loss", loss), ("duplicate", duplicate), ("reorder", reorder)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"message fault {name} is a probability in [0, 1], got {p!r}")
        # Set without the listener, then apply once: no draws, nothing else changes.
        object.__setattr__(cfg, "loss", loss)
        object.__setattr__(cfg, "duplicate", duplicate)
        object.__setattr__(cfg, "reorder", reorder)
        self.reconfigure()
        self._trace("net", loss=loss, duplicate=duplicate, reorder=reorder)

    def _refresh_all(self) -> None:
        for src, table in self._links.items():
            rows = self._rows[src]
            for link in table.values():
                self._refresh_link(rows, link)

    def _refresh_link(self, rows: _Rows, link: Link) -> None:
        latency_ms = self._class_latency[link[L_CLASS]]
        cut_or_faulty = link[L_CUT] or self._faulty
        rows.latency_ms[link[L_DST_INDEX]] = None if cut_or_faulty else latency_ms

    def send_general(self, src: str, dst: str, msg: Any, endpoint: Any) -> None:
        """The send path with every check and fault (see `Port.send`)."""
        link = self.link(src, dst)  # ValueError for an unknown node id
        if not isinstance(msg, Message):
            raise TypeError(
                f"{src!r} sent a {type(msg).__name__} to {dst!r}: only @message classes can be sent"
            )
        now_ms = self._kernel.now_ms
        # A node that called work() sends when the work is done, not before.
        depart_ms = max(now_ms, endpoint.busy_until_ms)
        rows, i = self._rows[src], link[L_DST_INDEX]
        rows.sent[i] += 1
        if link[L_CUT]:  # partitioned: the message never leaves
            link[L_DROPPED] += 1
            return
        cfg, rand = self.config, self._random
        if cfg.loss and rand() < cfg.loss:
            link[L_DROPPED] += 1
            return
        copies = 1
        if cfg.duplicate and rand() < cfg.duplicate:
            copies = 2
            link[L_DUPLICATED] += 1
        lo_ms, span_ms = self._class_latency[link[L_CLASS]]
        for _ in range(copies):
            arrive_ms = depart_ms + lo_ms + span_ms * rand()
            if cfg.reorder and rand() < cfg.reorder:
                # Held back past its successors, and outside the FIFO order.
                arrive_ms += (lo_ms + span_ms / 2) * (1.0 + 2.0 * rand())
            else:
                arrive_ms = max(arrive_ms, rows.last_ms[i])
                rows.last_ms[i] = arrive_ms
            event = (self._deliver, link[L_DST], msg, src)
            self._kernel.push(arrive_ms, event)
            if depart_ms > now_ms:  # remembered, so a crash before then can take it back
                _departs(endpoint.departing, depart_ms, now_ms, event)

    def abort_departures(self, endpoint: Any) -> int:
        """The node crashed mid-work: what it sent "after" the work never left."""
        now_ms = self._kernel.now_ms
        doomed = {id(event) for depart_ms, event in endpoint.departing if depart_ms > now_ms}
        endpoint.departing.clear()
        if not doomed:
            return 0
        return self._rewrite_to_drop(lambda event: id(event) in doomed)

    # -- partitions -----------------------------------------------------------
    # The words (cut, partition, isolate, the nemesis shapes) are Partitions'
    # (reference/net/partitions.py), shared with the process runtime; what a
    # cut means here is below.
    # --8<-- [start:net-partition]
    def _add_cuts(self, links: set[tuple[str, str]], **fields: object) -> None:
        self._cut |= links
        self._apply_cuts()
        self._trace("partition", **fields)

    def heal(self) -> None:
        """Restore every link."""
        self._cut.clear()
        self._apply_cuts()
        self._trace("heal")

    def is_cut(self, src: str, dst: str) -> bool:
        return (src, dst) in self._cut

    def _apply_cuts(self) -> None:
        for src, table in self._links.items():
            for dst, link in table.items():
                link[L_CUT] = (src, dst) in self._cut
        self._refresh_all()
        self.drop_in_flight(lambda link: link[L_CUT])

    def drop_in_flight(self, doomed: Callable[[Link], bool]) -> int:
        """Turn every queued arrival on a `doomed` link into a drop.

        Faults are rare and messages are many, so instead of checking every
        arrival against cuts and crashes, a fault rewrites the few arrivals
        it dooms (each keeps its time and its place in line).
        """
        return self._rewrite_to_drop(lambda event: doomed(self._link_of(event)))

    def drop_arrivals_to(self, endpoint: Any) -> int:
        """Every message in flight to `endpoint` is lost (its node crashed)."""
        return self._rewrite_to_drop(lambda event: event[1] is endpoint)

    def _rewrite_to_drop(self, doomed: Callable[[Any], bool]) -> int:
        deliver, drop = self._deliver, self._drop_handler

        def change(event: Any) -> Any:
            if event[0] is deliver and doomed(event):
                return (drop, event[1], event[2], event[3])
            return None

        return self._kernel.rewrite(change)

    def _drop(self, dst: Any, _msg: Any, src: str) -> int:
        """Handler of an arrival a fault doomed: count it, deliver nothing."""
        self.count_drop(src, dst.node_id)
        return -1 - dst.index

    def count_drop(self, src: str, dst: str) -> None:
        self._links[src][dst][L_DROPPED] += 1

    def _link_of(self, event: tuple[Any, ...]) -> Link:
        # An arrival is (handler, dst endpoint, msg, src).
        return self._links[event[3]][event[1].node_id]

    # --8<-- [end:net-partition]

    def _all_nodes(self) -> list[str]:
        return self.topology.nodes()

    def _expand(self, names: Iterable[str]) -> set[str]:
        if isinstance(names, str):
            raise TypeError(f"expected a collection of names, got the string {names!r}")
        out: set[str] = set()
        for name in names:
            if self.topology.kind(name) is None:
                raise ValueError(f"partition: {name!r} is no node, cell or city")
            out.update(self.topology.nodes_in(name))
        return out

    # -- statistics -----------------------------------------------------------
    def _in_flight(self) -> dict[int, int]:
        """Queued arrivals per link (by link key): a scan, for reports only."""
        counts: dict[int, int] = {}
        deliver, drop = self._deliver, self._drop_handler
        for _, event in self._kernel.queued():
            if event[0] is deliver or event[0] is drop:
                key = self._link_of(event)[L_KEY]
                counts[key] = counts.get(key, 0) + 1
        return counts

    def _stats(self, link: Link, in_flight: dict[int, int]) -> LinkStats:
        # Only sends, drops and duplicates are counted (the receiving side is
        # the hottest path and does not touch the link). Every copy of a
        # message is delivered, dropped or still in flight, so:
        sent = self._rows[link[L_SRC_ID]].sent[link[L_DST_INDEX]]
        dropped, duplicated = link[L_DROPPED], link[L_DUPLICATED]
        delivered = sent + duplicated - dropped - in_flight.get(link[L_KEY], 0)
        return LinkStats(sent, delivered, dropped, duplicated)

    def link_stats(self) -> dict[tuple[str, str], LinkStats]:
        """Counters per directed link that carried (or tried to) a message."""
        in_flight = self._in_flight()
        return {
            (src, dst): self._stats(link, in_flight)
            for src, table in sorted(self._links.items())
            for dst, link in sorted(table.items())
        }

    def stats_by_class(self) -> dict[str, LinkStats]:
        """Delivery counters summed per distance class."""
        in_flight = self._in_flight()
        sums = {c: [0, 0, 0, 0] for c in DISTANCE_CLASSES}
        for table in self._links.values():
            for link in table.values():
                row = sums[link[L_CLASS]]
                for k, value in enumerate(self._stats(link, in_flight)):
                    row[k] += value
        return {c: LinkStats(*row) for c, row in sums.items()}
