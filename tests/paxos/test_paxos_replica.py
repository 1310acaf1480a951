"""The Paxos replica driven by hand: elections, commits, batching, catch-up,
snapshots, restarts, leases, idempotent retries, and the arbiter's degrade."""

from __future__ import annotations

from typing import Any

import pytest

from checks.explore import CLIENT, Driver, Scenario
from reference.codec import decode, encode
from reference.disk.sim import SimDisk
from reference.paxos import Arbiter, KVStore, PaxosConfig, Replica
from reference.paxos.messages import (
    Accept,
    Accepted,
    ChosenVote,
    Membership,
    Prepare,
    Promise,
    Propose,
    ProposeResult,
    Read,
    ReadResult,
)
from reference.testing import RecordingContext

THREE = Membership(1, ("n1", "n2", "n3"))
TWO_AND_ARBITER = Membership(1, ("n1", "n2"), "a")


def driver(membership: Membership = THREE, **config: Any) -> Driver:
    return Driver(Scenario("test", membership, requests=(), timer_budget={}, config=config))


def elect(d: Driver, node: str = "n1") -> None:
    d.command(f"fire {node}")
    d.settle(1.0)
    assert d.world.nodes[node].role == "leader"  # type: ignore[attr-defined]


def propose(d: Driver, node: str, request_id: str, command: Any) -> None:
    d.world.proposed = d.world.proposed | {(request_id, command)}
    d.world.enqueue(CLIENT, node, Propose(request_id, command))


def results(d: Driver) -> dict[str, Any]:
    return {r.request_id: r.result for _, r in d.replies if isinstance(r, ProposeResult) and r.ok}


def replica(d: Driver, node: str) -> Replica:
    found = d.world.nodes[node]
    assert isinstance(found, Replica)
    return found


def test_election_commit_and_learning() -> None:
    d = driver()
    elect(d)
    propose(d, "n1", "r1", ("put", "x", 1))
    d.settle(100.0)  # heartbeats carry the commit index to the followers
    assert results(d) == {"r1": None}
    for node in ("n1", "n2", "n3"):
        assert replica(d, node).state.machine.read("x") == 1, node


def test_batching_fills_slots_and_window_bounds_pipelining() -> None:
    d = driver(batch_max_commands=4, window_slots=2)
    elect(d)
    for i in range(10):
        propose(d, "n1", f"r{i}", ("add", "n", 1))
    d.command("deliver-all")
    leader = replica(d, "n1")
    # Two slots go out at once; the rest queue behind the window and leave in
    # batches of at most four as soon as it opens.
    assert [len(leader.chosen[s]) for s in sorted(leader.chosen)] == [1, 1, 4, 4]
    assert results(d) == {f"r{i}": i + 1 for i in range(10)}
    # Never more than two slots were in flight: the window.
    d2 = driver(batch_max_commands=1, window_slots=2)
    elect(d2)
    for i in range(5):
        propose(d2, "n1", f"r{i}", ("add", "n", 1))
    for _ in range(5):
        d2.command("deliver client n1")
    assert sorted(replica(d2, "n1").inflight) == [1, 2]
    assert len(replica(d2, "n1").pending) == 3


def test_gathered_requests_share_a_slot_instead_of_the_first_taking_one() -> None:
    # With a propose delay (0 on a real runtime: the end of the loop's turn),
    # the ten requests that arrived together fill slots of four; without
    # one, the first two took a slot each (the test above: 1, 1, 4, 4).
    d = driver(batch_max_commands=4, window_slots=2, propose_delay_ms=0.0)
    elect(d)
    for i in range(10):
        propose(d, "n1", f"r{i}", ("add", "n", 1))
    d.command("deliver-all")
    leader = replica(d, "n1")
    assert not leader.inflight and len(leader.pending) == 10  # the turn is not over
    d.settle(1.0)
    leader = replica(d, "n1")  # the driver copies a node before it changes it
    assert [len(leader.chosen[s]) for s in sorted(leader.chosen)] == [4, 4, 2]
    assert results(d) == {f"r{i}": i + 1 for i in range(10)}


def test_a_follower_with_a_learn_delay_applies_after_the_accept_handler() -> None:
    # The Accept for slot 2 says slot 1 is chosen. Without a delay the follower
    # applies slot 1 in that handler; with learn_delay_ms it acknowledges slot 2
    # first and applies slot 1 when its "learn" timer fires.
    for delay_ms in (None, 0.0):
        d = driver(learn_delay_ms=delay_ms)
        elect(d)
        propose(d, "n1", "r1", ("put", "x", 1))
        d.settle(1.0)
        assert results(d) == {"r1": None}
        propose(d, "n1", "r2", ("put", "y", 2))
        d.command("deliver-all")  # the Accept for slot 2 (commit index 1) is handled
        follower = replica(d, "n2")
        if delay_ms is None:
            assert follower.commit_index >= 1 and follower.learn_pending is None
        else:
            assert follower.commit_index == 0 and follower.learn_pending is not None
        d.settle(100.0)
        for node in ("n1", "n2", "n3"):
            assert replica(d, node).state.machine.read("x") == 1, (node, delay_ms)
            assert replica(d, node).state.machine.read("y") == 2, (node, delay_ms)


def test_retry_with_same_request_id_applies_once_even_across_leaders() -> None:
    d = driver()
    elect(d)
    propose(d, "n1", "r1", ("add", "n", 5))
    d.settle(100.0)
    d.command("crash n1")
    d.command("cut n1 n2")
    d.command("cut n1 n3")
    d.settle(400.0)  # n2 takes over (n1 stays cut off: it would only disrupt)
    leader = next(n for n in ("n2", "n3") if replica(d, n).role == "leader")
    propose(d, leader, "r1", ("add", "n", 5))  # the client's retry
    propose(d, leader, "r2", ("add", "n", 1))
    d.settle(100.0)
    assert replica(d, leader).state.machine.read("n") == 6
    assert results(d)["r1"] == 5 and results(d)["r2"] == 6


def test_lagging_replica_catches_up_from_a_snapshot_after_truncation() -> None:
    d = driver(snapshot_every_slots=2)
    elect(d)
    d.command("cut n1 n3")
    d.command("cut n2 n3")
    for i in range(6):
        propose(d, "n1", f"r{i}", ("put", f"k{i}", i))
        d.command("deliver-all")
    leader = replica(d, "n1")
    assert leader.commit_index == 6 and leader.snapshot_slot == 6
    assert not [k for k in d.world.disks["n1"].keys("paxos/acc/") if int(k[-12:]) <= 6]
    assert replica(d, "n3").commit_index == 0
    d.command("heal")
    lines = d.settle(200.0, quiet=False)
    lagging = replica(d, "n3")
    assert lagging.commit_index == 6
    assert "    n3: paxos.install_snapshot slot=6" in lines
    assert lagging.state.machine.snapshot() == replica(d, "n1").state.machine.snapshot()


def test_restart_recovers_promise_votes_and_snapshot_from_disk() -> None:
    d = driver(snapshot_every_slots=2)
    elect(d)
    for i in range(3):
        propose(d, "n1", f"r{i}", ("put", "x", i))
    d.settle(100.0)
    before = replica(d, "n2")
    promised, commit = before.promised, before.commit_index
    d.command("crash n2")
    after = replica(d, "n2")
    assert after.promised == promised
    assert after.commit_index == commit == 3
    assert after.state.machine.read("x") == 2


def test_lease_read_refused_once_the_lease_runs_out() -> None:
    d = driver()
    elect(d)
    d.command("fire n1")  # first heartbeat round: starts the lease
    d.command("deliver-all")
    d.world.enqueue(CLIENT, "n1", Read("q1", "x"))
    d.command("deliver-all")
    d.command("cut n1 n2")
    d.command("cut n1 n3")
    d.settle(100.0)  # no acks: the lease (100 - 10 ms) expires
    d.world.enqueue(CLIENT, "n1", Read("q2", "x"))
    d.command("deliver-all")
    reads = {r.request_id: r for _, r in d.replies if isinstance(r, ReadResult)}
    assert reads["q1"].ok and not reads["q2"].ok and reads["q2"].error == "no-lease"


def test_follower_redirects_clients_to_the_leader() -> None:
    d = driver()
    elect(d)
    d.command("fire n1")
    d.command("deliver-all")
    propose(d, "n2", "r1", ("put", "x", 1))
    d.command("deliver-all")
    (reply,) = [r for _, r in d.replies if isinstance(r, ProposeResult)]
    assert not reply.ok and reply.leader_hint == "n1" and reply.error == "not-leader"


def test_acceptor_fsyncs_before_it_acknowledges() -> None:
    cfg = PaxosConfig(membership=THREE)
    for mutations, survives in ((frozenset(), True), (frozenset({"ack-before-sync"}), False)):
        cfg = PaxosConfig(membership=THREE, mutations=mutations)
        disk = SimDisk()
        ctx = RecordingContext(node_id="n2", disk=disk)
        node = Replica("n2", cfg, KVStore)
        node.on_start(ctx)
        accept = Accept((1, "n1"), 1, 1, (("r1", ("put", "x", 1)),), 0)
        node.on_message(ctx, "n1", accept)
        assert ctx.sent[-1] == ("n1", Accepted((1, "n1"), 1, True, (1, "n1")))
        disk.crash()  # power cut right after the acknowledgement left
        assert (disk.get("paxos/acc/000000000001") is not None) is survives


def test_promise_is_durable_unless_forget_promise() -> None:
    for mutations, survives in ((frozenset(), True), (frozenset({"forget-promise"}), False)):
        disk = SimDisk()
        ctx = RecordingContext(node_id="n3", disk=disk, clock_ms=1000.0)
        node = Replica("n3", PaxosConfig(membership=THREE, mutations=mutations), KVStore)
        node.on_start(ctx)
        ctx.clock_ms = 2000.0  # past the restart quiet period
        node.on_message(ctx, "n1", Prepare((4, "n1"), THREE, 0))
        assert isinstance(ctx.sent[-1][1], Promise) and ctx.sent[-1][1].ok
        disk.crash()
        restarted = Replica("n3", node.cfg, KVStore)
        restarted.on_start(RecordingContext(node_id="n3", disk=disk))
        assert (restarted.promised == (4, "n1")) is survives


def test_a_granted_promise_restarts_the_followers_election_timer() -> None:
    """A follower that promises a candidate gives it a whole election timeout
    before campaigning itself: on its old timer it would depose the ballot it
    just promised (the duel traced in book ch7: 559 ms to a leader, not 249)."""
    ctx = RecordingContext(node_id="n3", clock_ms=1000.0)
    node = Replica("n3", PaxosConfig(membership=THREE), KVStore)
    node.on_start(ctx)
    ctx.clock_ms = 2000.0  # past the restart quiet period; the boot timer is older
    armed_at_ms = ctx.timers["election"]
    node.on_message(ctx, "n2", Prepare((4, "n2"), THREE, 0))
    assert isinstance(ctx.sent[-1][1], Promise) and ctx.sent[-1][1].ok
    assert ctx.timers["election"] == 2000.0 + node.election_delay_ms > armed_at_ms
    # A refused prepare (a lower ballot) gives its sender nothing.
    ctx.clock_ms = 2100.0
    node.on_message(ctx, "n1", Prepare((3, "n1"), THREE, 0))
    assert isinstance(ctx.sent[-1][1], Promise) and not ctx.sent[-1][1].ok
    assert ctx.timers["election"] == 2000.0 + node.election_delay_ms


def test_arbiter_votes_but_never_accepts() -> None:
    cfg = PaxosConfig(membership=TWO_AND_ARBITER)
    ctx = RecordingContext(node_id="a", clock_ms=1000.0)
    arbiter = Arbiter("a", cfg)
    arbiter.on_start(ctx)
    ctx.clock_ms = 2000.0
    arbiter.on_message(ctx, "n1", Prepare((1, "n1"), TWO_AND_ARBITER, 0))
    promise = ctx.sent[-1][1]
    assert isinstance(promise, Promise) and promise.ok and promise.accepted == ()
    arbiter.on_message(ctx, "n1", Accept((1, "n1"), 1, 1, (("r", ("put", "x", 1)),), 0))
    refused = ctx.sent[-1][1]
    assert isinstance(refused, Accepted) and not refused.ok
    assert ctx.disk.keys("paxos/acc/") == []


def test_two_replicas_and_arbiter_degrade_then_upgrade() -> None:
    d = driver(TWO_AND_ARBITER)
    elect(d)
    propose(d, "n1", "r1", ("put", "x", 1))
    d.settle(50.0)
    assert results(d) == {"r1": None}
    # n2 vanishes: commits stall (both replicas are needed) until the degrade.
    d.command("cut n1 n2")
    d.command("cut a n2")
    propose(d, "n1", "r2", ("put", "x", 2))
    d.settle(100.0)
    assert "r2" not in results(d)
    d.settle(400.0)  # past the arbitration timeout
    leader = replica(d, "n1")
    assert leader.membership.data == ("n1",) and leader.membership.epoch == 2
    assert results(d)["r2"] == 1  # the survivor committed alone
    propose(d, "n1", "r3", ("put", "x", 3))
    d.settle(50.0)
    assert results(d)["r3"] == 2
    # n2 returns: it learns everything, then the arbiter approves the upgrade.
    d.command("heal")
    d.settle(300.0)
    leader = replica(d, "n1")  # the driver copies a node on every step: fetch anew
    assert leader.membership.data == ("n1", "n2") and leader.membership.epoch == 3
    assert replica(d, "n2").state.machine.read("x") == 3
    propose(d, "n1", "r4", ("put", "x", 4))
    d.settle(50.0)
    assert results(d)["r4"] == 3


def test_degraded_group_fences_the_lost_replica() -> None:
    d = driver(TWO_AND_ARBITER)
    elect(d)
    d.command("cut n1 n2")
    d.settle(500.0)
    assert replica(d, "n1").membership.epoch == 2
    # n2 still believes in epoch 1 and campaigns: the arbiter refuses it.
    d.command("cut n1 a")
    d.command("heal")
    d.command("cut n1 n2")
    d.command("cut n1 a")
    d.settle(1000.0)
    assert replica(d, "n2").role != "leader"
    assert replica(d, "n2").membership.epoch == 2  # it learned it was removed


def test_every_message_of_a_run_round_trips_through_the_codec() -> None:
    d = driver(TWO_AND_ARBITER)
    elect(d)
    seen = []
    original = d.world.enqueue

    def spy(src: str, dst: str, msg: Any) -> None:
        seen.append(msg)
        original(src, dst, msg)

    d.world.enqueue = spy  # type: ignore[method-assign]
    propose(d, "n1", "r1", ("put", "x", 1))
    d.command("cut n1 n2")
    d.settle(600.0)
    d.command("heal")
    d.settle(300.0)
    assert len({type(m).__name__ for m in seen}) >= 7
    for msg in seen:
        assert decode(encode(msg)) == msg


def test_unknown_mutation_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown mutation"):
        PaxosConfig(membership=THREE, mutations=frozenset({"typo"}))


def test_five_replicas_commit_with_two_cut_off() -> None:
    five = Membership(1, ("n1", "n2", "n3", "n4", "n5"))
    d = driver(five)
    d.command("cut n1 n4")
    d.command("cut n1 n5")
    elect(d)
    propose(d, "n1", "r1", ("put", "x", 1))
    d.settle(50.0)
    assert results(d) == {"r1": None}  # three of five accepted it


def test_lost_accept_is_sent_again_with_the_next_heartbeat() -> None:
    d = driver()
    elect(d)
    propose(d, "n1", "r1", ("put", "x", 1))
    d.command("deliver client n1")
    d.world.inflight.clear()  # the network loses both Accepts
    d.settle(40.0)  # one heartbeat interval later
    assert results(d) == {"r1": None}


def _accepts_in_flight(d: Driver, dst: str, slot: int) -> int:
    return sum(
        count
        for (src, to, msg), count in d.world.inflight.items()
        if src == "n1" and to == dst and isinstance(msg, Accept) and msg.slot == slot
    )


def test_heartbeat_resends_accepts_only_to_peers_that_may_have_lost_them() -> None:
    d = driver()
    elect(d)
    first = replica(d, "n1").next_slot  # (the driver copies a node it steps: fetch anew)
    for request_id in ("r1", "r2"):
        propose(d, "n1", request_id, ("put", request_id, 1))
        d.command("deliver client n1")
    assert sorted(replica(d, "n1").inflight) == [first, first + 1]
    d.command("deliver n1 n2 Accept")  # slot `first`: n2 keeps up so far...
    d.command("deliver n2 n1 Accepted")
    d.command("fire n1")  # ...and is merely slow with `first + 1`: no duplicate for it,
    assert _accepts_in_flight(d, "n2", first + 1) == 1
    assert _accepts_in_flight(d, "n3", first + 1) == 2  # n3 said nothing: resent
    # n2's copies of `first + 1` are lost; it then acknowledges a later slot,
    # which the FIFO link proves it received after: the lost one is resent.
    for item in [i for i in d.world.inflight if i[1] == "n2"]:
        del d.world.inflight[item]
    propose(d, "n1", "r3", ("put", "r3", 1))
    d.command("deliver client n1")
    d.command("deliver n1 n2 Accept")
    d.command("deliver n2 n1 Accepted")
    assert first + 1 in replica(d, "n1").inflight
    d.command("fire n1")
    assert _accepts_in_flight(d, "n2", first + 1) == 1
    d.settle(200.0)
    assert results(d) == {"r1": None, "r2": None, "r3": None}


def test_a_learned_vote_is_logged_once_and_survives_a_restart() -> None:
    """A follower that voted for a slot logs "my vote was chosen", not the
    batch again; after a crash the chosen value comes back from the vote. If
    a later ballot re-proposes that (chosen, not yet applied) slot, the log
    record takes the value itself before the vote it points at is replaced."""
    cfg = PaxosConfig(membership=THREE)
    disk = SimDisk()
    ctx = RecordingContext(node_id="n2", disk=disk)
    node = Replica("n2", cfg, KVStore)
    node.on_start(ctx)
    one, two = (("r1", ("put", "x", 1)),), (("r2", ("put", "y", 2)),)
    node.on_message(ctx, "n1", Accept((1, "n1"), 1, 1, one, 0))
    node.on_message(ctx, "n1", Accept((1, "n1"), 1, 2, two, 0))
    node.on_message(ctx, "n1", Accept((1, "n1"), 1, 3, (), 2))  # slots 1 and 2 are chosen
    assert node.commit_index == 2
    assert disk.get("paxos/log/000000000001") == ChosenVote((1, "n1"))
    node.sync(ctx)  # learning is made durable lazily: by the next sync
    disk.crash()
    restarted = Replica("n2", cfg, KVStore)
    restarted.on_start(RecordingContext(node_id="n2", disk=disk))
    assert restarted.commit_index == 2 and restarted.state.machine.read("y") == 2

    # Slot 3 is learned out of order (slot 2's value unknown here): chosen,
    # not applied, and logged by vote. A new leader re-proposes it.
    gap = Replica("n3", cfg, KVStore)
    gap_disk = SimDisk()
    gctx = RecordingContext(node_id="n3", disk=gap_disk)
    gap.on_start(gctx)
    three = (("r3", ("put", "z", 3)),)
    gap.on_message(gctx, "n1", Accept((1, "n1"), 1, 3, three, 0))
    gap._learn(gctx, 3, gap.accepted[3][1])
    assert 3 in gap.logged_by_vote and gap.commit_index == 0
    gap.on_message(gctx, "n2", Accept((2, "n2"), 1, 3, three, 0))  # same value, new ballot
    assert gap_disk.get("paxos/log/000000000003") == three
    gap.sync(gctx)
    gap_disk.crash()
    again = Replica("n3", cfg, KVStore)
    again.on_start(RecordingContext(node_id="n3", disk=gap_disk))
    assert again.chosen[3] == three


def test_a_vote_stored_before_encode_once_is_still_read() -> None:
    """The vote's record is the Accept now; a disk written as (ballot, batch) recovers."""
    disk = SimDisk()
    batch = (("r1", ("put", "x", 1)),)
    disk.put("paxos/acc/000000000001", ((1, "n1"), batch))
    disk.sync()
    node = Replica("n2", PaxosConfig(membership=THREE), KVStore)
    node.on_start(RecordingContext(node_id="n2", disk=disk))
    assert node.accepted == {1: ((1, "n1"), batch)}
    node.on_message(
        RecordingContext(node_id="n2", disk=disk), "n1", Accept((2, "n1"), 1, 2, batch, 0)
    )
    disk.crash()
    restarted = Replica("n2", node.cfg, KVStore)
    restarted.on_start(RecordingContext(node_id="n2", disk=disk))
    assert restarted.accepted == {1: ((1, "n1"), batch), 2: ((2, "n1"), batch)}
