"""Chapter 5's plan: where each node lives, the names and sizes, and the run's own settings.

The three cities and what each hosts, the topic and its consumer groups
(each group's effect and its members' cities), the population, and the
readers of the chapter's `--set` settings (`load_test_share`, `mutations`).
Everything else in the chapter reads its numbers from here.
"""

from __future__ import annotations

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
