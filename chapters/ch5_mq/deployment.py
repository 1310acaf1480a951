"""Chapter 5 on a runtime: the deployment, its final phase, and where its messages went.

`MqDeployment` is what `MqStage.build` (`build.py`) fills: the ledger
group, the broker group, the payment services (producers) and the consumer
groups. It decides when the broker has drained (the final read's gate),
runs the final phase (`finish`: heal, restart, read once drained), and sums
the message trace into the report's figures (`figures`, `sample_life`).
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from typing import Any

from chapters.ch5_mq.lag import LagWatch, Stall, backlog_by_group
from chapters.ch5_mq.plan import (
    CITIES,
    CONSUMER_GROUPS,
    GATE_POLL_MS,
    GROUP_CAPACITY_TPS,
    LOST_CITY,
    PAY,
    SETTLED,
    SPAN_PROCESS,
    TOPIC,
    USERS_CITY,
    broker_mutations,
    load_test_share_of,
)
from chapters.common import FINAL_READ_WINDOW_MS, RECOVERY_MS, PaymentDeployment
from chapters.stage import Runtime, Stage, StageOptions
from checks.history import Event
from reference.clients import Payment
from reference.ledger.directory import Directory
from reference.mq import BrokerConfig, BrokerReplica, MessageConsumer
from reference.mq.machine import SCHEDULE_TOPIC, BrokerMachine, retry_topic
from reference.mq.trace import TRACE
from reference.net.topology import Topology
from reference.node import NodeId
from reference.payment import merchant_account, user_account
from reference.sim.rng import stream
from reference.tracing import SPAN_EVENT, shadow_name

# A message's life in the message trace: (time, node, step, what the step knows).
Life = list[tuple[float, str, str, dict[str, object]]]


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
        # The consumer-lag scenario's stalled group, and its broker-side lag samples.
        self.stall: Stall | None = None
        self.lag_watch: LagWatch | None = None
        extra = options.extra
        # Chapter 7 on these queues (extra "load_test_share"): a share of the payments
        # is load-test traffic, traced and tagged; its events take the shadow lane.
        self.load_test_share = load_test_share_of(options)
        self.traced = self.load_test_share > 0
        self._tagging = stream(options.seed, "load-test/tagging")
        # RocketMQ's defaults unless a run asks otherwise (tests shorten the check window).
        self.broker_config = BrokerConfig(
            transaction_check_interval_ms=int(extra.get("check_interval_ms", 30_000)),
            transaction_check_max=int(extra.get("check_max", 15)),
            mutations=broker_mutations(options),
        )

    def capacity_tps(self) -> float:
        return GROUP_CAPACITY_TPS

    # The report's load table: the nodes that count "txns", and what they count.
    # The ledger's and the broker's replicas serve through their Paxos groups.
    load_what = ("node", "payments a producer served, messages a consumer handled")

    def load_nodes(self) -> list[NodeId]:
        return [*self.producers, *(n for members in self.consumers.values() for n in members)]

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

    # --8<-- [start:pay-back]
    def pays_back(self, account: str) -> bool:
        """Rolling traffic (a live session): merchants pay users back out of their
        settled accounts, the money settlement moved there (the escrow's is not
        theirs until settled). A payout is a ledger transfer with no event
        (`ProducerConfig.payout`), sent to a payment service like a payment."""
        return account.endswith(f"@{SETTLED}") and account in self.initial

    def takings(self, since_ms: float) -> dict[str, int]:
        """What the clients' transfers moved (payments, payouts), and what settlement
        moved from escrow to settled (each settlement once: the ledger's `ok`; an
        `exists` moved nothing), since `since_ms`."""
        net = super().takings(since_ms)
        for e in reversed(self.history):  # newest first, as the base reads it
            if e.time_ms < since_ms:
                break
            value = e.value
            if e.type != "ok" or e.f != "settle" or not isinstance(value, dict):
                continue
            escrow = str(value.get("merchant"))
            settled = escrow.removesuffix(f"@{PAY}") + f"@{SETTLED}"
            # Accounts this deployment opened only: the capstone's cells settle
            # into accounts of their own (m1@sz-1@settled), which its ch5 part
            # neither holds nor pays back from.
            if value.get("result") == "ok" and escrow in self.initial and settled in self.initial:
                cents = int(value["amount"])
                net[escrow] = net.get(escrow, 0) - cents
                net[settled] = net.get(settled, 0) + cents
        return net

    # --8<-- [end:pay-back]

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
        """The broker state of the group's leader now (None: no leader up). Of two
        replicas that both think they lead (one cut off from the rest, not told yet),
        the one with the higher ballot: the other can commit nothing more, and its
        state froze at the cut (the TUI's queue panel showed it for a whole cut)."""
        leader = self._broker_leader()
        return None if leader is None else leader.machine

    def _broker_leader(self) -> BrokerReplica | None:
        leaders = []
        for r in self.brokers:
            if self.rt.status(r) == "up":
                node = self.rt.node(r)  # type: ignore[attr-defined]
                if isinstance(node, BrokerReplica) and node.role == "leader":
                    leaders.append(node)
        return max(leaders, key=lambda node: node.ballot) if leaders else None

    def drained(self) -> bool:
        """No half message waits for its verdict and every group consumed everything
        due: a message sent back waits out its retry delay (10 s, then 30 s, 1 min:
        RocketMQ's levels) in flight, and the final read does not wait for it (a
        notification that failed three times in a row held the capstone's final read
        past its grace, `d11 test double11 --nemesis kill` seed 6). The delivery
        checker judges such a message in flight too (its `send-back` names when it
        is due). Looked at once every GATE_POLL_MS: on a real backend each look copies the
        broker's state out of its process."""
        now_ms = self.rt.now_ms
        if now_ms - self._drained_at_ms >= GATE_POLL_MS:
            self._drained_at_ms = now_ms
            self._drained = self._look_drained()
        return self._drained

    def _look_drained(self) -> bool:
        if not simulated(self.rt):
            return self._observed_drained()
        state = self.broker_state()
        if state is None or state.halves:
            return False
        now_ms = self.rt.now_ms
        return all(
            state.lag(group, topic) == 0 and _due_retries(state, group, now_ms) == 0
            for group, topic in self.lanes()
        )

    def _observed_drained(self) -> bool:
        """Drained as the consumers see it (on a real backend the broker's state
        is in another process): each has read its queues to the end recently (a
        retry queue up to a message still in its delay: `MessageConsumer.caught_up`,
        as the simulator's gate skips retries not due), and the broker's leader
        said lately that no half message awaits a verdict, and said so before
        those reads were sent: a check-back's COMMIT puts its message in the
        queues as it resolves the half, so a read sent before it missed that
        message (on Docker, seed 3 under partition-one-way,partition-bridge,kill:
        30 messages committed by a check 70 ms before the history ended, read
        by loyalty and notification, and settlement's reads from before the
        check counted as its end: "lost")."""
        now_ms = self.rt.now_ms
        members = []
        for nids in self.consumers.values():
            for nid in nids:
                up = self.rt.status(nid) == "up"
                node = self.rt.node(nid) if up else None  # type: ignore[attr-defined]
                if not isinstance(node, MessageConsumer):
                    return False
                members.append(node)
        heard = [
            m for m in members if m.config.rebalance and now_ms - m.heard_ms <= 2 * GATE_POLL_MS
        ]
        if not heard or any(m.unresolved_halves != 0 for m in heard):
            return False
        no_halves_since_ms = max(m.no_halves_since_ms for m in heard)
        return all(
            m.caught_up(now_ms, fresh_ms=2 * GATE_POLL_MS, asked_after_ms=no_halves_since_ms)
            for m in members
        )

    # --8<-- [start:message-life]
    def figures(self) -> dict[str, Any]:
        """Where the run's messages went, stage by stage (the message trace, summed):
        from the history (what producers and consumers saw) and the broker's state."""
        out: dict[str, Any] = {"message_life": message_life(self.history)}
        # The "shard" role holds the producers and consumers (the nodes that serve and
        # count, `load_nodes`): chapter 5 has no shards, one ledger and one broker group.
        out["shards"] = 0
        resolution = self.final_read_resolution()
        if isinstance(resolution, dict):
            out["final_read_resolution"] = resolution
        else:
            out["final_read_unresolved"] = resolution
        sample = self.sample_life()
        if sample is not None:
            out["message_trace"] = sample
        state = self.broker_state()
        if state is not None:
            topics = Counter(m.topic for m in state.log)
            out["broker"] = {
                "log_records": len(state.log),
                "half_unresolved": len(state.halves),
                "retried": topics[SCHEDULE_TOPIC],  # sent back: each waited there
                "dead_lettered": sum(n for t, n in topics.items() if t.startswith("%DLQ%")),
                "lag": {g: state.lag(g, t) for g, t in self.lanes()},
            }
        lag = self.lag_figures()
        if lag is not None:
            out["lag"] = lag
        return out

    # --8<-- [end:message-life]

    def watch_lag(self, stall: Stall) -> None:
        """Measure the lag of every group around `stall` (chapters/ch5_mq/lag.py)."""
        self.stall = stall
        self.lag_watch = LagWatch(self.lanes(), stall.resumed_at_ms)

    def lag_figures(self) -> dict[str, object] | None:
        """The stall, and per group its backlog (message trace) and its committed
        lag (the broker's state, sampled: None where it is out of reach)."""
        stall, watch = self.stall, self.lag_watch
        if stall is None or watch is None:
            return None
        groups = [g for g, _ in self.lanes()]
        by_group = backlog_by_group(self.lives, groups, stall)
        if watch.samples:
            for g in groups:
                by_group[g] |= watch.figures(g)
        return {
            "stall": dataclasses.asdict(stall),
            "groups": by_group,
            "committed_lag_samples": watch.samples,
        }

    def _sample_lag(self, node: str) -> None:
        """A broker replica learned a slot: if it leads, read its lags (no event)."""
        assert self.lag_watch is not None
        leader = self._broker_leader()  # of two, the higher ballot's (`broker_state`)
        if leader is not None and leader.node_id == node:
            self.lag_watch.sample(leader.machine, self.rt.now_ms)

    def final_read_resolution(self) -> dict[str, int] | str:
        """The fate of the payments no one got an answer for, as the final read shows
        it: `d11 check ledger`'s resolution of the indefinite transfers (the clients do
        not ask again here, so nothing else settles them). Computed once, after the
        run (about 12 ms of CPU on `d11 run ch5 --scenario crash`); when the history
        cannot say, why not, in the words the report ends its errors line with."""
        from checks.history import HistoryError
        from checks.transfers import check_ledger

        try:
            found = check_ledger(self.history).details.get("resolution")
        except HistoryError as exc:
            return f"its history is not a ledger's ({exc})"
        status = found.get("status") if isinstance(found, dict) else None
        if not isinstance(found, dict) or status != "resolved":
            return _UNRESOLVED.get(str(status), f"the ledger check says {status!r}")
        return {"applied": len(found["applied"]), "not_applied": len(found["not_applied"])}

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
        if not simulated(self.rt):
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
            [
                round(t, 1),
                node,
                step,
                " ".join(f"{k}={_word(v)}" for k, v in sorted(fields.items())),
            ]
            for t, node, step, fields in sorted(lives[msg_id], key=lambda s: s[0])
        ]
        return {"id": msg_id, "steps": steps, "traced_messages": len(lives)}

    # --8<-- [end:sample-life]

    def on_trace(self, event: Any) -> None:
        """Check passes become timeline notes; a half message set aside after its
        last check is recorded as the broker's report (f="check-max"); message
        trace steps are kept per message (`sample_life`)."""
        if event.kind == "paxos.learn":
            if self.lag_watch is not None and event.node in self.brokers:
                self._sample_lag(event.node)
        elif event.kind == SPAN_EVENT:  # chapter 7's spans: into the history (isolation)
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


# Why the final read cannot tell the timeouts' fate, by `d11 check ledger`'s resolution.
_UNRESOLVED = {
    "no-final-read": "the run has no final read",
    "unresolvable": "no choice of them gives the final balances, which are wrong (the "
    "checks below say how)",
    "ambiguous": "several choices of them give the final balances (amounts alike)",
    "too-many": "too many of them to try every choice",
}

# The steps of a message's life the history counts as they happen, one per event.
_EVENT_STEPS = {"receive": "delivered", "apply": "applied", "settle": "settled"}


# --8<-- [start:message-life-count]
def message_life(history: list[Event]) -> dict[str, int]:
    """Where the messages went, from the history. Sent, committed, rolled back and
    set aside count distinct messages: a message's fate is its first outcome
    recorded (its local transaction, or the check-back's fence finding it), and
    `*_by_check` counts those of them the broker resolved by its check-back. A
    message can be recorded committed more than once (by its producer, then by its
    answer to a check-back when its producer's one-way word was lost; once per
    check answered), and counting those records counted it twice. Delivered,
    applied and settled count events (at least once: a redelivery is another
    delivery), `applied_before` the applies the effect table said were made.
    Sent counts the sends the broker answered, as the half-messages check does;
    `sent_unanswered` the messages whose producer died before the broker's answer
    came, and that were resolved all the same (the broker had stored the half, its
    check-back decided): committed + rolled back = sent + sent_unanswered, once
    every answered message is resolved."""
    life: Counter[str] = Counter()
    sent: set[str] = set()
    asked: set[str] = set()  # sends invoked, answered or not
    outcome: dict[str, str] = {}  # id -> its first outcome recorded: committed, rolled_back
    by_check: set[str] = set()
    set_aside: set[str] = set()
    for e in history:
        if e.type == "invoke" and e.f in ("send", "publish") and isinstance(e.value, dict):
            asked.add(str(e.value.get("id")))
        if e.type != "ok" or not isinstance(e.value, dict):
            continue
        mid = str(e.value.get("id"))
        if e.f in ("send", "publish"):
            sent.add(mid)
        elif e.f in ("commit", "rollback"):
            outcome.setdefault(mid, "committed" if e.f == "commit" else "rolled_back")
            if e.value.get("by") == "check":
                by_check.add(mid)
        elif e.f == "check-max":
            set_aside.add(mid)
        elif e.f == "apply" and e.value.get("result") == "exists":
            life["applied_before"] += 1  # the effect table held it: not a second effect
        elif e.f in _EVENT_STEPS:
            life[_EVENT_STEPS[e.f]] += 1
    fates = Counter(fate + "_by_check" * (mid in by_check) for mid, fate in outcome.items())
    for fate in ("committed", "rolled_back"):
        life[fate] = fates[fate] + fates[fate + "_by_check"]
        life[fate + "_by_check"] = fates[fate + "_by_check"]
    life["sent"], life["set_aside"] = len(sent), len(set_aside)
    life["sent_unanswered"] = len((asked - sent) & outcome.keys())
    return {name: n for name, n in sorted(life.items()) if n}


# --8<-- [end:message-life-count]


def simulated(rt: Runtime) -> bool:
    from reference.runtime.sim import SimRuntime

    return isinstance(rt, SimRuntime)


def _due_retries(state: BrokerMachine, group: str, now_ms: float) -> int:
    """Retries of `group` due by `now_ms` it has not consumed: in its retry topic,
    or still in the schedule topic, due (the leader's next tick moves them). One
    still in its retry delay is in flight, not a backlog."""
    topic = retry_topic(group)
    return state.waiting_retries(group, int(now_ms)) + sum(
        len(index) - state.offsets.get((group, t, qid), 0)
        for (t, qid), index in state.queues.items()
        if t == topic
    )


def _word(value: object) -> str:
    """A trace field as a reader reads it: yes and no, not Python's True and False."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
