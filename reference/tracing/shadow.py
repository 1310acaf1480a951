"""Shadow data, the allow-list, the kill switch, and the guard for external parties.

Where a tagged request is turned away from production data matters: here it
is the data layer (`shadow_request`, called by the store before it runs a
procedure), the way Takin's agent swaps a JDBC connection for the shadow
database's. Every layer above stays the production code path, which is the
point of a full-link test: it exercises exactly what Double 11 will run.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from reference.codec import Message, message
from reference.tracing.context import TraceContext

__all__ = [
    "SHADOW_PREFIX",
    "ExternalGuard",
    "LoadTestPolicy",
    "LoadTestSwitch",
    "in_shadow_lane",
    "is_shadow",
    "production_account",
    "shadow_account",
    "shadow_name",
    "shadow_request",
    "written_accounts",
]

SHADOW_PREFIX = "pt_"  # shadow tables and rows carry it (PolarDB-X, Takin: "PT_")
_ACCOUNT_FIELDS = ("buyer", "merchant", "account")  # request fields naming one account
_ACCOUNT_RE = re.compile(r"^(pt_)?[um]\d+(@[\w-]+)?$")


def shadow_account(account: str) -> str:
    """The shadow twin of a production account."""
    assert not is_shadow(account), f"{account!r} is already a shadow account"
    return SHADOW_PREFIX + account


def is_shadow(account: str) -> bool:
    return account.startswith(SHADOW_PREFIX)


def production_account(account: str) -> str:
    return account[len(SHADOW_PREFIX) :] if is_shadow(account) else account


def shadow_name(name: str) -> str:
    """The shadow twin of a topic or a consumer group (`payments` -> `pt_payments`):
    tagged messages go to shadow topics, read by shadow consumer groups only, as
    Takin's agent rewrites an MQ topic for test traffic."""
    return name if is_shadow(name) else SHADOW_PREFIX + name


def in_shadow_lane(name: str) -> bool:
    """Is this topic or group the shadow lane's? A group's retry and dead-letter
    topics (`%RETRY%pt_settlement`, `%DLQ%...`) are in their group's lane."""
    for system in ("%RETRY%", "%DLQ%"):
        if name.startswith(system):
            name = name[len(system) :]
    return is_shadow(name)


# --8<-- [start:shadow-request]
def shadow_request(msg: Any) -> Any:
    """The request a tagged message becomes at the data layer: every account
    it names replaced by its shadow twin. Untagged messages pass unchanged."""
    trace: TraceContext | None = getattr(msg, "trace", None)
    if trace is None or not trace.load_test:
        return msg
    changes: dict[str, Any] = {}
    for name in _ACCOUNT_FIELDS:
        value = getattr(msg, name, None)
        if isinstance(value, str) and not is_shadow(value):
            changes[name] = shadow_account(value)
    accounts = getattr(msg, "accounts", None)
    if isinstance(accounts, tuple):
        changes["accounts"] = tuple(a if is_shadow(a) else shadow_account(a) for a in accounts)
    return dataclasses.replace(msg, **changes) if changes else msg


# --8<-- [end:shadow-request]


def written_accounts(writes: Iterable[tuple[str, tuple[Any, ...]]]) -> tuple[str, ...]:
    """Account ids (production or shadow) among a transaction's write parameters."""
    found = {p for _sql, params in writes for p in params if isinstance(p, str)}
    return tuple(sorted(p for p in found if _ACCOUNT_RE.match(p)))


@message(name="tracing.LoadTestSwitch")
class LoadTestSwitch(Message):
    """The global switch (Takin's `cluster_test`): off stops all tagged traffic at once."""

    enabled: bool


# --8<-- [start:policy]
@dataclass
class LoadTestPolicy:
    """Which services take tagged traffic, and whether any does right now.

    `allow`: node ids allowed to serve tagged requests ("*": all). A tagged
    request reaching a service not on the list, or any tagged request while
    the switch is off, is refused before it does anything.
    """

    allow: frozenset[str] = frozenset({"*"})
    enabled: bool = True

    def refusal(self, node_id: str, trace: TraceContext | None) -> str:
        """Why this node must refuse the request ("" if it may serve it)."""
        if trace is None or not trace.load_test:
            return ""
        if not self.enabled:
            return "load-test-off"
        if "*" not in self.allow and node_id not in self.allow:
            return "load-test-not-allowed"
        return ""


# --8<-- [end:policy]


# --8<-- [start:guard]
@dataclass
class ExternalGuard:
    """The guard (Takin's "挡板") in front of a party outside the platform.

    A tagged call never leaves: it gets `mock_reply` instead, and the span
    says "mocked". A production call goes out ("called"). The isolation
    checker fails any tagged span whose outcome is "called".
    """

    party: str  # e.g. "bank-channel"
    mock_reply: Message | None = None

    def decide(self, trace: TraceContext | None) -> str:
        """ "mocked" for tagged traffic, "called" for production."""
        return "mocked" if trace is not None and trace.load_test else "called"


# --8<-- [end:guard]
