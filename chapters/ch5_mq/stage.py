"""Chapter 5: every payment fans out into events, tied to it by a transactional message.

Chapter 4 made a payment durable: one transfer in a Paxos ledger, on disk
in two cities before it is acknowledged. Chapter 5 adds what happens
*after* a payment: merchant settlement, loyalty points, notifications, each
a consumer of the `payments` topic on a message broker. The broker is a
component (`reference.mq`) whose commit log is the state of a second
Paxos group, spread over the same three cities as the ledger's.

The lesson is the coupling between the transfer and its event
(`ProducerConfig.mode`, the stage's variants):

- `transactional` (the fix): half message, transfer, commit or rollback,
  and the broker's check-back answered from the ledger by a fence;
- `naive-after`: transfer, then a fire-and-forget event; a producer that
  dies in between leaves a payment that is never settled;
- `naive-before`: event, then transfer; a declined payment is settled;
- `no-dedup`: transactional, but consumers that are not idempotent: a
  redelivery (at-least-once) settles twice.

The ledger holds each merchant's *escrow* account (`m3@pay`, where
payments land) and its *settled* account (`m3@settled`, where settlement
moves them). Once every event is consumed, every escrow account is back to
zero, exactly when each committed payment was settled exactly once:
`checks.settlement` holds that, and the events of the history against it.
"""

from __future__ import annotations

import dataclasses
import functools
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

from chapters.ch4_paxos.group import GroupPlan, paxos_config
from chapters.common import (
    DEADLINE_MS,
    FINAL_READ_WINDOW_MS,
    RECOVERY_MS,
    PaymentDeployment,
    expect,
)
from chapters.scenarios import SCENARIOS, WARMUP_MS
from chapters.stage import Deployment, Runtime, Scenario, Setting, Stage, StageError, StageOptions
from checks.history import Event
from checks.verdict import Verdict
from reference.clients import Payment
from reference.gateway.router import CellRouter, even_buckets
from reference.ledger import Account, Transfer
from reference.ledger.directory import LEDGER_CNY, Directory, transfer_id
from reference.ledger.front import FrontConfig, LedgerFront
from reference.ledger.machine import LedgerMachine
from reference.ledger.records import AMOUNT_MAX_CENTS
from reference.ledger.results import CreateAccountResult
from reference.ledger.service import LedgerReplica
from reference.mq import (
    BrokerConfig,
    BrokerReplica,
    ConsumerConfig,
    MessageConsumer,
    Payload,
    ProducerConfig,
    StoredMessage,
    TransactionalProducer,
)
from reference.mq.machine import BrokerMachine, retry_topic
from reference.mq.mutations import MUTATIONS as MQ_MUTATIONS
from reference.mq.trace import TRACE
from reference.net.topology import Topology
from reference.node import NodeId
from reference.paxos.config import PaxosConfig
from reference.paxos.replicated_state import ReplicatedState
from reference.payment import merchant_account, user_account
from reference.sim.rng import stream
from reference.tracing import SPAN_EVENT, is_shadow, shadow_account, shadow_name
from reference.traffic.plan import DEFAULT_SCALE

__all__ = ["STAGE", "MqDeployment", "MqStage"]

CITIES: tuple[tuple[str, str], ...] = (("hangzhou", "hz"), ("shanghai", "sh"), ("shenzhen", "sz"))
USERS_CITY, USERS_CELL = "internet", "users"
CLIENTS = 3
USERS = 300  # few users, small wallets: some payments are declined (naive-before shows them)
OPENING_CENTS = 30_000
MERCHANTS = 20
LOST_CITY = "shanghai"
TOPIC = "payments"
PRODUCER_GROUP = "payment-service"
PAY, SETTLED = "pay", "settled"  # the two halves of every merchant's money in the ledger
CODE_SETTLEMENT = 12
GROUP_CAPACITY_TPS = 150.0  # planned payments per second (two groups per payment: ledger, broker)
NOTIFY_FAIL_RATIO = 0.02  # the SMS gateway fails now and then: retries, via the retry topic
GATE_POLL_MS = 1_000.0
SPAN_PROCESS = "trace"  # as chapter 7 records spans (checks.isolation reads them)
LEAKS = ("", "producer", "consumer")  # extra "leak": plant a tag-dropping node (chapter 7)

VARIANTS = {
    "transactional": "half message, local transfer, commit/rollback, check-back (the fix)",
    "naive-after": "transfer, then a fire-and-forget event (a crash in between loses it)",
    "naive-before": "event first, then the transfer (a declined payment is announced)",
    "no-dedup": "transactional, but consumers that are not idempotent",
}
# consumer group -> (effect, members' cities)
CONSUMER_GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "settlement": ("settlement", ("hz", "sh")),
    "loyalty": ("loyalty", ("hz", "sh")),
    "notification": ("notification", ("sz",)),
}


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


# A message's life in the message trace: (time, node, step, what the step knows).
Life = list[tuple[float, str, str, dict[str, object]]]


def _load_test_share(options: StageOptions) -> float:
    return float(options.extra.get("load_test_share", 0.0))


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


class MqDeployment(PaymentDeployment):
    """Chapter 5 on a runtime (see the module docstring)."""

    def __init__(self, stage: Stage, rt: Runtime, options: StageOptions, topology: Topology):
        super().__init__(stage, rt, options, topology)
        self.ledger: tuple[NodeId, ...] = ()
        self.brokers: tuple[NodeId, ...] = ()
        self.producers: list[NodeId] = []
        self.consumers: dict[str, list[NodeId]] = {}
        self.directory: Directory | None = None
        # Producers and consumers record history through `record`: on a real
        # backend they are hosted in the harness's process, like the clients.
        self.local_nodes: list[NodeId] = []
        self._drained_at_ms = -1e18
        self._drained = False
        # The message trace (reference/mq/trace.py): msg id -> its steps, in time order.
        self.lives: dict[str, Life] = {}
        extra = options.extra
        # Chapter 7 on these queues (extra "load_test_share"): a share of the payments
        # is load-test traffic, traced and tagged; its events take the shadow lane.
        self.load_test_share = _load_test_share(options)
        self.traced = self.load_test_share > 0
        self._tagging = stream(options.seed, "load-test/tagging")
        # RocketMQ's defaults unless a run asks otherwise (tests shorten the check window).
        self.broker_config = BrokerConfig(
            transaction_check_interval_ms=int(extra.get("check_interval_ms", 30_000)),
            transaction_check_max=int(extra.get("check_max", 15)),
            mutations=_mutations(options),
        )

    def capacity_tps(self) -> float:
        return GROUP_CAPACITY_TPS

    def payment_for(
        self, rng: random.Random, time_ms: float, uid: int, mid: int, amount_cents: int
    ) -> Payment:
        tagged = self.traced and self._tagging.random() < self.load_test_share
        return Payment(time_ms, user_account(uid), merchant_account(mid, PAY), amount_cents, tagged)

    def lanes(self) -> list[tuple[str, str]]:
        """(consumer group, topic) of every group: production's, and with a load
        test the shadow groups on the shadow topic."""
        out = [(g, TOPIC) for g in CONSUMER_GROUPS]
        if self.traced:
            out += [(shadow_name(g), shadow_name(TOPIC)) for g in CONSUMER_GROUPS]
        return out

    def merchant_balances(self) -> dict[str, int]:
        return {
            merchant_account(m, cell): 0
            for m in range(self.population.merchants)
            for cell in (PAY, SETTLED)
        }

    def city_nodes(self, city: str) -> list[NodeId]:
        return [n for n in self.topology.nodes_in(city) if n not in self.roles["client"]]

    def crash_victims(self) -> list[NodeId]:
        return self.city_nodes(LOST_CITY)

    def restart_after_ms(self) -> float | None:
        return None  # the lost city is back in the final phase

    def partition_groups(self) -> list[set[str]]:
        return [{LOST_CITY}, {c for c, _ in CITIES if c != LOST_CITY} | {USERS_CITY}]

    # -- the broker's state, for the final gate and the report --------------------------
    def broker_state(self) -> BrokerMachine | None:
        """The broker state of the group's leader now (None: no leader up)."""
        for r in self.brokers:
            if self.rt.status(r) == "up":
                node = self.rt.node(r)  # type: ignore[attr-defined]
                if isinstance(node, BrokerReplica) and node.role == "leader":
                    return node.machine
        return None

    def drained(self) -> bool:
        """No half message waits for its verdict and every group consumed everything.
        Looked at once every GATE_POLL_MS: on a real backend each look copies the
        broker's state out of its process."""
        now_ms = self.rt.now_ms
        if now_ms - self._drained_at_ms >= GATE_POLL_MS:
            self._drained_at_ms = now_ms
            self._drained = self._look_drained()
        return self._drained

    def _look_drained(self) -> bool:
        if not _simulated(self.rt):
            return self._observed_drained()
        state = self.broker_state()
        if state is None or state.halves:
            return False
        return all(
            state.lag(group, topic) == 0 and state.lag(group, retry_topic(group)) == 0
            for group, topic in self.lanes()
        )

    def _observed_drained(self) -> bool:
        """Drained as the consumers see it (on a real backend the broker's state
        is in another process): each has read its queues to the end recently, and
        the broker's leader said lately that no half message awaits a verdict."""
        now_ms = self.rt.now_ms
        heard = False
        for members in self.consumers.values():
            for nid in members:
                up = self.rt.status(nid) == "up"
                node = self.rt.node(nid) if up else None  # type: ignore[attr-defined]
                if not isinstance(node, MessageConsumer):
                    return False
                if not node.caught_up(now_ms, fresh_ms=2 * GATE_POLL_MS):
                    return False
                if node.config.rebalance and now_ms - node.heard_ms <= 2 * GATE_POLL_MS:
                    if node.unresolved_halves != 0:
                        return False
                    heard = True
        return heard

    # --8<-- [start:message-life]
    def figures(self) -> dict[str, Any]:
        """Where the run's messages went, stage by stage (the message trace, summed):
        from the history (what producers and consumers saw) and the broker's state."""
        life: Counter[str] = Counter()
        for e in self.history:
            if e.type != "ok" or not isinstance(e.value, dict):
                continue
            by_check = e.value.get("by") == "check"
            name = {
                "send": "sent",
                "publish": "sent",
                "receive": "delivered",
                "apply": "applied",
                "settle": "settled",
                "check-max": "set_aside",
            }.get(e.f)
            if e.f in ("commit", "rollback"):
                name = ("committed" if e.f == "commit" else "rolled_back") + (
                    "_by_check" if by_check else ""
                )
            if name:
                life[name] += 1
        out: dict[str, Any] = {"message_life": dict(sorted(life.items()))}
        sample = self.sample_life()
        if sample is not None:
            out["message_trace"] = sample
        state = self.broker_state()
        if state is not None:
            topics = Counter(m.topic for m in state.log)
            out["broker"] = {
                "log_records": len(state.log),
                "half_unresolved": len(state.halves),
                "retried": sum(n for t, n in topics.items() if t.startswith("%RETRY%")),
                "dead_lettered": sum(n for t, n in topics.items() if t.startswith("%DLQ%")),
                "lag": {g: state.lag(g, t) for g, t in self.lanes()},
            }
        return out

    # --8<-- [end:message-life]

    # -- the final phase ---------------------------------------------------------------
    # --8<-- [start:mq-finish]
    def finish(self, at_ms: float) -> float:
        """Heal and restart at `at_ms`; read every balance once the broker has drained.

        Unlike chapters 1-4, the clients do not ask again about payments they
        got no answer for: bringing a payment and its event back together is
        the broker's check-back's job here, not the user's. The run lasts at
        least one check pass (RocketMQ's 30 s interval) past the final phase.
        """
        read_at_ms = at_ms + RECOVERY_MS

        def final_phase() -> None:
            self.note("final-phase", "heal, restart what is down; read once the broker drained")
            self.rt.net.heal()
            servers = [n for role, ids in self.roles.items() if role != "cell" for n in ids]
            down = {n for n in servers if self.rt.status(n) == "crashed"}
            self.restart(sorted(down | self.crashed))
            reader = self.plans[self.roles["client"][0]]
            reader.final_read_gate = self.drained
            reader.final_read_at_ms = read_at_ms

        self.rt.call_at(at_ms, final_phase)
        check_pass_ms = self.broker_config.transaction_check_interval_ms + 2_000.0
        if not _simulated(self.rt):
            # A real backend's runner does not wait past end_ms for the final
            # read (the simulator's does): room for the pass, the deliveries
            # after it, and one offset commit (5 s).
            check_pass_ms += 8_000.0
        self.end_ms = max(read_at_ms + FINAL_READ_WINDOW_MS, at_ms + check_pass_ms)
        return self.end_ms

    # --8<-- [end:mq-finish]

    # --8<-- [start:sample-life]
    def topic_lives(self) -> dict[str, Life] | None:
        """Every message's life as the broker's trace topic holds it (None: no broker
        state here, as on a real backend, where the broker is another process)."""
        state = self.broker_state()
        if state is None or not state.trace_topic:
            return None
        lives: dict[str, Life] = {}
        for e in state.trace_topic:
            lives.setdefault(e.msg_id, []).append((e.time_ms, e.node, e.step, dict(e.fields)))
        return lives

    def sample_life(self) -> dict[str, Any] | None:
        """One message's life from the message trace, for the report: the first sent of
        those whose life went furthest from the plain path (set aside, checked, dead-
        lettered, retried) and, among those, through the most kinds of step. Read
        back from the broker's trace topic; from the run's telemetry where the
        broker's state is out of reach."""
        lives = self.topic_lives() or self.lives
        if not lives:
            return None

        def interest(steps: Life) -> int:
            names = [step for _, _, step, _ in steps]
            rare = ("set-aside", "checked", "dead-lettered", "retried")
            score = sum(100 * (len(rare) - i) for i, r in enumerate(rare) if r in names)
            return score + len(set(names))  # then the fullest life

        ids = sorted(lives, key=lambda m: (-interest(lives[m]), min(s[0] for s in lives[m]), m))
        msg_id = ids[0]
        steps = [
            [round(t, 1), node, step, " ".join(f"{k}={v}" for k, v in sorted(fields.items()))]
            for t, node, step, fields in sorted(lives[msg_id], key=lambda s: s[0])
        ]
        return {"id": msg_id, "steps": steps, "traced_messages": len(lives)}

    # --8<-- [end:sample-life]

    def on_trace(self, event: Any) -> None:
        """Check passes become timeline notes; a half message set aside after its
        last check is recorded as the broker's report (f="check-max"); message
        trace steps are kept per message (`sample_life`)."""
        if event.kind == SPAN_EVENT:  # chapter 7's spans: into the history (isolation)
            value = {**event.fields, "node": event.node}
            self.history.append(
                Event("info", SPAN_PROCESS, "span", value, event.time_ms, len(self.history))
            )
        elif event.kind == TRACE:
            fields = {k: v for k, v in event.fields.items() if k not in ("id", "step")}
            life = self.lives.setdefault(str(event.fields["id"]), [])
            life.append((event.time_ms, event.node, str(event.fields["step"]), fields))
        elif event.kind == "mq.check-pass":
            n, aside = event.fields["checks"], event.fields["discarded"]
            self.note("check-back", f"{n} half messages asked about, {aside} set aside")
        elif event.kind == "mq.rebalance" and "took" in event.fields:
            live = ", ".join(event.fields["members"])
            self.note("rebalance", f"{event.node} takes {event.fields['took']} (live: {live})")
        elif event.kind == "mq.check-max":
            value = {"id": str(event.fields["msg_id"])}
            for kind in ("invoke", "ok"):
                self.record(
                    {
                        "type": kind,
                        "process": "broker",
                        "f": "check-max",
                        "value": value,
                        "time_ms": self.rt.now_ms,
                    }
                )


def _mutations(options: StageOptions) -> frozenset[str]:
    """Bug-zoo mutations planted in the broker (extra "mutations": "a,b")."""
    raw = options.extra.get("mutations", ())
    names = raw.split(",") if isinstance(raw, str) else list(raw)
    chosen = frozenset(n.strip() for n in names if n.strip())
    unknown = sorted(chosen - MQ_MUTATIONS.keys())
    if unknown:
        known = ", ".join(MQ_MUTATIONS)
        raise StageError(f"unknown mutation {', '.join(unknown)} (known: {known})")
    return chosen


class MqStage(Stage):
    id = "ch5"
    title = "The transactional message queue"
    aliases = ("mq",)
    variants = VARIANTS
    default_variant = "transactional"
    default_scale = DEFAULT_SCALE
    settings = {  # noqa: RUF012
        "load_test_share": Setting(
            "share of payments tagged as load test (chapter 7's lane)", float, low=0, high=1
        ),
        "leak": Setting("plant a node that drops the tag", choices=("producer", "consumer")),
        "orderly": Setting(
            "1: loyalty and notifications rebalance per key; 0: they do not",
            int,
            choices=("0", "1"),
        ),
        "mutations": Setting(
            f"bug-zoo mutations in the broker, comma-separated: {','.join(MQ_MUTATIONS)}"
        ),
    }
    scenarios = {  # noqa: RUF012
        "steady": SCENARIOS["steady"],
        "double11": SCENARIOS["double11"],
        "crash": Scenario(
            "crash",
            f"steady load; the whole city of {LOST_CITY} (a producer, consumers, a replica "
            "of each group) is lost at 40% of the run",
            SCENARIOS["crash"].apply,
        ),
        "partition": Scenario(
            "partition",
            f"steady load; {LOST_CITY} is cut off for 1 s",
            SCENARIOS["partition"].apply,
        ),
        "consumer-lag": Scenario(
            "consumer-lag",
            "steady load; every settlement consumer is paused for half the run, then catches up",
            lambda dep: _consumer_lag(dep),
        ),
    }
    expected = {  # noqa: RUF012
        ("naive-after", "crash"): {
            "settlement": expect(
                False,
                "Payments committed by the producer that died before sending their event are "
                "never settled: their escrow stays full.",
                always=False,
            ),
        },
        ("naive-before", "*"): {},
        ("no-dedup", "crash"): {
            "delivery": expect(
                False,
                "Consumers restarted after the crash get again what they had not committed; "
                "without dedup, each redelivery is a second effect.",
            ),
            "settlement": expect(False, "A redelivered event settles its payment twice."),
            "bank": expect(
                False, "A double settlement may drive an escrow account below zero.", False
            ),
        },
    }

    def expectations(self, variant: str, scenario: str) -> dict[str, Any]:
        out = super().expectations(variant, scenario)
        if variant == "naive-before":
            # Declined payments happen in every scenario (small wallets).
            out |= {
                "delivery": expect(
                    False, "A declined payment's event was already out: it is delivered."
                ),
                "settlement": expect(False, "Merchants are settled for declined payments."),
                "bank": expect(
                    False, "Settling a declined payment may drive an escrow below zero.", False
                ),
            }
        return out

    def validate(self, options: StageOptions) -> None:
        super().validate(options)
        _mutations(options)
        if not 0.0 <= _load_test_share(options) <= 1.0:
            raise StageError("load_test_share must be in [0, 1]")
        if options.extra.get("leak", "") not in LEAKS:
            raise StageError(f"leak must be one of {', '.join(repr(x) for x in LEAKS)}")
        if options.shards or options.cells:
            raise StageError(
                "chapter 5 has one ledger group and one broker group: no --shards/--cells"
            )

    def options(self, **overrides: Any) -> StageOptions:
        opts = super().options(**overrides)
        extra = {
            "users": USERS,
            "opening_cents": OPENING_CENTS,
            "merchants": MERCHANTS,
            **opts.extra,
        }
        return opts.with_(extra=extra)

    def _layout(self) -> dict[str, dict[str, list[str]]]:
        layout: dict[str, dict[str, list[str]]] = {}
        for city, short in CITIES:
            nodes = [f"led-{short}", f"brk-{short}"]
            if short != "sz":
                nodes.append(f"pay-{short}")
            for group, (_, homes) in CONSUMER_GROUPS.items():
                if short in homes:
                    nodes.append(f"{group}-{short}")
            if short == "hz":
                nodes.append("front")
            layout[city] = {short: nodes}
        layout[USERS_CITY] = {USERS_CELL: [f"client-{i + 1}" for i in range(CLIENTS)]}
        return layout

    def _lanes_layout(self, options: StageOptions) -> dict[str, dict[str, list[str]]]:
        """The layout, and with a load test the shadow consumer groups' members
        beside their production twins (`pt_settlement-hz`, ...)."""
        layout = self._layout()
        if _load_test_share(options) > 0:
            for city, short in CITIES:
                for group, (_, homes) in CONSUMER_GROUPS.items():
                    if short in homes:
                        layout[city][short].append(f"{shadow_name(group)}-{short}")
        return layout

    def topology(self, options: StageOptions) -> Topology:
        return Topology.build(self._lanes_layout(options))

    # --8<-- [start:mq-build]
    def build(self, rt: Runtime, options: StageOptions) -> Deployment:
        dep = MqDeployment(self, rt, options, Topology.build(self._lanes_layout(options)))
        shorts = [s for _, s in CITIES]
        dep.ledger = tuple(f"led-{s}" for s in shorts)
        dep.brokers = tuple(f"brk-{s}" for s in shorts)
        dep.producers = [f"pay-{s}" for s in shorts if s != "sz"]
        balances = dep.opening_balances()
        directory = dep.directory = _directory(dep, balances)
        _add_ledger(rt, dep, directory)
        _add_brokers(rt, dep)
        _add_producers(rt, dep, directory, options)
        _add_consumers(rt, dep, directory, options)
        _add_front(rt, dep, directory)
        dep.record_init(balances)

        def route(buyer: str, pid: str, rng: random.Random, router: CellRouter | None) -> NodeId:
            # A user's payments go to one payment service (the user's region):
            # a retry does not rescue a payment its producer dropped.
            return dep.producers[int(buyer[1:]) % len(dep.producers)]

        dep.add_clients(dep.topology.nodes_in(USERS_CELL), route, "front")
        _checks(dep)
        if dep.traced:
            from checks.isolation import check_isolation

            for name, check in list(dep.checks.items()):  # spans are isolation's only
                dep.checks[name] = functools.partial(_without_spans, check)
            dep.checks["isolation"] = check_isolation
        telemetry = getattr(rt, "telemetry", None)
        if telemetry is not None:
            telemetry.subscribe(dep.on_trace)
        return dep

    # --8<-- [end:mq-build]


# --8<-- [start:mq-build-steps]
def _directory(dep: MqDeployment, balances: dict[str, int]) -> Directory:
    """Both halves of the merchants' money live in the one ledger group. With a
    load test every account has a shadow twin, opened alike (chapter 7)."""
    opening = balances | ({shadow_account(a): b for a, b in balances.items()} if dep.traced else {})
    return Directory.build(even_buckets([PAY]), {PAY: dep.ledger, SETTLED: dep.ledger}, opening)


def _add_ledger(rt: Runtime, dep: MqDeployment, directory: Directory) -> None:
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


def _add_brokers(rt: Runtime, dep: MqDeployment) -> None:
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


def _add_producers(
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
        traced=dep.traced, trace_topic=True,
    )  # fmt: skip
    producer_kind, _ = _planted(str(options.extra.get("leak", "")))
    for nid in dep.producers:
        # extra leak=producer: the first producer drops the tag (chapter 7's leak).
        kind = producer_kind if nid == dep.producers[0] else TransactionalProducer
        rt.add_node(nid, functools.partial(kind, config=pcfg))
        dep.local_nodes.append(nid)
        dep.roles["shard"].append(nid)  # where payments are served and counted


def _add_consumers(
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


def _add_front(rt: Runtime, dep: MqDeployment, directory: Directory) -> None:
    """The final reads see production accounts only (a production read never
    returns shadow data); the shadow twins are the load test's."""
    front_directory = production_view(directory) if dep.traced else directory
    rt.add_node("front", lambda _nid: LedgerFront(FrontConfig(front_directory)))
    dep.roles["config"].append("front")


# --8<-- [end:mq-build-steps]


def _without_spans(check: Callable[[list[Event]], Verdict], history: list[Event]) -> Verdict:
    """`check` on the history production's checkers read: no spans."""
    return check([e for e in history if e.process != SPAN_PROCESS])


def _planted(leak: str) -> tuple[type[TransactionalProducer], type[MessageConsumer]]:
    """The producer and shadow-consumer classes for extra "leak" (chapter 7's planted
    leak on the queue hop: a node that drops the tag)."""
    if not leak:
        return TransactionalProducer, MessageConsumer
    from reference.tracing.leaky import TagDroppingConsumer, TagDroppingProducer

    if leak == "producer":
        return TagDroppingProducer, MessageConsumer
    return TransactionalProducer, TagDroppingConsumer


def _simulated(rt: Runtime) -> bool:
    from reference.runtime.sim import SimRuntime

    return isinstance(rt, SimRuntime)


def _timed(cfg: PaxosConfig, rt: Runtime) -> PaxosConfig:
    """The simulator's Paxos timings, or etcd-like ones on real processes.

    On a shared, loaded machine a real process is descheduled for 100 ms and
    more at times; with 150 ms elections the groups re-elected dozens of
    times a minute (as `d11 bench process` found for chapter 4's ledger).
    """
    if _simulated(rt):
        return cfg
    return dataclasses.replace(
        cfg, election_timeout_ms=1_000.0, heartbeat_interval_ms=100.0, lease_ms=300.0
    )


def _checks(dep: MqDeployment) -> None:
    from checks.bank import check_bank
    from checks.delivery import check_delivery
    from checks.halves import check_half_messages
    from checks.settlement import check_settlement

    total = sum(dep.initial.values())
    accounts = sorted(dep.initial)
    escrows = sorted(a for a in accounts if a.endswith(f"@{PAY}"))
    dep.checks["bank"] = lambda h: check_bank(h, total=total, accounts=accounts)
    groups = [g for g, _ in dep.lanes()]
    dep.checks["delivery"] = lambda h: check_delivery(h, groups=groups)
    dep.checks["half-messages"] = check_half_messages
    dep.checks["settlement"] = lambda h: check_settlement(h, escrow_accounts=escrows)
    dep.checks["broker-audit"] = lambda h: _broker_audit(dep)


def _broker_audit(dep: MqDeployment) -> Verdict:
    """The broker leader's own invariants (its state, not the history)."""
    state = dep.broker_state()
    if state is None:
        return Verdict("broker-audit", "unknown", "No broker leader at the end of the run.", {})
    problems = state.audit()
    details = {"log_records": len(state.log), "problems": len(problems)}
    if not problems:
        return Verdict(
            "broker-audit",
            True,
            "Every message is in its topic at most once, and only if committed.",
            details,
        )
    return Verdict(
        "broker-audit",
        False,
        f"{len(problems)} broken broker invariants. First: {problems[0]}.",
        details,
        [{"kind": "broker-invariant", "words": p} for p in problems[:20]],
    )


def _consumer_lag(dep: Deployment) -> None:
    """Steady load; every settlement consumer paused for half the run."""
    assert isinstance(dep, MqDeployment)
    start_ms = dep.rt.now_ms + WARMUP_MS
    end_ms = start_ms + dep.options.duration_s * 1000.0
    dep.start_traffic(start_ms, end_ms, "steady")
    pause_ms = start_ms + 0.2 * (end_ms - start_ms)
    resume_ms = start_ms + 0.7 * (end_ms - start_ms)
    members = dep.consumers["settlement"]

    def pause() -> None:
        for n in members:
            dep.rt.pause(n)  # type: ignore[attr-defined]
        dep.note("pause", f"{', '.join(members)}: the settlement group stalls")

    def resume() -> None:
        for n in members:
            dep.rt.resume(n)  # type: ignore[attr-defined]
        dep.note("resume", f"{', '.join(members)}: catching up")

    dep.rt.call_at(pause_ms, pause)
    dep.rt.call_at(resume_ms, resume)
    dep.finish(end_ms + DEADLINE_MS)


STAGE = MqStage()
