"""Chapter 5's plan: where each node lives, the names and sizes, and the run's own settings.

The three cities and what each hosts, the topic and its consumer groups
(each group's effect and its members' cities), the population, and the
readers of the chapter's `--set` settings (`load_test_share`, `mutations`),
what each broken variant breaks under each scenario (`VARIANT_BREAKS`), and
what each planted bug may break (`leak_breaks`, `mutation_breaks`).
Everything else in the chapter reads its numbers from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from chapters.common import planted_mutations
from chapters.stage import StageOptions
from reference.mq.mutations import MUTATIONS as MQ_MUTATIONS

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

# consumer group -> (effect, members' cities)
CONSUMER_GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "settlement": ("settlement", ("hz", "sh")),
    "loyalty": ("loyalty", ("hz", "sh")),
    "notification": ("notification", ("sz",)),
}


def load_test_share_of(options: StageOptions) -> float:
    return float(options.extra.get("load_test_share", 0.0))


def broker_mutations(options: StageOptions) -> frozenset[str]:
    """Bug-zoo mutations planted in the broker (extra "mutations": "a,b")."""
    return planted_mutations(options, MQ_MUTATIONS)


# --8<-- [start:variant-breaks]
@dataclass(frozen=True)
class Breaks:
    """What a broken variant does to the checks under one scenario."""

    # Its lesson: the checks it fails on every seed there (a run that passes
    # one is reported: UNEXPECTED PASS, the bug went uncaught).
    must: Mapping[str, str]
    # Consequences, and failures some schedules show and others do not.
    may: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert self.must, "a variant is listed under a scenario only where its lesson shows"
        assert not self.must.keys() & self.may.keys(), (self.must, self.may)


ANY_SCENARIO = "*"
_ESCROW_NEGATIVE = {
    "bank": "settling more than was paid into an escrow drives it below zero (money "
    "is conserved; a balance below zero is what the bank check refuses)"
}
_UNSETTLED = {"settlement": "a payment whose event is lost is never settled: its escrow stays full"}
_SETTLED_TWICE = {
    "settlement": "a settlement consumer reads again from its group's committed offset "
    "(committed every 5 s): without dedup, each redelivery settles its payment again"
}
# variant -> scenario (or "*") -> Breaks. A scenario not listed: the variant
# passes every check there (its bug needs a fault the scenario does not bring).
# The transactional variant is not listed: it passes everything, everywhere.
VARIANT_BREAKS: dict[str, dict[str, Breaks]] = {
    "naive-after": {
        # The producer dies between its transfer and its event.
        "crash": Breaks(
            must=_UNSETTLED,
            may={"delivery": "an event sent to a broker leader that dies with it is lost"},
        ),
        # For a second after the heal the broker stores none of the
        # fire-and-forget events (118 of 294 at seed 1); nobody sends them again.
        "partition": Breaks(
            must={
                "delivery": "a published event never stored is owed to every group: lost",
                **_UNSETTLED,
            }
        ),
    },
    "naive-before": {
        # Small wallets: payments are declined in every scenario.
        ANY_SCENARIO: Breaks(
            must={
                "delivery": "a declined payment's event was already out: it is delivered",
                "settlement": "merchants are settled for declined payments",
            },
            may=_ESCROW_NEGATIVE,
        ),
    },
    "no-dedup": {
        # Loyalty's and notifications' members die with unconfirmed work too:
        # the delivery check sees their effects applied twice.
        "crash": Breaks(
            must={
                "delivery": "a restarted consumer's redeliveries are applied a second time",
                **_SETTLED_TWICE,
            },
            may=_ESCROW_NEGATIVE,
        ),
        # Only the settlement group's queues move (Shanghai cut off, or both
        # members paused): its effect is a ledger transfer, which the
        # settlement check judges; the delivery check judges recorded applies.
        "partition": Breaks(
            must=_SETTLED_TWICE,
            may={
                "delivery": "a loyalty or notification queue that moves is applied twice",
                **_ESCROW_NEGATIVE,
            },
        ),
        "consumer-lag": Breaks(
            must=_SETTLED_TWICE,
            may={
                "delivery": "a loyalty or notification queue that moves is applied twice",
                **_ESCROW_NEGATIVE,
            },
        ),
    },
}
# --8<-- [end:variant-breaks]


def variant_breaks(variant: str, scenario: str) -> Breaks | None:
    """What `variant` breaks under `scenario` (None: it passes every check there)."""
    by_scenario = VARIANT_BREAKS.get(variant, {})
    return by_scenario.get(scenario, by_scenario.get(ANY_SCENARIO))


# What each planted bug may break on a run (the explorer and the hunter find
# the schedules that do; a run's own seed may or may not be one of them).
# --8<-- [start:planted-breaks]
LEAK_BREAKS: dict[str, dict[str, str]] = {
    "producer": {
        "isolation": "the producer drops the load-test tag: test events reach production consumers"
    },
    "consumer": {
        "isolation": "a shadow consumer drops the tag: test events settle real accounts",
        "settlement": "real merchants are settled for load-test payments",
        "bank": "settling test payments from real escrow may drive it below zero",
    },
}
MUTATION_BREAKS: dict[str, dict[str, str]] = {
    "recommit": {"broker-audit": "a message committed twice is in its topic twice"},
    "commit-after-rollback": {
        "broker-audit": "a rolled-back message is in its topic",
        "delivery": "a rolled-back message is delivered",
        "settlement": "a declined payment is settled",
        "bank": "settling a declined payment may drive an escrow below zero",
    },
    "count-young": {
        "delivery": "a half message set aside unchecked is never delivered",
        "settlement": "its committed payment is never settled",
    },
    "stuck-check-cursor": {
        "delivery": "half messages behind the re-checked batch wait, undelivered",
        "settlement": "their payments are not settled by the end of the run",
        "half-messages": "they are still half-sent at the end",
    },
    # unbounded-checks breaks no check: a pass over the bound stops the broker
    # (an assertion), and a run this size never has that many old halves.
    "unbounded-checks": {},
}
# --8<-- [end:planted-breaks]


def leak_breaks(value: object) -> Mapping[str, str]:
    """The checks a planted tag-dropping node may break (`--set leak=...`)."""
    return LEAK_BREAKS.get(str(value), {})


def mutation_breaks(value: object) -> Mapping[str, str]:
    """The checks the planted broker mutations may break (`--set mutations=a,b`)."""
    if isinstance(value, str):
        names = value.split(",")
    else:
        assert isinstance(value, list | tuple | frozenset | set), value
        names = [str(v) for v in value]
    out: dict[str, str] = {}
    for name in names:
        out |= MUTATION_BREAKS.get(name.strip(), {})
    return out
