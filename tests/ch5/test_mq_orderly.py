"""Orderly consumption with queue locks: a group whose members deduplicate on their
own disks applies nothing twice across a rebalance, and keeps each key in order.

A producer sends numbered messages for eight keys; a loyalty group (local dedup
tables) of two members shares the topic's queues. The second member joins
mid-run, and the first, whose heartbeats are slower, hears of it late: it must
hand half of its queues over. With `orderly` the hand-over
finishes the message in hand, commits the offset, then unlocks, and the new
owner consumes only once it holds the lock. Without it, the two members read a
queue at once for a while, and the second applies again what the first did.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from typing import Any

from reference.codec import Message
from reference.mq.broker import BrokerReplica
from reference.mq.caller import CALL_TIMER, GroupCaller
from reference.mq.consumer import ConsumerConfig, MessageConsumer, _effect_answers
from reference.mq.machine import BrokerConfig, BrokerMachine
from reference.mq.membership import ConsumerMembers
from reference.mq.messages import ApplyEffect, CommitOffset, LockQueues, Payload, SendMessage
from reference.net.topology import Topology
from reference.node import Context, Node, NodeId
from reference.paxos.config import PaxosConfig
from reference.paxos.messages import Membership, Propose, ProposeResult, ReadResult
from reference.runtime.sim import SimRuntime

REPLICAS = ("b1", "b2", "b3")
TOPIC, KEYS, SEND_EVERY_MS = "payments", 8, 10.0


class Sender(Node):
    """Plain messages `k<key>-<n>`, one key after the other, every SEND_EVERY_MS."""

    def __init__(self, until_ms: float) -> None:
        self.caller = GroupCaller({"broker": REPLICAS})
        self.sent = 0
        self.until_ms = until_ms

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer(500.0, "send")

    def on_timer(self, ctx: Context, tag: Hashable) -> None:
        if isinstance(tag, tuple) and tag[0] == CALL_TIMER:
            self.caller.on_timer(ctx, tag)
            return
        key, n = f"u{self.sent % KEYS}", self.sent // KEYS
        msg_id = f"{key}-{n}"
        body = Payload(msg_id, key, "m1@pay", 100)
        send = Propose(msg_id, SendMessage(TOPIC, msg_id, key, body, 0))
        self.caller.call(ctx, "broker", send, lambda ok, r: None)
        self.sent += 1
        if ctx.now_ms() < self.until_ms:
            ctx.set_timer(SEND_EVERY_MS, "send")

    def on_message(self, ctx: Context, src: NodeId, msg: Message) -> None:
        if isinstance(msg, ProposeResult | ReadResult):
            self.caller.on_result(ctx, src, msg)


def _run(orderly: bool) -> tuple[list[dict[str, Any]], BrokerMachine]:
    topo = Topology.build({"hangzhou": {"hz": [*REPLICAS, "sender", "c1", "c2"]}})
    rt = SimRuntime(topology=topo, seed=5, strict=True)
    cfg = PaxosConfig(membership=Membership(1, REPLICAS))
    broker = BrokerConfig(rebalance_lock_max_live_ms=5_000)
    for n in REPLICAS:
        rt.add_node(n, lambda nid: BrokerReplica(nid, cfg, broker, {"p": ("sender",)}))
    rt.add_node("sender", lambda nid: Sender(until_ms=4_000.0))
    history: list[dict[str, Any]] = []
    # c1 hears of the join up to a second late (its heartbeats are slower): long
    # enough for c2 to take queues c1 still reads, unless the locks say no.
    every = tuple(range(broker.queues_per_topic))
    for member, heartbeat_ms in (("c1", 1_000.0), ("c2", 100.0)):
        ccfg = ConsumerConfig(
            # Orderly, c1 boots with every queue (to lock before it reads any);
            # otherwise both start empty and take queues as the group forms.
            "loyalty", TOPIC, every if orderly and member == "c1" else (),
            "loyalty", REPLICAS, history.append,
            topic_queues=broker.queues_per_topic, rebalance=True, orderly=orderly,
            retries=False, offset_commit_interval_ms=1_000.0, lock_renew_interval_ms=1_000.0,
            heartbeat_interval_ms=heartbeat_ms, poll_interval_ms=20.0, work_ms=5.0,
        )  # fmt: skip
        rt.add_node(member, lambda nid, c=ccfg: MessageConsumer(nid, c))
    rt.start()
    rt.crash("c2")  # not there yet: it joins at 2 s
    rt.run_until(2_000.0)
    rt.restart("c2")
    rt.run_until(9_000.0)
    leader = next(rt.node(n) for n in REPLICAS if rt.node(n).role == "leader")
    assert isinstance(leader, BrokerReplica)
    return history, leader.machine


def _time(applied: tuple[float, str, str]) -> float:
    """Sort applies by time only: one command applies several messages at once, and
    the history's order among them is theirs (their ids do not sort: u0-10 < u0-9)."""
    return applied[0]


def _applied(history: list[dict[str, Any]]) -> list[tuple[float, str, str]]:
    """(time, member, msg id) of every effect applied. An apply whose member died
    before its answer is open in the history; the first "exists" answered for the
    message later (the effect table holds it) stands for it."""
    oks = [e for e in history if e["f"] == "apply" and e["type"] == "ok"]
    applied = {e["value"]["id"] for e in oks if e["value"].get("result") != "exists"}
    out: list[tuple[float, str, str]] = []
    for e in oks:
        mid = e["value"]["id"]
        if e["value"].get("result") == "exists":
            if mid in applied:
                continue  # a duplicate of an effect the history shows applied
            applied.add(mid)  # the first word that an open apply took effect
        out.append((e["time_ms"], e["process"].split("#")[0], mid))
    return out


def test_orderly_hand_over_applies_nothing_twice_and_keeps_each_key_in_order() -> None:
    history, machine = _run(orderly=True)
    applied = _applied(history)
    ids = [m for _, _, m in applied]
    assert len(ids) == len(set(ids)) > 300  # every effect once ...
    assert {member for _, member, _ in applied} == {"c1", "c2"}  # ... by both members
    for key in range(KEYS):  # each key's messages applied in send order, whoever did it
        in_time = sorted(applied, key=_time)
        ns = [int(m.split("-")[1]) for _, _, m in in_time if m.startswith(f"u{key}-")]
        assert ns == sorted(ns) and len(ns) == ns[-1] + 1, (key, ns)
    assert {who for who, _ in machine.locks.values()} == {"c1", "c2"}
    assert machine.clone().locks == machine.locks  # replicated: in the snapshot


def test_without_locks_the_same_join_applies_effects_twice() -> None:
    """The case the locks are for: this test fails if the unlocked rebalance is safe."""
    applied = _applied(_run(orderly=False)[0])
    ids = [m for _, _, m in applied]
    assert len(ids) > len(set(ids))


def test_a_queue_lock_has_one_holder_until_it_is_released_or_expires() -> None:
    b = BrokerMachine(BrokerConfig(rebalance_lock_max_live_ms=1_000))

    def lock(who: str, at_ms: int, *qids: int, unlock: bool = False) -> Any:
        return b.apply(LockQueues("g", who, TOPIC, qids, unlock, at_ms))

    assert lock("c1", 0, 0, 1) == ("locked", (0, 1), ())
    assert lock("c2", 500, 1, 2) == ("locked", (2,), ())  # 1 is c1's
    assert lock("c1", 900, 0, 1) == ("locked", (0, 1), ())  # renewed until 1,900
    assert lock("c2", 1_500, 1) == ("locked", (), ())
    assert lock("c2", 1_901, 1) == ("locked", (1,), ())  # expired: c2's now
    assert lock("c1", 2_000, 0, unlock=True) == ("unlocked", (0,))
    assert lock("c1", 2_000, 1, unlock=True) == ("unlocked", ())  # not c1's to release
    assert b.clone().locks == b.locks


def test_an_open_claim_passes_with_the_lock_to_the_next_holder() -> None:
    """c1 claims messages [0, 2) of queue 0, applies m0 and goes silent. Its lock
    is released (as the leader releases a member it tells is dead) with the claim
    still open; c2, granted the queue, adopts the claim to apply first, and the
    effect table answers "exists" for m0, which c1 applied. (Before the effect
    table, the unlock was refused while the claim was open: only c1's disk knew
    what of it was applied, and the queue waited for c1 or the lock's life.)"""
    b = BrokerMachine(BrokerConfig(rebalance_lock_max_live_ms=1_000))
    body = Payload("m", "u0", "m1@pay", 1)
    for i in range(3):
        b.apply(SendMessage(TOPIC, f"m{i}", "u0", body, 0))
    qid = b.log[0].queue_id
    assert b.apply(LockQueues("g", "c1", TOPIC, (qid,), False, 0))[1] == (qid,)
    assert b.apply(CommitOffset("g", TOPIC, qid, 2, "c1", 0)) == ("ok", 2)
    assert b.apply(ApplyEffect("g", ("m0",), ("u0",), (5,))) == (("applied", 5),)
    assert b.apply(LockQueues("g", "c2", TOPIC, (qid,), False, 400)) == ("locked", (), ())
    assert b.apply(LockQueues("g", "c1", TOPIC, (qid,), True, 500)) == ("unlocked", (qid,))
    assert b.claims_of("g", "c1") == ((TOPIC, qid, 0, 2),)  # open, for the next holder
    assert b.apply(LockQueues("g", "c2", TOPIC, (qid,), False, 600)) == ("locked", (qid,), (qid,))
    assert b.claims_of("g", "c1") == () and b.claims_of("g", "c2") == ((TOPIC, qid, 0, 2),)
    assert b.offsets[("g", TOPIC, qid)] == 2  # c2 reads on from the claim's end
    effects = ApplyEffect("g", ("m0", "m1"), ("u0", "u0"), (5, 5))
    assert b.apply(effects) == (("exists",), ("applied", 10))  # m0 once, m1 once
    assert b.clone().applied == b.applied and b.clone().balances == {("g", "u0"): 10}
    # c2 applied it: a claim of nothing closes it, and then c2 may unlock.
    assert b.apply(CommitOffset("g", TOPIC, qid, 2, "c2", 2)) == ("ok", 2)
    assert b.apply(LockQueues("g", "c2", TOPIC, (qid,), True, 700)) == ("unlocked", (qid,))


def test_a_refusal_of_two_effects_is_not_taken_for_their_answers() -> None:
    """A member retries its effects until the table answers each: a refusal of a
    two-effect command, ("refused", why), has two items too, and passed for the
    answers (each item, not "exists", counted as "applied")."""
    assert not _effect_answers(("refused", "one account and amount per message"), 2)
    assert _effect_answers((("applied", 5), ("exists",)), 2)


def _run_death(
    *,
    restart_ms: float,
    work_ms: float = 5.0,
    release: bool = True,
    kill_leader_ms: float | None = None,
) -> list[dict[str, Any]]:
    return _death_run(
        restart_ms=restart_ms, work_ms=work_ms, release=release, kill_leader_ms=kill_leader_ms
    )[0]


def _death_run(
    *,
    restart_ms: float,
    work_ms: float = 5.0,
    release: bool = True,
    kill_leader_ms: float | None = None,
    after_ms: float = 4_000.0,
    members_from_ms: float = 0.0,
) -> tuple[list[dict[str, Any]], SimRuntime]:
    """Two members from the start; c2 dies at 3 s holding its locks (60 s life) and
    is back at `restart_ms`. Slow handlers (`work_ms`) leave c2 a backlog, so it
    dies in the middle of a claim. `kill_leader_ms`: the broker's leader dies then
    (back at `restart_ms` too). `members_from_ms`: the members start then (the
    broker has a leader by then, as in the capstone: their first calls answered)."""
    topo = Topology.build({"hangzhou": {"hz": [*REPLICAS, "sender", "c1", "c2"]}})
    rt = SimRuntime(topology=topo, seed=7, strict=True)
    cfg = PaxosConfig(membership=Membership(1, REPLICAS))
    broker = BrokerConfig()  # RocketMQ's 60 s lock life
    timeout_ms = 3_000.0 if release else 1e9  # 1e9: the leader never tells it died
    for n in REPLICAS:
        rt.add_node(
            n,
            lambda nid: BrokerReplica(
                nid, cfg, broker, {"p": ("sender",)}, member_timeout_ms=timeout_ms
            ),
        )
    rt.add_node("sender", lambda nid: Sender(until_ms=6_000.0))
    history: list[dict[str, Any]] = []
    for i, member in enumerate(("c1", "c2")):
        ccfg = ConsumerConfig(
            "loyalty", TOPIC, tuple(q for q in range(4) if q % 2 == i), "loyalty", REPLICAS,
            history.append, topic_queues=4, rebalance=True, orderly=True, retries=False,
            offset_commit_interval_ms=1_000.0, heartbeat_interval_ms=200.0,
            poll_interval_ms=20.0, work_ms=work_ms,
        )  # fmt: skip
        rt.add_node(member, lambda nid, c=ccfg: MessageConsumer(nid, c))
    rt.start()
    if members_from_ms:
        for member in ("c1", "c2"):
            rt.crash(member)
        rt.run_until(members_from_ms)
        for member in ("c1", "c2"):
            rt.restart(member)
    rt.run_until(3_000.0)
    rt.crash("c2")
    lost = []
    if kill_leader_ms is not None:
        rt.run_until(kill_leader_ms)
        lost = [n for n in REPLICAS if getattr(rt.node(n), "role", "") == "leader"]
        rt.crash(lost[0])
    rt.run_until(restart_ms)
    for n in ["c2", *lost]:
        rt.restart(n)
    rt.run_until(restart_ms + after_ms)
    return history, rt


def _once_in_order(applied: list[tuple[float, str, str]]) -> None:
    ids = [m for _, _, m in applied]
    assert len(ids) == len(set(ids)) > 500  # every message sent applied, once
    for key in range(KEYS):
        in_time = sorted(applied, key=_time)
        ns = [int(m.split("-")[1]) for _, _, m in in_time if m.startswith(f"u{key}-")]
        assert ns == sorted(ns) and len(ns) == ns[-1] + 1, (key, ns)


def _taken_over_ms(applied: list[tuple[float, str, str]]) -> float | None:
    """When c1 first applied a message of c2's keys after c2 died (None: never)."""
    c2_keys = {m.split("-")[0] for t, who, m in applied if who == "c2" and t < 3_000}
    assert c2_keys
    late = [t for t, who, m in applied if who == "c1" and t > 3_000 and m.split("-")[0] in c2_keys]
    return min(late, default=None)


def test_a_dead_members_locks_are_released_and_its_queues_taken_over_at_once() -> None:
    """c2 dies holding two queues' locks, its claims applied. The leader tells it
    died (3 s without a heartbeat) and releases them: c1 takes the queues about 3 s
    after the death, not after the locks' 60 s life. Every message applied once,
    each key in order."""
    applied = _applied(_run_death(restart_ms=12_000.0))
    _once_in_order(applied)
    taken = _taken_over_ms(applied)
    assert taken is not None and taken < 8_000.0


def test_a_member_that_dies_mid_claim_has_its_queues_and_claim_taken_over_at_once() -> None:
    """c2 dies with claimed messages not yet applied (a backlog). The leader
    releases its locks all the same, about 3 s after the death: c1 adopts the
    open claims, applies them first (the effect table answers "exists" for what
    c2 applied), and reads on. c2, back at 12 s, finds no claim of its own left.
    (Before the effect table, those queues kept their locks until c2 came back,
    since only c2's disk knew what of its claim it had applied.)"""
    applied = _applied(_run_death(restart_ms=12_000.0, work_ms=15.0))
    _once_in_order(applied)
    taken = _taken_over_ms(applied)
    assert taken is not None and taken < 8_000.0


def test_a_leader_elected_after_the_death_releases_the_dead_members_locks_too() -> None:
    """The broker's leader dies 0.2 s after c2, before it could tell c2 died. The
    next leader never heard of c2, but the replicated locks name it: c2 owes this
    leader a heartbeat, and 3 s without one release its queues to c1 (they waited
    for the locks' 60 s before, here for c2's return at 12 s)."""
    applied = _applied(_run_death(restart_ms=12_000.0, kill_leader_ms=3_200.0))
    # Every message applied once. (Not each key in send order: the sender's
    # messages in flight to the dead leader are stored after later ones.)
    ids = [m for _, _, m in applied]
    assert len(ids) == len(set(ids)) > 500
    for key in range(KEYS):
        ns = sorted(int(m.split("-")[1]) for m in ids if m.startswith(f"u{key}-"))
        assert len(ns) == ns[-1] + 1, (key, ns)
    taken = _taken_over_ms(applied)
    assert taken is not None and taken < 10_000.0, taken


def test_a_restarted_member_is_not_answered_with_its_dead_incarnations_locks() -> None:
    """c2 dies at 3 s, c1 takes its queues once the leader releases them (~6 s), and
    c2 is back at 8 s. Its first calls are those of its first life, in the same
    order: request ids without the incarnation ("lock:c2:3") were answered from the
    broker's dedup table with the locks c2 held at boot, which c1 holds now, and
    both members applied the same messages (loyalty applied twice in the capstone,
    `d11 run double11 --scale 1/200 --seed 1`). Every queue c2 reads is locked
    for c2 at the broker, and every effect is applied once."""
    history, rt = _death_run(restart_ms=8_000.0, after_ms=3_000.0, members_from_ms=500.0)
    leader = next(rt.node(n) for n in REPLICAS if getattr(rt.node(n), "role", "") == "leader")
    c2 = rt.node("c2")
    assert isinstance(leader, BrokerReplica) and isinstance(c2, MessageConsumer)
    holders = {qid: who for (_, _, qid), (who, _) in leader.machine.locks.items()}
    believed = [q.queue_id for q in c2.queues.values() if q.locked]
    assert all(holders.get(qid) == "c2" for qid in believed), (believed, holders)
    ids = [m for _, _, m in _applied(history)]
    assert len(ids) == len(set(ids)) > 500


def test_without_the_release_a_dead_members_queues_wait_for_their_locks() -> None:
    """The case the release is for: a leader that cannot tell c2 died leaves its
    queues unread until c2 is back (their locks would last 60 s)."""
    applied = _applied(_run_death(restart_ms=12_000.0, release=False))
    _once_in_order(applied)
    assert _taken_over_ms(applied) is None


def _unapplied_claims(rt: SimRuntime, member: str) -> list[tuple[int, int]]:
    """The open claims of `member` at the broker's leader, as (from, to), if the
    member has heard of none of them yet (so applied nothing of them); else []."""
    roles = {n: getattr(rt.node(n), "role", "") for n in REPLICAS}
    leader = next((rt.node(n) for n, role in roles.items() if role == "leader"), None)
    consumer = rt.node(member)
    if not isinstance(leader, BrokerReplica) or not isinstance(consumer, MessageConsumer):
        return []
    claims = [
        (f"{topic}/{qid}", lo, hi)
        for (_, topic, qid, who), (lo, hi) in leader.machine.claims.items()
        if who == member
    ]
    # A claim it applied and has not closed yet would be applied again by the next
    # holder (only its disk knows): the schedule planted here has none of those.
    heard = [name for name, _, hi in claims if consumer.queues[name].claimed_to >= hi]
    return [] if heard else [(lo, hi) for _, lo, hi in claims]


def test_a_member_that_dies_mid_claim_for_good_leaves_its_claim_to_the_next_holder() -> None:
    """The planted schedule: c2 dies at the instant its claim is committed and its
    answer not yet applied, and never comes back. Its lock is released (or runs
    out), c1 is granted the queue with the claim and applies it before reading on: every
    message applied once, each key in order. (Before, c1 read on after the claim,
    and the claimed messages were applied by nobody.)"""
    history, recorded = _dies_for_good(lambda rt, history: bool(_unapplied_claims(rt, "c2")))
    applied = _applied(history)
    _once_in_order(applied)
    assert not [e for e in history[recorded:] if e["process"].startswith("c2")]
    assert _taken_over_ms(applied) is not None


def _dies_for_good(
    caught: Callable[[SimRuntime, list[dict[str, Any]]], bool], work_ms: float = 5.0
) -> tuple[list[dict[str, Any]], int]:
    """c1 and c2 share the queues (locks live 6 s here); c2 is killed for good at
    the first step after 3 s at which `caught` holds (before 5 s), and the group
    runs on to 20 s. The history, and how much of it was recorded by then (a
    record's time is its node's clock, after the handler's work: not comparable)."""
    topo = Topology.build({"hangzhou": {"hz": [*REPLICAS, "sender", "c1", "c2"]}})
    rt = SimRuntime(topology=topo, seed=7, strict=True)
    cfg = PaxosConfig(membership=Membership(1, REPLICAS))
    broker = BrokerConfig(rebalance_lock_max_live_ms=6_000)
    for n in REPLICAS:
        rt.add_node(n, lambda nid: BrokerReplica(nid, cfg, broker, {"p": ("sender",)}))
    rt.add_node("sender", lambda nid: Sender(until_ms=6_000.0))
    history: list[dict[str, Any]] = []
    for i, member in enumerate(("c1", "c2")):
        ccfg = ConsumerConfig(
            "loyalty", TOPIC, tuple(q for q in range(4) if q % 2 == i), "loyalty", REPLICAS,
            history.append, topic_queues=4, rebalance=True, orderly=True, retries=False,
            offset_commit_interval_ms=1_000.0, heartbeat_interval_ms=200.0,
            lock_renew_interval_ms=2_000.0, poll_interval_ms=20.0, work_ms=work_ms,
        )  # fmt: skip
        rt.add_node(member, functools.partial(MessageConsumer, config=ccfg))
    rt.start()
    rt.run_until(3_000.0)
    while not caught(rt, history):
        assert rt.step() and rt.now_ms < 5_000.0, "the planted moment never came"
    rt.crash("c2")  # for good
    recorded = len(history)
    rt.run_until(20_000.0)
    return history, recorded


def test_a_leader_waits_for_lock_holders_it_never_heard_then_releases_them_once() -> None:
    members = ConsumerMembers(timeout_ms=3_000.0)
    # c1 beats; c2 holds locks in the replicated state and never beats here.
    assert members.heartbeat((2, "b2"), "g", "c1", 0.0, ["c1", "c2"]) == []
    assert members.heartbeat((2, "b2"), "g", "c1", 3_000.0, ["c1", "c2"]) == []
    assert members.heartbeat((2, "b2"), "g", "c1", 3_001.0, ["c1", "c2"]) == ["c2"]
    assert members.heartbeat((2, "b2"), "g", "c1", 9_000.0, ["c1", "c2"]) == []  # once
    assert members.live("g") == ("c1",)  # c2 was never listed
    # c2 is back: live again; then silent, it is dropped as any member is.
    assert members.heartbeat((2, "b2"), "g", "c2", 9_500.0, ["c1", "c2"]) == []
    assert members.live("g") == ("c1", "c2")
    assert members.heartbeat((2, "b2"), "g", "c1", 12_501.0, ["c1", "c2"]) == ["c2"]
    # Leading again after another term: c1, last heard long ago, gets a grace.
    assert members.heartbeat((3, "b2"), "g", "c2", 20_000.0, ["c1"]) == []
    assert members.live("g") == ("c1", "c2")
    assert members.heartbeat((3, "b2"), "g", "c2", 23_001.0, ["c1"]) == ["c1"]
    assert members.live("g") == ("c2",)


def _applied_in_open_claim(rt: SimRuntime, member: str, history: list[dict[str, Any]]) -> bool:
    """Has `member` applied a message of a claim still open at the broker's leader
    (dying now, it dies between applying and closing: the close it sends departs
    after the handler's work, and a crash aborts it)?"""
    leader = next(rt.node(n) for n in REPLICAS if getattr(rt.node(n), "role", "") == "leader")
    assert isinstance(leader, BrokerReplica)
    mine = {m for _, who, m in _applied(history) if who == member}
    for (_, topic, qid, who), (lo, hi) in leader.machine.claims.items():
        index = leader.machine.queues.get((topic, qid), [])
        ids = [leader.machine.log[index[o]].msg_id for o in range(lo, min(hi, len(index)))]
        if who == member and ids and ids[0] in mine:
            return True
    return False


def test_a_member_that_applied_part_of_its_claim_and_died_for_good_has_none_reapplied() -> None:
    """The exactly-once gap: c2 applies the first messages of a claim and dies
    before closing it, for good. The next holder adopts the claim once c2's lock is
    free; what c2 applied of it, c2's own disk alone knew, so c1 applied it again
    (applied-twice on the code before the effect table). With the effect and its
    dedup record in one replicated step at the broker, c1's second apply of those
    is answered "exists": every message applied once, each key in order."""
    runs: list[SimRuntime] = []

    def caught(rt: SimRuntime, history: list[dict[str, Any]]) -> bool:
        runs[:] = [rt]
        return _applied_in_open_claim(rt, "c2", history)

    history, recorded = _dies_for_good(caught, work_ms=20.0)
    applied = _applied(history)
    _once_in_order(applied)
    assert not [e for e in history[recorded:] if e["process"].startswith("c2")]
    assert _taken_over_ms(applied) is not None
    # The next holder adopted c2's claim and was told what c2 had applied of it.
    assert [e for e in history if e["value"].get("result") == "exists"]
    # And the effect table stayed bounded all the while: the records of messages
    # settled for the group (below its committed offset and every open claim) were
    # dropped, the settled mark answering for them (before: one record per message).
    leader = next(n for n in map(runs[0].node, REPLICAS) if getattr(n, "role", "") == "leader")
    assert isinstance(leader, BrokerReplica)
    machine = leader.machine
    assert machine.trimmed_below and len(machine.applied) < len(applied) // 4, (
        len(machine.applied), len(applied),
    )  # fmt: skip
