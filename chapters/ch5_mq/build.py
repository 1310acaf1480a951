"""The build steps of chapter 5: each adds one kind of node to a deployment.

`MqStage.build` (`stage.py`) calls them in order: the directory of
accounts, the ledger group, the broker group, the payment services
(transactional producers), the consumer groups, and the front that serves
the final reads. The settlement transfer, the genesis ledger and the
production view of the directory are what these nodes are built with.
"""

from __future__ import annotations

import dataclasses
import functools

from chapters.ch4_paxos.group import GroupPlan, paxos_config
from chapters.ch5_mq.deployment import MqDeployment, simulated
from chapters.ch5_mq.plan import (
    CODE_SETTLEMENT,
    CONSUMER_GROUPS,
    NOTIFY_FAIL_RATIO,
    PAY,
    PRODUCER_GROUP,
    SETTLED,
    TOPIC,
)
from chapters.stage import Runtime, StageOptions
from reference.gateway.router import even_buckets
from reference.ledger import Account, Transfer
from reference.ledger.directory import LEDGER_CNY, Directory, transfer_id
from reference.ledger.front import FrontConfig, LedgerFront
from reference.ledger.machine import LedgerMachine
from reference.ledger.records import AMOUNT_MAX_CENTS
from reference.ledger.results import CreateAccountResult
from reference.ledger.service import LedgerReplica
from reference.mq import (
    BrokerReplica,
    ConsumerConfig,
    MessageConsumer,
    Payload,
    ProducerConfig,
    StoredMessage,
    TransactionalProducer,
)
from reference.node import NodeId
from reference.paxos.config import PaxosConfig
from reference.paxos.replicated_state import ReplicatedState
from reference.tracing import is_shadow, shadow_account, shadow_name


def settlement_transfer(directory: Directory, m: StoredMessage, delivery: int) -> Transfer:
    """Escrow -> settled for one payment event. Its id is fixed by the message
    (delivery 0: idempotent), or fresh per delivery (the no-dedup variant)."""
    suffix = f"#{delivery}" if delivery else ""
    merchant = m.body.merchant.split("@", 1)[0]
    return Transfer(
        id=transfer_id(f"settle:{m.msg_id}{suffix}"),
        debit_account_id=directory.ids[m.body.merchant],
        credit_account_id=directory.ids[f"{merchant}@{SETTLED}"],
        amount_cents=m.body.amount_cents,
        ledger=LEDGER_CNY,
        code=CODE_SETTLEMENT,
    )


def production_view(directory: Directory) -> Directory:
    """The directory without the shadow accounts (same ids): what the front reads, so
    a production read never returns shadow data."""
    ids = {n: i for n, i in directory.ids.items() if not is_shadow(n)}
    return dataclasses.replace(
        directory,
        ids=ids,
        names={i: n for n, i in ids.items()},
        opening_cents={n: b for n, b in directory.opening_cents.items() if n in ids},
        members={g: tuple(n for n in ms if n in ids) for g, ms in directory.members.items()},
    )


def genesis(directory: Directory) -> LedgerMachine:
    """One ledger for both halves: the wallets and escrows, then the settled accounts."""
    machine = directory.genesis(PAY)
    settled = [
        Account(directory.ids[name], LEDGER_CNY, 2) for name in directory.accounts_of(SETTLED)
    ]
    results = machine.ledger.create_accounts(settled, 0)
    assert all(r == CreateAccountResult.OK for r in results), results
    return machine


# --8<-- [start:mq-build-steps]
def directory_for(dep: MqDeployment, balances: dict[str, int]) -> Directory:
    """Both halves of the merchants' money live in the one ledger group. With a
    load test every account has a shadow twin, opened alike (chapter 7)."""
    opening = balances | ({shadow_account(a): b for a, b in balances.items()} if dep.traced else {})
    return Directory.build(even_buckets([PAY]), {PAY: dep.ledger, SETTLED: dep.ledger}, opening)


def add_ledger(rt: Runtime, dep: MqDeployment, directory: Directory) -> None:
    """The ledger: chapter 4's Paxos group, three cities."""
    ledger_cfg = _timed(paxos_config(GroupPlan(PAY, dep.ledger)), rt)

    def ledger_replica(nid: NodeId) -> LedgerReplica:
        replica = LedgerReplica(nid, ledger_cfg)
        replica.machine_factory = lambda: genesis(directory)
        replica.state = ReplicatedState(replica.machine_factory(), ledger_cfg.dedup_max_requests)
        return replica

    for nid in dep.ledger:
        rt.add_node(nid, ledger_replica)
        dep.roles["replica"].append(nid)


def add_brokers(rt: Runtime, dep: MqDeployment) -> None:
    """The broker: the same kind of group, the broker's state as its state
    machine. Its log compacts less often: a snapshot holds every message."""
    broker_cfg = _timed(paxos_config(GroupPlan("broker", dep.brokers)), rt)
    broker_cfg = dataclasses.replace(broker_cfg, snapshot_every_slots=4_096)
    producers = {PRODUCER_GROUP: tuple(dep.producers)}
    for nid in dep.brokers:
        rt.add_node(
            nid,
            lambda n: BrokerReplica(n, broker_cfg, dep.broker_config, producers, trace_topic=True),
        )
        dep.roles["replica"].append(nid)


def add_producers(
    rt: Runtime, dep: MqDeployment, directory: Directory, options: StageOptions
) -> None:
    """The payment services: the transactional producer."""
    ids = directory.ids
    variant = options.variant
    mode = "transactional" if variant in ("transactional", "no-dedup") else variant

    def transfer(p: Payload) -> Transfer:
        return Transfer(
            transfer_id(p.payment_id),
            ids[p.buyer],
            ids[p.merchant],
            p.amount_cents,
            LEDGER_CNY,
            10,
        )

    def fence(p: Payload) -> Transfer:
        # Same id as the payment's transfer, an amount no wallet holds.
        return Transfer(
            transfer_id(p.payment_id),
            ids[p.buyer],
            ids[p.merchant],
            AMOUNT_MAX_CENTS,
            LEDGER_CNY,
            10,
        )

    pcfg = ProducerConfig(
        PRODUCER_GROUP, TOPIC, mode, dep.brokers, dep.ledger, transfer, fence, dep.record,
        traced=dep.traced, trace_topic=True, payout=dep.pays_back,
    )  # fmt: skip
    producer_kind, _ = _planted(str(options.extra.get("leak", "")))
    for nid in dep.producers:
        # extra leak=producer: the first producer drops the tag (chapter 7's leak).
        kind = producer_kind if nid == dep.producers[0] else TransactionalProducer
        rt.add_node(nid, functools.partial(kind, config=pcfg))
        dep.local_nodes.append(nid)
        dep.roles["shard"].append(nid)  # where payments are served and counted


def add_consumers(
    rt: Runtime, dep: MqDeployment, directory: Directory, options: StageOptions
) -> None:
    """The consumers: each group splits the topic's queues among its members."""
    variant = options.variant
    queues = dep.broker_config.queues_per_topic
    # The groups with per-member dedup tables rebalance too, safely, by queue
    # locks and claims (reference/mq/consumer.py, orderly consumption); extra
    # orderly=0: they do not rebalance at all (the chapter's first lesson).
    # A consumer without a dedup table (no-dedup) cannot finish its claims after a
    # restart (nothing says which it applied): it keeps the plain at-least-once path.
    orderly = bool(int(options.extra.get("orderly", 1))) and variant != "no-dedup"
    _, consumer_kind = _planted(str(options.extra.get("leak", "")))
    lanes = [(g, TOPIC, g, MessageConsumer) for g in CONSUMER_GROUPS]
    if dep.traced:  # shadow groups read the shadow topic; production groups never do
        shadow_topic = shadow_name(TOPIC)
        lanes += [(shadow_name(g), shadow_topic, g, consumer_kind) for g in CONSUMER_GROUPS]
    for group, topic, twin, consumer in lanes:
        effect, homes = CONSUMER_GROUPS[twin]
        members = [f"{group}-{h}" for h in homes]
        dep.consumers[group] = members
        for i, nid in enumerate(members):
            ccfg = ConsumerConfig(
                group=group,
                topic=topic,
                # At boot, each member's share (a rebalance keeps it while all live).
                queues=tuple(q for q in range(queues) if q % len(members) == i),
                topic_queues=queues,
                # Settlement's effects are idempotent in the ledger, whoever applies
                # them; loyalty's and notifications' dedup tables are per member.
                rebalance=effect == "settlement" or orderly,
                orderly=orderly and effect != "settlement",
                effect=effect,
                broker=dep.brokers,
                record=dep.record,
                idempotent=variant != "no-dedup",
                ledger=dep.ledger if effect == "settlement" else (),
                settlement=(lambda m, d: settlement_transfer(directory, m, d))
                if effect == "settlement"
                else None,
                fail_ratio=NOTIFY_FAIL_RATIO if effect == "notification" else 0.0,
                traced=dep.traced,
                trace_topic=True,
            )
            rt.add_node(nid, functools.partial(consumer, config=ccfg))
            dep.local_nodes.append(nid)
            dep.roles["shard"].append(nid)


def add_front(rt: Runtime, dep: MqDeployment, directory: Directory) -> None:
    """The final reads see production accounts only (a production read never
    returns shadow data); the shadow twins are the load test's."""
    front_directory = production_view(directory) if dep.traced else directory
    rt.add_node("front", lambda _nid: LedgerFront(FrontConfig(front_directory)))
    dep.roles["config"].append("front")


# --8<-- [end:mq-build-steps]


def _planted(leak: str) -> tuple[type[TransactionalProducer], type[MessageConsumer]]:
    """The producer and shadow-consumer classes for extra "leak" (chapter 7's planted
    leak on the queue hop: a node that drops the tag)."""
    if not leak:
        return TransactionalProducer, MessageConsumer
    from reference.tracing.leaky import TagDroppingConsumer, TagDroppingProducer

    if leak == "producer":
        return TagDroppingProducer, MessageConsumer
    return TransactionalProducer, TagDroppingConsumer


def _timed(cfg: PaxosConfig, rt: Runtime) -> PaxosConfig:
    """The simulator's Paxos timings, or etcd-like ones on real processes.

    On a shared, loaded machine a real process is descheduled for 100 ms and
    more at times; with 150 ms elections the groups re-elected dozens of
    times a minute (as `d11 bench process` found for chapter 4's ledger).
    """
    if simulated(rt):
        return cfg
    return dataclasses.replace(
        cfg, election_timeout_ms=1_000.0, heartbeat_interval_ms=100.0, lease_ms=300.0
    )
