"""Link faults: the set of cut links, message faults, and `rt.net`, which sets them.

`LinkFaults` is the part of ProcessRuntime (process.py) that keeps what the
network is told: the set of cut (src, dst) links and the message-fault
setting. It sends every node its own share, the whole share each time: a
local node's transport directly, a process node over its control channel
(a node still booting gets it when that channel connects). `ProcessNet` is
`rt.net`, the simulator's partition vocabulary (cut, partition, isolate,
heal, the seeded shapes) that edits that set, and `link_stats`, which adds
up every node's per-link counts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from reference.net.partitions import Partitions
from reference.net.sim import LinkStats
from reference.runtime.members import Link, Member
from reference.runtime.transport import Address, MessageFaults
from reference.sim.rng import stream

if TYPE_CHECKING:
    from reference.net.topology import Topology


class LinkFaults:
    """Cut links and message faults, pushed to every node; mixed into ProcessRuntime."""

    seed: int
    topology: Topology | None
    members: dict[str, Member]
    cuts: set[Link]
    message_faults: MessageFaults

    if TYPE_CHECKING:  # what this part uses of the rest of the runtime

        def addr_book(self, for_node: str) -> dict[str, Address]: ...
        def stats(self, node_id: str) -> dict[str, Any]: ...
        def _trace_fault(self, kind: str, node: str, **fields: object) -> None: ...
        def _quiet(self, future: asyncio.Future[object]) -> None: ...

    def _blocks_of(self, node_id: str) -> tuple[frozenset[str], frozenset[str]]:
        """(peers node_id must not send to, peers it must not hear from)."""
        out = frozenset(dst for src, dst in self.cuts if src == node_id)
        into = frozenset(src for src, dst in self.cuts if dst == node_id)
        return out, into

    def _blocks_json(self, node_id: str) -> dict[str, list[str]]:
        out, into = self._blocks_of(node_id)
        return {"out": sorted(out), "in": sorted(into)}

    def _apply_cuts(self) -> None:
        """Tell every node its share of the cut set (the whole share, not a delta)."""
        for member in self.members.values():
            if member.host is not None:
                member.host.transport.set_blocks(*self._blocks_of(member.node_id))
            elif member.control is not None and member.control.connected.is_set():
                self._quiet(member.control.command("blocks", **self._blocks_json(member.node_id)))
            # A node still booting gets its share when its control channel connects.

    def _apply_message_faults(self) -> None:
        """Tell every node the message-fault setting (the whole setting)."""
        for member in self.members.values():
            if member.host is not None:
                member.host.transport.set_message_faults(self.message_faults)
            elif member.control is not None and member.control.connected.is_set():
                self._quiet(member.control.command("net", **self.message_faults.to_json()))
            # A node still booting gets it when its control channel connects.

    def _broadcast_addrs(self) -> None:
        for member in self.members.values():
            book = self.addr_book(member.node_id)
            if member.host is not None:
                member.host.transport.set_addrs(book)
            elif member.control is not None and member.control.connected.is_set():
                addrs = {n: list(a) for n, a in book.items()}
                self._quiet(member.control.command("peers", addrs=addrs))


class ProcessNet(Partitions):
    """`rt.net`: the simulator's partition vocabulary over a set of cut links.

    The words are `reference.net.partitions.Partitions`, as on `SimNet`
    (names may be nodes, or cells and cities when the runtime has a
    topology); the cuts are enforced by the nodes' transports.
    """

    def __init__(self, runtime: LinkFaults) -> None:
        self._rt = runtime
        self._rng = stream(runtime.seed, "net")  # the simulator's stream: same seed, same shapes

    def _expand(self, names: Iterable[str]) -> set[str]:
        if isinstance(names, str):
            raise TypeError(f"expected a collection of names, got the string {names!r}")
        out: set[str] = set()
        topology = self._rt.topology
        for name in names:
            if name in self._rt.members:
                out.add(name)
            elif topology is not None and topology.kind(name) in ("cell", "city"):
                out.update(topology.nodes_in(name))
            else:
                raise ValueError(f"partition: {name!r} is no node, cell or city")
        return out

    def _all_nodes(self) -> list[str]:
        return sorted(self._rt.members)

    def _add_cuts(self, links: set[Link], **fields: object) -> None:
        self._rt.cuts |= links
        self._rt._trace_fault("partition", "", **fields)
        self._rt._apply_cuts()

    def heal(self) -> None:
        """Restore every link."""
        self._rt.cuts.clear()
        self._rt._trace_fault("heal", "")
        self._rt._apply_cuts()

    def set_message_faults(
        self, loss: float = 0.0, duplicate: float = 0.0, reorder: float = 0.0
    ) -> None:
        """Lose, duplicate, hold back this share of every message (all zeros: none).

        Applied by each node's transport to what it sends, clients included,
        as the simulator applies it to every message. `heal()` does not end
        it; setting zeros does.
        """
        faults = MessageFaults(loss, duplicate, reorder)  # ValueError, TypeError if bad
        if faults == self._rt.message_faults:
            return
        self._rt.message_faults = faults
        self._rt._trace_fault("net", "", **faults.to_json())
        self._rt._apply_message_faults()

    def is_cut(self, src: str, dst: str) -> bool:
        return (src, dst) in self._rt.cuts

    def link_stats(self) -> dict[Link, LinkStats]:
        """Per directed link: (sent, delivered, dropped, duplicated). Asks every up node.

        `sent` counts frames written (a duplicate twice, a lost or cut
        message not at all); `dropped` sums the sender's drops (cut, lost,
        full, peer down) and the receiver's (cut on arrival).
        """
        sent: dict[Link, int] = {}
        delivered: dict[Link, int] = {}
        dropped: dict[Link, int] = {}
        duplicated: dict[Link, int] = {}
        for node_id, member in self._rt.members.items():
            if member.status != "up":
                continue
            for peer, counts in self._rt.stats(node_id)["links"].items():
                out, into = (node_id, peer), (peer, node_id)
                sent[out] = sent.get(out, 0) + counts["sent"]
                dropped[out] = dropped.get(out, 0) + (
                    counts["dropped_cut"]
                    + counts["dropped_full"]
                    + counts["dropped_down"]
                    + counts["dropped_loss"]
                )
                duplicated[out] = duplicated.get(out, 0) + counts["duplicated"]
                delivered[into] = delivered.get(into, 0) + counts["received"]
                dropped[into] = dropped.get(into, 0) + counts["dropped_in"]
        links = sorted(set(sent) | set(delivered) | set(dropped))
        return {
            link: LinkStats(
                sent.get(link, 0),
                delivered.get(link, 0),
                dropped.get(link, 0),
                duplicated.get(link, 0),
            )
            for link in links
        }
