"""The capstone's one payment pipeline: chapter 4's cells pay through chapter 5's queue.

A payment enters as in chapter 4: a client sends it to the gateway of its
uid's cell (chapter 3's routing rules; forwarded if the client's rules are
stale). The gateway hands it to its cell's payment service, `pay-<cell>`,
which is chapter 5's transactional producer (`reference.mq.producer`):

1. the half message is stored on the broker (`payments` topic, invisible);
2. the local transaction is the payment's transfer in the payer's cell's
   ledger group (chapter 4's Multi-Paxos group across three cities), reached
   through `caller.ledger_groups`: the directory's placement, the uid bucket
   of the boot routing rules (`even_buckets`), as the gateways route;
3. COMMIT or ROLLBACK one-way; a lost word is settled by the broker's
   check-back, which fences the transfer id in that same group.

Settlement consumers then move the payment from the merchant's escrow in
that cell (`m7@hz-1`, where chapter 4 already lands a payment) to its
settled twin beside it (`m7@hz-1/settled`), in the same group.

Cross-cell payments: there are none, by chapter 4's design. A merchant has
a sub-account in every cell and a payment lands in the payer's cell's one
(`PaxosDeployment.payment_for`), so a payment is one transfer in one group
and its settlement another in the same group: no distributed transaction
anywhere (chapter 2's TCC is what a payment between two cells' ledgers
would need; the pipeline does not). A cell that took over a failed cell's
uid range (failover, or the elastic cell) routes the payment to the payer's
own group, wherever its producer runs: data never moves between groups.

Chapter 7's full-link load test runs through the same pipeline
(`load_test_share` of the cells' payments, 0.1 by default): a tagged
payment (`mark=T` in its trace context, every payment traced) enters the
same gateways and payment services, and is served from shadow data at each
data layer: its transfer moves the shadow twins of its accounts (`pt_u17`
-> `pt_m7@hz-1`, opened at boot beside their production twins in the same
group), its event goes to the shadow topic (`pt_payments`) with its trace as
a message property, and shadow consumer groups (`pt_settlement`, ...)
settle it between shadow accounts. Every hop records a span; chapter 5's
`isolation` checks the night's spans (fail closed), and the production
checkers count a tagged payment as shadow money: no production balance
moves, so nothing is lost or created (`ledger_view`, `check_pipeline`).
Extra `leak` plants a node that drops the tag (`gateway`, `producer` or
`consumer`: `reference.tracing.leaky`), which `isolation` must catch.

The two parts keep their names and their checkers. Chapter 4's read the
clients' history with each settlement as the transfer it is (escrow ->
settled; `ledger_view`); chapter 5's read the producers' and consumers'
history with the clients' reads (`queue_view`), so `settlement` holds
every committed cells payment against exactly one settlement effect. The
final read waits for the broker to drain (`PipelineCells.finish`).
"""

from __future__ import annotations

import dataclasses
import functools
import random
from collections import Counter
from collections.abc import Callable

from chapters.ch4_paxos.stage import PaxosDeployment
from chapters.ch5_mq.build import _planted, add_brokers
from chapters.ch5_mq.checkers import _broker_audit, without_spans
from chapters.ch5_mq.deployment import MqDeployment, simulated
from chapters.ch5_mq.plan import (
    CODE_SETTLEMENT,
    CONSUMER_GROUPS,
    NOTIFY_FAIL_RATIO,
    PRODUCER_GROUP,
    SPAN_PROCESS,
    TOPIC,
    load_test_share_of,
)
from chapters.stage import Runtime, Stage, StageOptions
from checks.history import Event, pair_operations
from checks.isolation import LOAD_TEST_TRANSFER
from checks.transfers.history import APPLIED
from checks.verdict import Verdict
from reference.clients import Payment
from reference.ledger import Transfer
from reference.ledger.directory import CODE_PAYMENT, LEDGER_CNY, Directory, transfer_id
from reference.ledger.records import AMOUNT_MAX_CENTS
from reference.mq import (
    ConsumerConfig,
    MessageConsumer,
    Payload,
    ProducerConfig,
    StoredMessage,
    TransactionalProducer,
)
from reference.mq.caller import ledger_groups
from reference.net.topology import Topology
from reference.node import NodeId
from reference.payment.accounts import settled_account
from reference.sim.rng import stream
from reference.telemetry import TraceEvent
from reference.tracing import (
    SPAN_EVENT,
    in_shadow_lane,
    is_shadow,
    production_account,
    shadow_account,
    shadow_name,
)

__all__ = [
    "PipelineCells",
    "PipelineQueue",
    "build_queue",
    "check_pipeline",
    "ledger_view",
    "producer_of",
    "queue_view",
]

PRODUCER_PREFIX = "pay"
LOAD_TEST_SHARE = 0.1  # of the cells' payments: tagged, through the pipeline's shadow lane
LEAKS = ("gateway", "producer", "consumer")  # extra "leak": the hop that drops the tag
QUEUES = 16  # the payments topic's queues (chapter 5's own: RocketMQ's default 4)
# Settlements of one queue in hand at once (`ConsumerConfig.consume_window`;
# chapter 5's own: 1). One at a time, a queue settled ~20 a second (a cross-city
# ledger commit each, ~50 ms): the topic's 16 queues ~320/s, and the rehearsal's
# 2x peak brings ~640/s (its settlement lane fell behind by ~24,000 in 60 s).
SETTLE_WINDOW = 16


def producer_of(cell: str) -> NodeId:
    """The payment service of `cell`: where its gateway hands every payment."""
    return f"{PRODUCER_PREFIX}-{cell}"


class PipelineCells(PaxosDeployment):
    """Chapter 4's deployment whose merchants are settled: every per-cell escrow has
    its settled twin, and the final read waits for the queue to drain."""

    def __init__(self, stage: Stage, rt: Runtime, options: StageOptions, topology: Topology):
        super().__init__(stage, rt, options, topology)
        self.queue: PipelineQueue | None = None  # set when the queue part is built
        # Chapter 7 through the pipeline: every payment traced, a share tagged.
        self.load_test_share = load_test_share_of(options)
        self.traced = self.load_test_share > 0
        self._tagging = stream(options.seed, "load-test/tagging")

    def payment_for(
        self, rng: random.Random, time_ms: float, uid: int, mid: int, amount_cents: int
    ) -> Payment:
        p = super().payment_for(rng, time_ms, uid, mid, amount_cents)
        if self.traced and self._tagging.random() < self.load_test_share:
            return dataclasses.replace(p, load_test=True)
        return p

    def merchant_balances(self) -> dict[str, int]:
        escrows = super().merchant_balances()
        return escrows | {settled_account(a): 0 for a in escrows}

    def escrow_accounts(self) -> list[str]:
        return sorted(a for a in self.initial if a.startswith("m") and "/" not in a)

    def finish(self, at_ms: float) -> float:
        end_ms = super().finish(at_ms)

        def also_drained() -> None:
            # After chapter 4's final phase set its gate (every client reconciled):
            # the balances are read once every event has been consumed too, so each
            # escrow is back to zero exactly when every payment was settled once.
            reader = self.plans[self.roles["client"][0]]
            reconciled = reader.final_read_gate
            queue = self.queue
            assert reconciled is not None and queue is not None
            reader.final_read_gate = lambda: reconciled() and queue.drained()

        self.rt.call_at(at_ms + 1.0, also_drained)
        return end_ms


class PipelineQueue(MqDeployment):
    """Chapter 5's broker, payment services and consumer groups on the cells' ledger:
    no ledger, no front and no clients of its own (the cells part has them)."""

    def __init__(self, stage: Stage, rt: Runtime, options: StageOptions, topology: Topology):
        super().__init__(stage, rt, options, topology)
        self.cells: PipelineCells | None = None

    def finish(self, at_ms: float) -> float:
        """Restart what is down at `at_ms`; the run lasts one check pass past it
        (RocketMQ's 30 s), which settles every half message a lost producer left.
        The cells part's final read is this pipeline's."""

        def final_phase() -> None:
            self.note("final-phase", "restart what is down; the cells read once drained")
            servers = [n for role, ids in self.roles.items() if role != "cell" for n in ids]
            down = {n for n in servers if self.rt.status(n) == "crashed"}
            self.restart(sorted(down | self.crashed))

        self.rt.call_at(at_ms, final_phase)
        check_pass_ms = self.broker_config.transaction_check_interval_ms + 2_000.0
        if not simulated(self.rt):
            check_pass_ms += 8_000.0  # as chapter 5's own (MqDeployment.finish)
        self.end_ms = at_ms + check_pass_ms
        return self.end_ms

    def final_reads_done(self) -> bool:
        return self.cells is not None and self.cells.final_reads_done()


# -- building the queue on the cells' ledger -----------------------------------------------
def payment_transfer(directory: Directory, p: Payload, amount_cents: int = 0) -> Transfer:
    """The payment's transfer, payer -> the merchant's escrow in the payer's cell;
    with `amount_cents` the producer's fence (same id, an amount no wallet holds).
    The same transfer the ledger front makes (id and code): a client's lookup and
    the producer's check-back fence the same id."""
    ids = directory.ids
    amount = amount_cents or p.amount_cents
    debit, credit = ids[p.buyer], ids[p.merchant]
    return Transfer(transfer_id(p.payment_id), debit, credit, amount, LEDGER_CNY, CODE_PAYMENT)


def settlement_transfer(directory: Directory, m: StoredMessage, delivery: int) -> Transfer:
    """Escrow -> settled, in the escrow's cell's group; its id fixed by the message."""
    assert delivery == 0, "the pipeline's consumers are idempotent"
    return Transfer(
        id=transfer_id(f"settle:{m.msg_id}"),
        debit_account_id=directory.ids[m.body.merchant],
        credit_account_id=directory.ids[settled_twin(m.body.merchant)],
        amount_cents=m.body.amount_cents,
        ledger=LEDGER_CNY,
        code=CODE_SETTLEMENT,
    )


def settled_twin(escrow: str) -> str:
    """The settled twin of an escrow; a shadow escrow's is the shadow twin of its
    production twin's (`pt_m7@hz-1` -> `pt_m7@hz-1/settled`)."""
    if is_shadow(escrow):
        return shadow_account(settled_account(production_account(escrow)))
    return settled_account(escrow)


def with_shadow_twins(balances: dict[str, int]) -> dict[str, int]:
    """Every account and its shadow twin, opened alike (the load test's data)."""
    return balances | {shadow_account(a): b for a, b in balances.items()}


# --8<-- [start:pipeline-queue]
def build_queue(rt: Runtime, dep: PipelineQueue, cells: PipelineCells) -> None:
    """The broker group, one payment service per cell, and the consumer groups, all
    reaching every cell's ledger group through one routed caller."""
    directory = cells.directory
    assert directory is not None
    dep.cells, cells.queue = cells, dep
    dep.directory = directory
    ledger = ledger_groups(directory)  # each transfer to its payer's (escrow's) group
    # Every cells payment is an event here, ten times chapter 5's own traffic at
    # the peak: a settlement is a cross-city ledger commit (~60 ms), so the topic
    # gets the queues, and each queue a window of settlements in hand at once
    # (`SETTLE_WINDOW`), to drain a peak's backlog in seconds.
    dep.broker_config = dataclasses.replace(dep.broker_config, queues_per_topic=QUEUES)
    add_brokers(rt, dep)
    # "naive-after": the capstone's planted bug (transfer, then a fire-and-forget event).
    mode = str(dep.options.extra.get("producer_mode", "transactional"))
    # extra mq_trace_events=False: the message trace steps go to the broker's trace
    # topic only, not also to telemetry (the rehearsal's runs: no one watches them).
    events = bool(dep.options.extra.get("mq_trace_events", True))
    pcfg = ProducerConfig(
        PRODUCER_GROUP, TOPIC, mode, dep.brokers, ledger,
        functools.partial(payment_transfer, directory),
        functools.partial(payment_transfer, directory, amount_cents=AMOUNT_MAX_CENTS),
        dep.record, traced=dep.traced, trace_topic=True, trace_events=events,
    )  # fmt: skip
    # extra leak=producer|consumer: the first producer, or the shadow settlement
    # group's consumers, drop the tag (chapter 7's planted leak, on the pipeline).
    producer_kind, leaky_consumer = _planted(leak_of(dep.options))
    for nid in dep.producers:
        kind = producer_kind if nid == dep.producers[0] else TransactionalProducer
        rt.add_node(nid, functools.partial(kind, config=pcfg))
        dep.local_nodes.append(nid)
        dep.roles["shard"].append(nid)
    queues = dep.broker_config.queues_per_topic
    for group, topic, twin in lanes_of(dep):  # production's, then the shadow lane's
        effect, homes = CONSUMER_GROUPS[twin]
        members = dep.consumers[group] = [f"{group}-{h}" for h in homes]
        settles = effect == "settlement"
        consumer = leaky_consumer if settles and group != twin else MessageConsumer
        for i, nid in enumerate(members):
            ccfg = ConsumerConfig(
                group=group, topic=topic, effect=effect, broker=dep.brokers, record=dep.record,
                queues=tuple(q for q in range(queues) if q % len(members) == i),
                topic_queues=queues, rebalance=True, orderly=not settles,
                ledger=ledger if settles else (),
                settlement=functools.partial(settlement_transfer, directory) if settles else None,
                fail_ratio=NOTIFY_FAIL_RATIO if effect == "notification" else 0.0,
                traced=dep.traced, trace_topic=True, trace_events=events,
                consume_window=SETTLE_WINDOW if settles else 1,
            )  # fmt: skip
            rt.add_node(nid, functools.partial(consumer, config=ccfg))
            dep.local_nodes.append(nid)
            dep.roles["shard"].append(nid)
    dep.initial = cells.initial
    _add_checks(dep, cells)


# --8<-- [end:pipeline-queue]


def leak_of(options: StageOptions) -> str:
    """The planted leak (extra "leak"): "" none, or the hop that drops the tag."""
    leak = str(options.extra.get("leak", ""))
    assert not leak or leak in LEAKS, leak  # the capstone's `validate` says it in words
    return leak


def lanes_of(dep: MqDeployment) -> list[tuple[str, str, str]]:
    """(consumer group, its topic, its production twin): production's groups on the
    payments topic, and with a load test their shadow twins on the shadow topic."""
    lanes = [(g, TOPIC, g) for g in CONSUMER_GROUPS]
    if dep.traced:
        lanes += [(shadow_name(g), shadow_name(TOPIC), g) for g in CONSUMER_GROUPS]
    return lanes


def consumer_nodes(traced: bool) -> dict[str, list[str]]:
    """Each city's consumer nodes, by city short name (`settlement-hz`, and with a load
    test its shadow twin `pt_settlement-hz`)."""
    out: dict[str, list[str]] = {}
    groups = list(CONSUMER_GROUPS) + ([shadow_name(g) for g in CONSUMER_GROUPS] if traced else [])
    for group in groups:
        _, homes = CONSUMER_GROUPS[production_account(group)]
        for h in homes:
            out.setdefault(h, []).append(f"{group}-{h}")
    return out


def record_spans(rt: Runtime, dep: PipelineQueue, nodes: set[str]) -> None:
    """The pipeline's spans (its gateways', payment services' and consumers') into the
    queue part's history, where chapter 5's `isolation` reads them; other parts'
    spans (chapter 7's own system's) are theirs."""
    telemetry = getattr(rt, "telemetry", None)
    if telemetry is None or not dep.traced:
        return

    def on_span(event: TraceEvent) -> None:
        if event.kind == SPAN_EVENT and event.node in nodes:
            value = {**event.fields, "node": event.node}
            dep.history.append(
                Event("info", SPAN_PROCESS, "span", value, event.time_ms, len(dep.history))
            )

    telemetry.subscribe(on_span)


def _add_checks(dep: PipelineQueue, cells: PipelineCells) -> None:
    """Chapter 5's checkers, on the pipeline: the escrows are the cells' merchants'."""
    from checks.bank import check_bank
    from checks.delivery import check_delivery
    from checks.halves import check_half_messages
    from checks.settlement import check_settlement

    total = sum(cells.initial.values())
    accounts = sorted(cells.initial)
    escrows = cells.escrow_accounts()
    groups = [g for g, _ in dep.lanes()]
    dep.checks["bank"] = lambda h: check_bank(h, total=total, accounts=accounts)
    dep.checks["delivery"] = lambda h: check_delivery(h, groups=groups)
    dep.checks["half-messages"] = check_half_messages
    dep.checks["settlement"] = lambda h: check_settlement(h, escrow_accounts=escrows)
    dep.checks["broker-audit"] = lambda h: _broker_audit(dep)
    if dep.traced:  # chapter 7 through the pipeline: spans are isolation's only
        from checks.isolation import check_isolation

        for name, check in list(dep.checks.items()):
            dep.checks[name] = functools.partial(without_spans, check)
        dep.checks["isolation"] = check_isolation


# -- what each part's checkers read of the other's events -----------------------------------
def ledger_view(e: Event) -> Event | None:
    """A queue event as chapter 4's checkers see it: a settlement is a transfer in
    the ledger (escrow -> settled, its id the message's), everything else is not
    theirs. An answer `exists` is the same transfer applied by an earlier delivery."""
    if e.f != "settle" or not isinstance(e.value, dict):
        return None
    if is_shadow(str(e.value["merchant"])):
        return None  # a load-test settlement moves shadow money: isolation's, not the ledger's
    value = {
        "id": f"settle:{e.value['id']}",
        "from": e.value["merchant"],
        "to": settled_account(str(e.value["merchant"])),
        "amount_cents": e.value["amount"],
    }
    kind = e.type
    if kind == "ok" and e.value.get("result") not in ("ok", "exists"):
        kind = "fail"  # the ledger refused it: not applied
    # (Built field by field, not by `dataclasses.replace`: a 60 s 2x level views
    # 170,000 settlements so.)
    return Event(kind, e.process, "transfer", value, e.time_ms, e.index, e.extra)


def queue_view(e: Event) -> Event | None:
    """A cells event as chapter 5's checkers see it: the balances read (the final
    read holds every escrow) and the opening balances; not the clients' payments,
    which the producers' own events stand for, except the load-test ones: which
    payments were tagged is what `isolation` holds every span against."""
    return e if e.f in ("read", "init", LOAD_TEST_TRANSFER) else None


View = Callable[[Event], Event | None]
VIEWS: dict[str, tuple[str, View]] = {"cells": ("mq", ledger_view), "mq": ("cells", queue_view)}


# --8<-- [start:pipeline-check]
def check_pipeline(history: list[Event]) -> Verdict:
    """End to end, across the two parts: every payment a cells client saw paid (or
    its lookup found applied) was settled, once; nothing else was settled.

    From the clients' side (`transfer` ok/fail, `lookup-transfer`) against the
    settlement consumers' (`settle`, its ledger answer): the question chapter 5's
    `settlement` asks of the producers' commits, asked of what the users saw. A
    payment the user never learned the fate of (no answer, no lookup) may go
    either way, but not twice. (A payment one attempt saw declined and another
    paid is the ledger checker's to judge: paid, here.) Load-test payments
    (`load-test:transfer`) are held alike, in their own lane: paid in shadow
    money, settled by the shadow groups; which lane each hop kept is
    `isolation`'s question."""
    events = [e for e in history if e.extra.get("part") in ("cells", "mq")]
    only = ("transfer", LOAD_TEST_TRANSFER, "lookup-transfer", "settle")
    ops = pair_operations(events, only=only)
    paid: set[str] = set()
    declined: set[str] = set()  # the ledger declined it, or a lookup fenced it
    refused: set[str] = set()  # an attempt refused on its way (the door, a handover)
    unanswered: set[str] = set()  # an attempt the user got no answer for
    tagged: set[str] = set()  # load-test payments
    settled: Counter[str] = Counter()  # payment -> settlements applied anew ("ok")
    answered: set[str] = set()  # payments with any applied settlement (ok or exists)
    for op in ops:
        done = op.completion
        if op.f == LOAD_TEST_TRANSFER:
            tagged.add(str(op.invoke.value["id"]))
        paying = op.f in ("transfer", LOAD_TEST_TRANSFER)
        if paying and (done is None or op.type == "info"):
            unanswered.add(str(op.invoke.value["id"]))
            continue
        if done is None or (op.type != "ok" and not (paying and op.type == "fail")):
            continue
        if paying and op.type == "ok":
            paid.add(str(op.invoke.value["id"]))
        elif paying:
            ledger_said = done.extra.get("error") == "declined"
            (declined if ledger_said else refused).add(str(op.invoke.value["id"]))
        elif op.f == "lookup-transfer":
            for pid, found in done.value.items():
                (paid if found == APPLIED else declined).add(str(pid))
        elif done.value.get("result") in ("ok", "exists"):
            pid = str(done.value["payment"])
            answered.add(pid)
            settled[pid] += done.value["result"] == "ok"
    problems: list[dict[str, str | int]] = []
    for pid in sorted(paid - answered):
        problems.append({"kind": "paid-not-settled", "payment": pid})
    for pid, times in sorted(settled.items()):
        if times > 1:
            problems.append({"kind": "settled-twice", "payment": pid, "times": times})
    # Settled though the user saw it declined (or a lookup found it absent). One
    # neither answered nor looked up may have been paid: the ledger holds it. A
    # refusal on the way says only that that attempt did nothing: after an
    # unanswered one (a final-phase retry refused at the door) the payment is
    # still unknown; a load-test payment is never looked up to settle it.
    declined |= refused - unanswered
    for pid in sorted((answered - paid) & declined):
        problems.append({"kind": "settled-not-paid", "payment": pid})
    counts = dict(Counter(str(p["kind"]) for p in problems))
    details = {
        "paid": len(paid - tagged),
        "settled": len(answered - tagged),
        "load_test_paid": len(paid & tagged),
        "load_test_settled": len(answered & tagged),
        "problems": counts,
    }
    if not problems:
        shadow = (
            f" Of the load test's, {len(paid & tagged)} paid in shadow money, each settled "
            "once by the shadow groups."
            if tagged
            else ""
        )
        return Verdict(
            "pipeline", True,
            f"Every one of the {details['paid']} payments the cells' users saw paid was "
            f"settled exactly once through the queue; {details['settled']} settled in all, "
            f"none unpaid.{shadow}",
            details,
        )  # fmt: skip
    kinds = ", ".join(f"{k} x{n}" for k, n in counts.items())
    return Verdict(
        "pipeline", False,
        f"Payments and settlements disagree ({kinds}). First: {problems[0]}.",
        details, problems[:20],
    )  # fmt: skip


# --8<-- [end:pipeline-check]


def pipeline_figures(queue: PipelineQueue) -> dict[str, object]:
    """The pipeline in numbers, from the queue's side, each a count of distinct
    message ids (a message can be recorded committed more than once: by its
    producer, then by its answer to a check-back, or by a producer's retry).

    payments: messages the payment services took and resolved, either way
    (production's); committed and rolled_back: by the message's first outcome
    recorded (its local transaction: the producer's transfer, or the check-back's
    fence finding it); of those, `*_by_check` were resolved at the broker by its
    check-back. The producer's word to the broker (EndTransaction) is one-way and
    not recorded, and the broker checks back only a half message still unresolved
    after its transaction timeout (reference/mq/machine.py): a check-back's answer
    is what resolved it there, even when its producer had recorded the commit (its
    word was lost, as with a broker in the lost city; or, a race, still on its way);
    settled: messages whose payment was settled. Production's at the top level,
    the load test's (`load_test`, sent to the shadow topic) apart."""
    tagged = {
        str(e.value["id"])
        for e in queue.history
        if e.type == "invoke" and e.f in ("send", "publish") and isinstance(e.value, dict)
        and in_shadow_lane(str(e.value.get("topic", "")))
    }  # fmt: skip
    took: set[str] = set()
    outcome: dict[str, str] = {}  # id -> its first outcome recorded: committed, rolled_back
    by_check: set[str] = set()
    settled: set[str] = set()
    for e in queue.history:
        if e.type == "invoke" and e.f in ("commit", "rollback"):
            took.add(str(e.value["id"]))
        elif e.type == "ok" and e.f in ("commit", "rollback"):
            mid = str(e.value.get("id"))
            outcome.setdefault(mid, "committed" if e.f == "commit" else "rolled_back")
            if isinstance(e.value, dict) and e.value.get("by") == "check":
                by_check.add(mid)
        elif e.type == "ok" and e.f == "settle" and e.value.get("result") in ("ok", "exists"):
            settled.add(str(e.value["payment"]))

    def count(ids: set[str]) -> dict[str, int]:
        fates = Counter(outcome[i] + "_by_check" * (i in by_check) for i in ids if i in outcome)
        return {
            "committed": fates["committed"] + fates["committed_by_check"],
            "committed_by_check": fates["committed_by_check"],
            "rolled_back": fates["rolled_back"] + fates["rolled_back_by_check"],
            "rolled_back_by_check": fates["rolled_back_by_check"],
        }

    production = took - tagged
    out: dict[str, object] = {"payments": len(production), **count(production)}
    out["settled"] = len(settled - tagged)
    if tagged:
        shadow = took & tagged
        out["load_test"] = {
            "payments": len(shadow),
            "committed": count(shadow)["committed"],
            "settled": len(settled & tagged),
        }
    return out
