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

import functools
import random
from typing import Any

from chapters.ch5_mq.build import (
    add_brokers,
    add_consumers,
    add_front,
    add_ledger,
    add_producers,
    directory_for,
    genesis,
    production_view,
    settlement_transfer,
)
from chapters.ch5_mq.checkers import add_checks, without_spans
from chapters.ch5_mq.deployment import Life, MqDeployment
from chapters.ch5_mq.lag import Stall
from chapters.ch5_mq.plan import (
    ANY_SCENARIO,
    CITIES,
    CLIENTS,
    CONSUMER_GROUPS,
    LEAKS,
    LOST_CITY,
    MERCHANTS,
    OPENING_CENTS,
    TOPIC,
    USERS,
    USERS_CELL,
    USERS_CITY,
    VARIANT_BREAKS,
    broker_mutations,
    leak_breaks,
    load_test_share_of,
    mutation_breaks,
    variant_breaks,
)
from chapters.common import DEADLINE_MS, expect
from chapters.scenarios import SCENARIOS, WARMUP_MS
from chapters.stage import (
    Deployment,
    Expectation,
    Runtime,
    Scenario,
    Setting,
    Stage,
    StageError,
    StageOptions,
)
from reference.gateway.router import CellRouter
from reference.mq.mutations import MUTATIONS as MQ_MUTATIONS
from reference.net.topology import Topology
from reference.node import NodeId
from reference.payment.accounts import parse_account
from reference.tracing import shadow_name
from reference.traffic.plan import DEFAULT_SCALE

__all__ = [
    "STAGE",
    "TOPIC",
    "USERS_CELL",
    "USERS_CITY",
    "Life",
    "MqDeployment",
    "MqStage",
    "genesis",
    "production_view",
    "settlement_transfer",
]

VARIANTS = {
    "transactional": "half message, local transfer, commit/rollback, check-back (the fix)",
    "naive-after": "transfer, then a fire-and-forget event (a crash in between loses it)",
    "naive-before": "event first, then the transfer (a declined payment is announced)",
    "no-dedup": "transactional, but consumers that are not idempotent",
}


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
        "leak": Setting(
            "plant a node that drops the tag",
            choices=("producer", "consumer"),
            plants=leak_breaks,
        ),
        "orderly": Setting(
            "1: loyalty and notifications rebalance per key; 0: they do not",
            int,
            choices=("0", "1"),
        ),
        "mutations": Setting(
            f"bug-zoo mutations in the broker, comma-separated: {','.join(MQ_MUTATIONS)}",
            plants=mutation_breaks,
        ),
        # RocketMQ's transactionCheckInterval and transactionCheckMax (30 s and 15 by
        # default): shortened, a run of a few seconds sees check passes and set-asides
        # (d11 learn's ch5-find-count-young prints a command with both).
        "check_interval_ms": Setting(
            "ms between the broker's check-back passes (default 30000)", int, low=1
        ),
        "check_max": Setting(
            "check-backs of a half message before it is set aside (default 15)", int, low=1
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

    def expectations(self, variant: str, scenario: str) -> dict[str, Expectation]:
        """Each broken variant's lesson (must fail) and its consequences (may
        fail) under `scenario`, from `plan.VARIANT_BREAKS`."""
        out = super().expectations(variant, scenario)
        breaks = variant_breaks(variant, scenario)
        if breaks is not None:
            out |= {check: expect(False, _sentence(why)) for check, why in breaks.must.items()}
            out |= {
                check: expect(False, _sentence(why), always=False)
                for check, why in breaks.may.items()
            }
        return out

    def variant_shown_under(self, variant: str) -> tuple[str, ...]:
        """From `VARIANT_BREAKS`: the scenarios named there (one that breaks under
        any scenario has nothing to add)."""
        return tuple(s for s in VARIANT_BREAKS.get(variant, {}) if s != ANY_SCENARIO)

    def variant_note(self, variant: str, scenario: str) -> str | None:
        """A broken variant under a scenario that brings no fault to expose it (the
        steady default): which scenarios show its lesson, from `VARIANT_BREAKS`."""
        shown_under = self.variant_shown_under(variant)
        if not shown_under or variant_breaks(variant, scenario) is not None:
            return None
        where = " or ".join(f"--scenario {s}" for s in shown_under)
        return (
            f"{variant} breaks under {where}; {scenario} brings no fault that exposes "
            "it, so its checks pass here"
        )

    def validate(self, options: StageOptions) -> None:
        super().validate(options)
        broker_mutations(options)
        if not 0.0 <= load_test_share_of(options) <= 1.0:
            raise StageError("load_test_share must be in [0, 1]")
        leak = options.extra.get("leak", "")
        if leak not in LEAKS:
            raise StageError(f"leak must be one of {', '.join(repr(x) for x in LEAKS)}")
        if leak and not load_test_share_of(options) > 0:
            # The planted node drops the load-test tag: without tagged traffic it
            # drops nothing, and every check passes on a bug that never ran.
            raise StageError(
                f"leak={leak} drops the load-test tag, and this run sends no tagged "
                "traffic: add --set load_test_share=0.3"
            )
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
        if load_test_share_of(options) > 0:
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
        directory = dep.directory = directory_for(dep, balances)
        add_ledger(rt, dep, directory)
        add_brokers(rt, dep)
        add_producers(rt, dep, directory, options)
        add_consumers(rt, dep, directory, options)
        add_front(rt, dep, directory)
        dep.record_init(balances)

        def route(buyer: str, pid: str, rng: random.Random, router: CellRouter | None) -> NodeId:
            # A user's payments go to one payment service (the user's region):
            # a retry does not rescue a payment its producer dropped. (A merchant's
            # payouts in a live session's rolling traffic: by the merchant.)
            _, ident = parse_account(buyer)
            return dep.producers[ident % len(dep.producers)]

        dep.add_clients(dep.topology.nodes_in(USERS_CELL), route, "front")
        add_checks(dep)
        if dep.traced:
            from checks.isolation import check_isolation

            for name, check in list(dep.checks.items()):  # spans are isolation's only
                dep.checks[name] = functools.partial(without_spans, check)
            dep.checks["isolation"] = check_isolation
        telemetry = getattr(rt, "telemetry", None)
        if telemetry is not None:
            telemetry.subscribe(dep.on_trace)
        return dep

    # --8<-- [end:mq-build]


def _sentence(why: str) -> str:
    """A reason from the plan's tables as the report shows it: one sentence."""
    assert why and not why.endswith("."), why
    return f"{why[0].upper()}{why[1:]}."


def _consumer_lag(dep: Deployment) -> None:
    """Steady load; every settlement consumer paused for half the run."""
    assert isinstance(dep, MqDeployment)
    start_ms = dep.rt.now_ms + WARMUP_MS
    end_ms = start_ms + dep.options.duration_s * 1000.0
    dep.start_traffic(start_ms, end_ms, "steady")
    pause_ms = start_ms + 0.2 * (end_ms - start_ms)
    resume_ms = start_ms + 0.7 * (end_ms - start_ms)
    members = dep.consumers["settlement"]
    dep.watch_lag(Stall("settlement", list(members), round(pause_ms, 3), round(resume_ms, 3)))

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
